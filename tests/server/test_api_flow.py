"""The whole API flow, on SQLite and on a real PostgreSQL, with codes computed by pyotp."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pyotp

from keyfob.otp import hotp
from keyfob.server import accounts, auditlog
from testkit import T0, Clock, wrong_code


def _user(api, name: str = "alice@example.com", password: str | None = None) -> None:
    body = {"username": name} | ({"password": password} if password else {})
    resp = api.post("/api/v1/users", json=body)
    assert resp.status_code == 201, resp.text


def _enrol(
    api, clock: Clock, user: str = "alice@example.com", kind: str = "app", **extra
) -> tuple[str, pyotp.TOTP]:
    resp = api.post(f"/api/v1/users/{user}/tokens", json={"kind": kind} | extra)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert set(body) >= {"id", "otpauth_uri", "secret", "qr_svg", "expires_at"}
    totp = pyotp.parse_uri(body["otpauth_uri"])
    assert totp.secret == body["secret"]
    assert body["qr_svg"].startswith("<svg")
    api.watch.secrets.add(body["secret"])
    return body["id"], totp


def test_enrol_verify_validate(api, clock: Clock) -> None:
    _user(api)
    token_id, totp = _enrol(api, clock)
    # pending: validation does not use it yet
    assert api.validate("alice@example.com", totp.at(clock.now)) == "reject"
    code = totp.at(clock.now)
    resp = api.post(
        f"/api/v1/users/alice@example.com/tokens/{token_id}/verify", json={"code": code}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "active"
    # the enrolment code is spent: replaying it fails, the next step's code works
    assert api.validate("alice@example.com", code) == "reject"
    clock.advance(30)
    next_code = totp.at(clock.now)
    assert api.validate("Alice@Example.com", next_code) == "accept"  # UPN case-insensitive
    assert api.validate("alice@example.com", next_code) == "reject"  # replay
    methods = api.get("/api/v1/users/alice@example.com/tokens").json()["items"]
    assert [(m["kind"], m["state"], m["last_used_at"] is not None) for m in methods] == [
        ("app", "active", True)
    ]


def test_enrolment_window_and_expiry(api, clock: Clock) -> None:
    _user(api)
    token_id, totp = _enrol(api, clock)
    far = totp.at(clock.now + 16 * 30)
    resp = api.post(f"/api/v1/users/alice@example.com/tokens/{token_id}/verify", json={"code": far})
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "code_rejected"
    assert "clock" in resp.json()["error"]["hint"]
    ok = totp.at(clock.now - 14 * 30)  # a phone 7 minutes slow still enrols
    assert (
        api.post(
            f"/api/v1/users/alice@example.com/tokens/{token_id}/verify", json={"code": ok}
        ).status_code
        == 200
    )
    token2, totp2 = _enrol(api, clock)
    clock.advance(601)
    resp = api.post(
        f"/api/v1/users/alice@example.com/tokens/{token2}/verify",
        json={"code": totp2.at(clock.now)},
    )
    assert resp.status_code == 410 and "start again" in resp.json()["error"]["hint"]


def test_programmable_records_serial_and_drift(api, clock: Clock) -> None:
    _user(api)
    token_id, totp = _enrol(api, clock, kind="programmable", period=60)
    assert totp.interval == 60
    code = totp.at(clock.now + 120)  # token clock 2 minutes fast
    resp = api.post(
        f"/api/v1/users/alice@example.com/tokens/{token_id}/verify",
        json={"code": code, "serial": "OTPC-P2-0001"},
    )
    assert resp.status_code == 200 and resp.json()["drift_steps"] == 2
    clock.advance(60)
    # the learned drift keeps a +2-step token inside the ±1 window
    assert api.validate("alice@example.com", totp.at(clock.now + 120)) == "accept"
    inv = api.get("/api/v1/tokens", params={"serial": "OTPC-P2-0001"}).json()
    assert inv["items"][0]["drift_seconds"] == 120


def test_unknown_user_no_tokens_locked_and_wrong_code_look_alike(api, clock: Clock) -> None:
    _user(api)
    _user(api, "bob@example.com")
    token_id, totp = _enrol(api, clock)
    api.post(
        f"/api/v1/users/alice@example.com/tokens/{token_id}/verify",
        json={"code": totp.at(clock.now)},
    )
    clock.advance(30)
    wrong = wrong_code(totp, at=clock.now)  # the same code for all three: only the user differs
    answers = [
        api.post("/api/v1/validate", json={"username": u, "code": wrong}, role="validate")
        for u in ("nobody@example.com", "bob@example.com", "alice@example.com")
    ]
    assert {(r.status_code, r.text) for r in answers} == {(200, '{"result":"reject"}')}
    for _ in range(5):
        api.validate("alice@example.com", wrong)
    assert api.validate("alice@example.com", totp.at(clock.now)) == "reject"  # locked
    audit = api.get("/api/v1/audit", params={"action": "token.lockout"}).json()
    assert audit["total"] == 1
    serial_less = api.get("/api/v1/tokens", params={"owner": "alice@example.com"}).json()
    assert serial_less["items"][0]["locked"] is True
    clock.advance(31)
    assert api.validate("alice@example.com", totp.at(clock.now)) == "accept"


def test_several_methods_and_the_limit(api, clock: Clock) -> None:
    _user(api)
    ids = []
    for _ in range(5):
        token_id, _totp = _enrol(api, clock)
        ids.append(token_id)
    resp = api.post("/api/v1/users/alice@example.com/tokens", json={"kind": "app"})
    assert resp.status_code == 409 and "5 methods" in resp.json()["error"]["message"]
    assert api.delete(f"/api/v1/users/alice@example.com/tokens/{ids[0]}").status_code == 204
    _enrol(api, clock)


def test_users_manage_only_their_own_methods(api, clock: Clock) -> None:
    _user(api, "alice@example.com", password="alice-password-1")
    _user(api, "bob@example.com", password="bob-password-12")
    # Passwords set by an admin are one-time: HTTP Basic needs the user's own password.
    accounts.set_password(
        api.ctx, "alice@example.com", "alice-password-1", one_time=False, actor="t"
    )
    alice = {
        "Authorization": "Basic " + base64.b64encode(b"alice@example.com:alice-password-1").decode()
    }
    resp = api.post(
        "/api/v1/users/alice@example.com/tokens", json={"kind": "app"}, role=None, headers=alice
    )
    assert resp.status_code == 201
    begun = resp.json()
    api.watch.secrets.add(begun["secret"])
    resp = api.post(
        "/api/v1/users/bob@example.com/tokens", json={"kind": "app"}, role=None, headers=alice
    )
    assert resp.status_code == 403
    assert api.get("/api/v1/tokens", role=None, headers=alice).status_code == 403
    assert api.get("/api/v1/tokens", role="validate").status_code == 403
    resp = api.post(
        "/api/v1/validate", json={"username": "a", "code": "1"}, role=None, headers=alice
    )
    assert resp.status_code == 403
    bad = {"Authorization": "Basic " + base64.b64encode(b"alice@example.com:wrong").decode()}
    resp = api.get("/api/v1/users/alice@example.com/tokens", role=None, headers=bad)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthorized"
    # Her first method is set up with the password alone (the burner's --enroll does this)...
    code = pyotp.parse_uri(begun["otpauth_uri"]).at(clock.now)
    resp = api.post(
        f"/api/v1/users/alice@example.com/tokens/{begun['id']}/verify",
        json={"code": code},
        role=None,
        headers=alice,
    )
    assert resp.status_code == 200
    # ...but once it is active, the password alone no longer opens the API (with the very
    # answer a wrong password gets).
    wrong = api.get("/api/v1/users/alice@example.com/tokens", role=None, headers=bad)
    resp = api.get("/api/v1/users/alice@example.com/tokens", role=None, headers=alice)
    assert resp.status_code == 401 and resp.content == wrong.content


OATH_CSV = """# serial, hex key, type, digits, period
HW-0001, 3132333435363738393031323334353637383930, totp, 6, 30
HW-0002, 3132333435363738393031323334353637383931, totp, 6, 30
HOTP-01, 3132333435363738393031323334353637383930, hotp, 6
"""


def _import(api, content: str, **extra):
    return api.post("/api/v1/tokens/import", json={"content": content} | extra)


def test_classic_tokens_assign_reassign(api, clock: Clock) -> None:
    secret1 = bytes.fromhex("3132333435363738393031323334353637383930")
    api.watch.secrets.add("3132333435363738393031323334353637383930")
    assert _import(api, OATH_CSV).json()["created"] == 3
    _user(api)
    _user(api, "bob@example.com")
    resp = api.post("/api/v1/tokens/HW-0001/assign", json={"username": "alice@example.com"})
    assert resp.status_code == 200 and resp.json()["owner"] == "alice@example.com"
    step = int(clock.now // 30)
    assert api.validate("alice@example.com", hotp(secret1, step)) == "accept"
    resp = api.post("/api/v1/tokens/HW-0001/assign", json={"username": "bob@example.com"})
    assert resp.status_code == 409 and "unassign it first" in resp.json()["error"]["hint"]
    # the owner leaves: the token goes back to the inventory and on to bob
    assert api.post("/api/v1/tokens/HW-0001/unassign").json()["owner"] is None
    assert api.validate("alice@example.com", hotp(secret1, step + 1)) == "reject"
    api.post("/api/v1/tokens/HW-0001/assign", json={"username": "bob@example.com"})
    clock.advance(30)
    # a code alice already used can never be used again, by anyone
    assert api.validate("bob@example.com", hotp(secret1, step)) == "reject"
    assert api.validate("bob@example.com", hotp(secret1, step + 1)) == "accept"


def test_self_assign_needs_serial_and_code(api, clock: Clock) -> None:
    api.watch.secrets.add("3132333435363738393031323334353637383931")
    _import(api, OATH_CSV)
    _user(api)
    key2 = bytes.fromhex("3132333435363738393031323334353637383931")
    step = int(clock.now // 30)
    url = "/api/v1/users/alice@example.com/tokens/assign"
    wrong = api.post(url, json={"serial": "HW-0002", "code": wrong_code(key2, at=clock.now)})
    unknown = api.post(url, json={"serial": "NOPE-9", "code": hotp(key2, step)})
    assert wrong.status_code == unknown.status_code == 422
    assert wrong.json() == unknown.json()  # serials cannot be probed
    ok = api.post(url, json={"serial": "HW-0002", "code": hotp(key2, step + 2)})
    assert ok.status_code == 200, ok.text
    taken = api.post(url, json={"serial": "HW-0002", "code": hotp(key2, step + 3)})
    assert taken.status_code == 422
    clock.advance(90)  # the token runs 2 steps fast: now it shows step + 3 + 2
    assert api.validate("alice@example.com", hotp(key2, step + 5)) == "accept"


def test_self_assign_with_a_drifted_clock_takes_two_codes(api, clock: Clock) -> None:
    _import(api, OATH_CSV)
    _user(api)
    key2 = bytes.fromhex("3132333435363738393031323334353637383931")
    step = int(clock.now // 30)
    url = "/api/v1/users/alice@example.com/tokens/assign"
    first = api.post(url, json={"serial": "HW-0002", "code": hotp(key2, step + 10)})
    assert first.status_code == 422 and "next code" in first.json()["error"]["hint"]
    clock.advance(30)
    second = api.post(url, json={"serial": "HW-0002", "code": hotp(key2, step + 11)})
    assert second.status_code == 200, second.text


def test_admin_resync_and_unlock(api, clock: Clock) -> None:
    _import(api, OATH_CSV)
    _user(api)
    api.post("/api/v1/tokens/HW-0001/assign", json={"username": "alice@example.com"})
    key = bytes.fromhex("3132333435363738393031323334353637383930")
    step = int(clock.now // 30)
    for _ in range(5):
        api.validate("alice@example.com", wrong_code(key, at=clock.now))
    assert api.get("/api/v1/tokens", params={"locked": True}).json()["total"] == 1
    assert api.post("/api/v1/tokens/HW-0001/unlock").json()["locked"] is False
    # the token's clock is 50 minutes fast: two consecutive codes resync it
    resp = api.post(
        "/api/v1/tokens/HW-0001/resync",
        json={"code1": hotp(key, step + 100), "code2": hotp(key, step + 101)},
    )
    assert resp.status_code == 200 and resp.json()["drift_seconds"] == 101 * 30
    clock.advance(30)
    assert api.validate("alice@example.com", hotp(key, step + 102)) == "accept"
    wrong = [wrong_code(key, at=clock.now, pick=n) for n in (111111, 222222)]
    bad = api.post("/api/v1/tokens/HW-0001/resync", json={"code1": wrong[0], "code2": wrong[1]})
    assert bad.status_code == 422


def test_hotp_token(api, clock: Clock) -> None:
    _import(api, OATH_CSV)
    _user(api)
    api.post("/api/v1/tokens/HOTP-01/assign", json={"username": "alice@example.com"})
    key = bytes.fromhex("3132333435363738393031323334353637383930")
    assert api.validate("alice@example.com", hotp(key, 0)) == "accept"
    assert api.validate("alice@example.com", hotp(key, 0)) == "reject"
    assert api.validate("alice@example.com", hotp(key, 5)) == "accept"  # look-ahead
    assert api.validate("alice@example.com", hotp(key, 3)) == "reject"  # behind


def test_audit_filters_and_paging(api, clock: Clock) -> None:
    _import(api, OATH_CSV)
    _user(api)
    api.post("/api/v1/tokens/HW-0001/assign", json={"username": "alice@example.com"})
    key = bytes.fromhex("3132333435363738393031323334353637383930")
    for _ in range(3):
        api.validate("alice@example.com", wrong_code(key, at=clock.now))
    page = api.get("/api/v1/audit", params={"user": "alice@example.com", "limit": 2}).json()
    assert page["total"] == 5 and len(page["items"]) == 2  # create, assign, 3 validations
    assert page["items"][0]["action"] == "validate"  # newest first
    assert page["items"][0]["reason"] == "wrong_code"
    by_serial = api.get("/api/v1/audit", params={"serial": "HW-0001"}).json()
    assert [i["action"] for i in by_serial["items"]] == ["token.assign"]
    imports = api.get("/api/v1/audit", params={"action": "token.import"}).json()
    assert imports["items"][0]["details"]["created"] == 3
    since = api.get("/api/v1/audit", params={"since": "2030-01-01T00:00:00Z"}).json()
    assert since["total"] == 0


# Serials and audit actions that hold LIKE's wildcards (and SQLAlchemy's escape character),
# each beside one that the wildcard, taken as a wildcard, would also match.
WILD_SERIALS = ["A_1", "AX1", "5%0", "500", "x/y", "xy"]
WILD_CSV = "".join(
    f"{s}, 31323334353637383930313233343536373839{i:02d}\n" for i, s in enumerate(WILD_SERIALS)
)


def _serials(api, prefix: str) -> list[str]:
    resp = api.get("/api/v1/tokens", params={"serial": prefix})
    assert resp.status_code == 200, resp.text
    return sorted(t.get("serial") or t["reported_serial"] for t in resp.json()["items"])


def test_the_token_serial_filter_takes_percent_and_underscore_literally(api, clock: Clock) -> None:
    api.watch.secrets.update(line.split(", ")[1] for line in WILD_CSV.splitlines())
    assert _import(api, WILD_CSV).json()["created"] == len(WILD_SERIALS)
    assert _serials(api, "A_") == ["A_1"]
    assert _serials(api, "5%") == ["5%0"]
    assert _serials(api, "%") == _serials(api, "_") == _serials(api, "%0") == []
    assert _serials(api, "x/") == ["x/y"]
    assert _serials(api, "A") == ["AX1", "A_1"]  # still a prefix, not an exact match
    assert _serials(api, "a_") == ["A_1"] and _serials(api, "aX") == ["AX1"]  # in any case
    # The serial a user reported when enrolling a programmable token is matched the same way.
    _user(api)
    for serial in ("P_1", "PX1"):
        token_id, totp = _enrol(api, clock, kind="programmable")
        resp = api.post(
            f"/api/v1/users/alice@example.com/tokens/{token_id}/verify",
            json={"code": totp.at(clock.now), "serial": serial},
        )
        assert resp.status_code == 200, resp.text
    assert _serials(api, "P_") == ["P_1"]
    assert _serials(api, "P") == ["PX1", "P_1"]


def _actions(api, prefix: str) -> list[str]:
    resp = api.get("/api/v1/audit", params={"action": prefix, "limit": 1000})
    assert resp.status_code == 200, resp.text
    return sorted(i["action"] for i in resp.json()["items"])


def test_the_audit_action_filter_takes_percent_and_underscore_literally(api, clock: Clock) -> None:
    with api.ctx.begin() as conn:
        for action in ("wild.a_b", "wild.axb", "wild.5%", "wild.50", "wild.x/y", "wild.xy"):
            auditlog.record(conn, api.ctx, actor="test", action=action, outcome="success")
    assert _actions(api, "wild.a_") == ["wild.a_b"]
    assert _actions(api, "wild.5%") == ["wild.5%"]
    assert _actions(api, "wild.x/") == ["wild.x/y"]
    assert _actions(api, "%") == _actions(api, "_") == _actions(api, "%.a") == []
    # Real actions: an underscore does not stand for the dot, nor % for a part.
    accounts.create_user(api.ctx, "someone@example.com")
    assert _actions(api, "user.create") == ["user.create"]
    assert _actions(api, "user_create") == _actions(api, "%create") == []
    assert len(_actions(api, "wild.")) == 6  # still a prefix, not an exact match
    assert _actions(api, "WILD.A_") == ["wild.a_b"]  # in any case, on both databases


def test_ops_endpoints(api, clock: Clock) -> None:
    assert api.get("/healthz", role=None).json()["status"] == "ok"
    api.validate("x", "123456")
    assert api.get("/metrics", role=None).status_code == 401  # README: Metrics
    metrics = api.get("/metrics").text
    assert 'keyfob_validations_total{result="reject"} 1.0' in metrics
    spec = api.get("/openapi.json", role=None).json()
    assert "/api/v1/validate" in spec["paths"]


def test_request_errors_have_one_shape(api, clock: Clock) -> None:
    resp = api.post("/api/v1/validate", json={"username": "a"}, role="validate")
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "invalid_request"
    assert "code" in resp.json()["error"]["message"]
    resp = api.post("/api/v1/users", json={"username": "x y"})
    assert resp.status_code == 400 and "space" in resp.json()["error"]["message"]
    resp = api.post("/api/v1/users", json={"username": "dup@example.com"})
    resp = api.post("/api/v1/users", json={"username": "DUP@example.com"})
    assert resp.status_code == 409
    assert api.get("/api/v1/nothing-here").json()["error"]["code"] == "not_found"


def test_the_server_reads_the_time_from_the_test_clock(api, clock: Clock) -> None:
    """Every timestamp the server writes is the injected clock's, not this machine's."""
    _user(api, "early@example.com")
    clock.advance(3600)
    _user(api, "late@example.com")
    created = api.get("/api/v1/audit", params={"action": "user.create"}).json()["items"]
    assert {i["target_user"]: i["at"] for i in created} == {
        "early@example.com": datetime.fromtimestamp(T0, UTC).isoformat(),
        "late@example.com": datetime.fromtimestamp(T0 + 3600, UTC).isoformat(),
    }
