"""Claims and enrolment serials tell nothing, lock nothing and block nothing.

- every failed self-assignment claim, and every failed "Verify now", gets the same answer
  (status and body, byte for byte), whatever the reason;
- wrong claims never touch a stock token (its failures, lock and version stay as they were);
  guessing is bounded per claimant and per address instead (keyfob.server.claims);
- a serial given at self-service enrolment is a reported label, never an inventory serial: it
  cannot block the vendor's seed file, and old rows move over in migration 0004.
"""

from __future__ import annotations

import pyotp
import pytest
import sqlalchemy as sa

from keyfob.otp import hotp
from keyfob.otp.verify import TokenState
from keyfob.server import accounts, claims, enrolment, inventory
from keyfob.server.errors import CodeRejected
from keyfob.server.store import repo
from keyfob.server.store.records import state_values
from keyfob.server.store.schema import tokens
from testkit import Clock, migrate_to, wrong_code

SEEDS = """# serial, hex key, type, digits, period
HW-0001, 3132333435363738393031323334353637383930, totp, 6, 30
HW-0002, 3132333435363738393031323334353637383931, totp, 6, 30
HW-0003, 3132333435363738393031323334353637383932, totp, 6, 30
HW-0004, 3132333435363738393031323334353637383933, totp, 6, 30
HW-0005, 3132333435363738393031323334353637383934, totp, 6, 30
"""
KEYS = {
    f"HW-000{i}": bytes.fromhex(f"313233343536373839303132333435363738393{i - 1}")
    for i in (1, 2, 3, 4, 5)
}
CLAIM = "/api/v1/users/{user}/tokens/assign"


def _setup(api) -> None:
    api.watch.secrets.update(k.hex() for k in KEYS.values())
    assert api.post("/api/v1/tokens/import", json={"content": SEEDS}).status_code == 200
    for name in ("alice@example.com", "bob@example.com", "carol@example.com"):
        assert api.post("/api/v1/users", json={"username": name}).status_code == 201


def _token(ctx, serial: str):
    with ctx.engine.connect() as conn:
        return repo.get_token_by_serial(conn, serial)


def _claim(api, user: str, serial: str, code: str):
    return api.post(CLAIM.format(user=user), json={"serial": serial, "code": code})


def _answer(resp) -> tuple[int, bytes, str]:
    return resp.status_code, resp.content, resp.headers.get("content-type", "")


def test_every_failed_claim_gets_the_same_answer(api, clock: Clock) -> None:
    _setup(api)
    step = int(clock.now // 30)
    api.post("/api/v1/tokens/HW-0001/assign", json={"username": "bob@example.com"})
    with api.ctx.begin() as conn:  # a stale lock and a disabled token in stock
        repo.update_token(conn, _token(api.ctx, "HW-0003").id, fail_count=9, locked_until=9e12)
        repo.update_token(conn, _token(api.ctx, "HW-0004").id, state="disabled")
    assert (
        _claim(api, "alice@example.com", "HW-0005", hotp(KEYS["HW-0005"], step)).status_code == 200
    )
    failed = {
        "unknown serial": ("NOPE-9", hotp(KEYS["HW-0002"], step)),
        "assigned to someone else": ("HW-0001", hotp(KEYS["HW-0001"], step)),
        "already the claimant's": ("HW-0005", hotp(KEYS["HW-0005"], step + 1)),
        "wrong code": ("HW-0002", wrong_code(KEYS["HW-0002"], step=step)),
        "malformed code": ("HW-0002", "7654329"),
        "locked token, wrong code": ("HW-0003", wrong_code(KEYS["HW-0003"], step=step)),
        "disabled token, right code": ("HW-0004", hotp(KEYS["HW-0004"], step)),
        "near miss (resync pending)": ("HW-0002", hotp(KEYS["HW-0002"], step + 10)),
    }
    answers = {
        why: _answer(_claim(api, "alice@example.com", s, c)) for why, (s, c) in failed.items()
    }
    assert len(set(answers.values())) == 1, answers
    status, body, _ = answers["wrong code"]
    assert status == 422 and b"serial or code not accepted" in body and b"next code" in body
    reasons = api.get("/api/v1/audit", params={"action": "token.self_assign", "outcome": "failure"})
    assert {i["reason"] for i in reasons.json()["items"]} >= {
        "not_available",
        "wrong_code",
        "malformed",
        "resync_pending",
    }  # the audit log keeps the reason the claimant is not told


def test_a_stale_lock_does_not_stop_the_holder_of_the_token(api, clock: Clock) -> None:
    _setup(api)
    with api.ctx.begin() as conn:
        repo.update_token(conn, _token(api.ctx, "HW-0003").id, fail_count=9, locked_until=9e12)
    code = hotp(KEYS["HW-0003"], int(clock.now // 30))
    assert _claim(api, "carol@example.com", "HW-0003", code).status_code == 200
    assert _token(api.ctx, "HW-0003").verification.locked_until == 0.0


def test_wrong_claims_never_touch_a_stock_token(api, clock: Clock) -> None:
    _setup(api)
    before = _token(api.ctx, "HW-0002")
    step = int(clock.now // 30)
    for i in range(claims.PER_USER - 1):
        wrong = wrong_code(KEYS["HW-0002"], step=step, pick=i)
        assert _claim(api, "alice@example.com", "HW-0002", wrong).status_code == 422
    after = _token(api.ctx, "HW-0002")
    assert after.verification == before.verification  # no failure counted, no lock
    assert after.version == before.version  # not even written
    # the one who holds the token claims it at once
    code = hotp(KEYS["HW-0002"], step)
    assert _claim(api, "carol@example.com", "HW-0002", code).status_code == 200


def test_claims_are_bounded_per_claimant(api, clock: Clock, monkeypatch) -> None:
    monkeypatch.setattr(claims, "PER_USER", 3)
    _setup(api)
    step = int(clock.now // 30)
    for i in range(3):
        wrong = wrong_code(KEYS["HW-0002"], step=step, pick=i)
        assert _claim(api, "alice@example.com", "HW-0002", wrong).status_code == 422
    clock.advance(30)
    # over the limit: refused unread, even with the right code, and the token stays in stock
    resp = _claim(api, "alice@example.com", "HW-0002", hotp(KEYS["HW-0002"], step + 1))
    assert resp.status_code == 429, resp.text
    assert resp.json()["error"]["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) > 3600
    assert _token(api.ctx, "HW-0002").owner_id is None
    refused = api.get("/api/v1/audit", params={"action": "token.self_assign", "outcome": "refused"})
    assert refused.json()["total"] == 1
    # others are not held back by alice's failures, and the token is not locked
    assert (
        _claim(api, "carol@example.com", "HW-0002", hotp(KEYS["HW-0002"], step + 1)).status_code
        == 200
    )
    # refusals do not extend the window: a day after the failures alice may claim again
    clock.advance(claims.WINDOW)
    resp = _claim(api, "alice@example.com", "HW-0003", hotp(KEYS["HW-0003"], int(clock.now // 30)))
    assert resp.status_code == 200, resp.text


def test_claims_are_bounded_per_address(ctx, clock: Clock, monkeypatch) -> None:
    monkeypatch.setattr(claims, "PER_ADDRESS", 4)
    inventory.import_seeds(ctx, SEEDS.encode(), actor="admin")
    for i in range(4):
        accounts.create_user(ctx, f"u{i}@example.com")
    step = int(clock.now // 30)

    def claim(user: str, address: str, code: str) -> None:
        enrolment.self_assign(ctx, user, "HW-0002", code, actor=user, client=address)

    for i in range(4):
        wrong = wrong_code(KEYS["HW-0002"], step=step, pick=i)
        with pytest.raises(CodeRejected):
            claim(f"u{i % 2}@example.com", "198.51.100.7", wrong)
    with pytest.raises(claims.TooManyClaims):
        claim("u2@example.com", "198.51.100.7", hotp(KEYS["HW-0002"], step))
    assert _token(ctx, "HW-0002").owner_id is None  # refused unread: still in stock
    claim("u3@example.com", "203.0.113.9", hotp(KEYS["HW-0002"], step))  # another address
    assert _token(ctx, "HW-0002").owner_id == accounts.get_user(ctx, "u3@example.com").id


def test_every_failed_verify_gets_the_same_answer(api, clock: Clock) -> None:
    _setup(api)
    begun = api.post("/api/v1/users/alice@example.com/tokens", json={"kind": "programmable"})
    token_id = begun.json()["id"]
    totp = pyotp.parse_uri(begun.json()["otpauth_uri"])
    api.watch.secrets.add(begun.json()["secret"])
    url = f"/api/v1/users/alice@example.com/tokens/{token_id}/verify"
    wrong = wrong_code(totp, at=clock.now)
    attempts = [
        {"code": wrong, "serial": "HW-0002"},  # a serial the inventory holds
        {"code": wrong, "serial": "NEW-1"},  # one it does not
        {"code": wrong},
        {"code": "12345"},
        {"code": wrong, "serial": "HW-0002"},  # the fifth failure locks the pending token
        {"code": totp.at(clock.now), "serial": "HW-0002"},  # locked: even the right code
        {"code": totp.at(clock.now), "serial": "NEW-1"},
    ]
    answers = [_answer(api.post(url, json=body)) for body in attempts]
    assert len(set(answers)) == 1, answers
    assert answers[0][0] == 422
    clock.advance(31)
    ok = api.post(url, json={"code": totp.at(clock.now), "serial": "HW-0002"})
    assert ok.status_code == 200, ok.text
    assert (ok.json()["serial"], ok.json()["reported_serial"]) == (None, "HW-0002")
    # the inventory's HW-0002 is untouched and still claimable by whoever holds it
    code = hotp(KEYS["HW-0002"], int(clock.now // 30))
    assert _claim(api, "bob@example.com", "HW-0002", code).status_code == 200


def _enrol_programmable(api, clock: Clock, user: str, serial: str) -> str:
    begun = api.post(f"/api/v1/users/{user}/tokens", json={"kind": "programmable"}).json()
    api.watch.secrets.add(begun["secret"])
    code = pyotp.parse_uri(begun["otpauth_uri"]).at(clock.now)
    resp = api.post(
        f"/api/v1/users/{user}/tokens/{begun['id']}/verify", json={"code": code, "serial": serial}
    )
    assert resp.status_code == 200, resp.text
    return begun["id"]


def test_a_self_registered_serial_never_blocks_the_vendor_import(api, clock: Clock) -> None:
    _setup(api)
    _enrol_programmable(api, clock, "alice@example.com", "VEND-7")
    _enrol_programmable(api, clock, "bob@example.com", "VEND-7")  # not unique: a label
    vendor = "VEND-7, 3132333435363738393031323334353637383935, totp, 6, 30\n"
    api.watch.secrets.add("3132333435363738393031323334353637383935")
    resp = api.post("/api/v1/tokens/import", json={"content": vendor})
    assert resp.status_code == 200 and resp.json()["created"] == 1, resp.text
    found = api.get("/api/v1/tokens", params={"serial": "VEND-7"}).json()["items"]
    assert sorted((t["kind"], t["serial"], t["reported_serial"], t["owner"]) for t in found) == [
        ("classic", "VEND-7", None, None),
        ("programmable", None, "VEND-7", "alice@example.com"),
        ("programmable", None, "VEND-7", "bob@example.com"),
    ]
    methods = api.get("/api/v1/users/alice@example.com/tokens").json()["items"]
    assert [m["reported_serial"] for m in methods] == ["VEND-7"]


def _row(token_id: str, serial: str, kind: str, source: str, now) -> dict:
    return {
        "id": token_id,
        "serial": serial,
        "kind": kind,
        "type": "totp",
        "algorithm": "SHA1",
        "digits": 6,
        "period": 30,
        "secret_enc": b"\x01" + bytes(48),
        "label": "",
        "state": "active",
        **state_values(TokenState()),
        "version": 0,
        "imported_drift": 0,
        "source": source,
        "created_at": now,
    }


def test_migration_0004_moves_self_registered_serials_aside(ctx) -> None:
    migrate_to(ctx, "0003", down=True)
    try:
        old = sa.Table("tokens", sa.MetaData(), autoload_with=ctx.engine)
        rows = [
            _row("p1", "P-1", "programmable", "enrolled", ctx.now_dt()),
            _row("a1", "A-1", "app", "enrolled", ctx.now_dt()),
            _row("c1", "C-1", "classic", "enrolled", ctx.now_dt()),  # a file named "enrolled"
            _row("c2", "C-2", "classic", "vendor.pskc", ctx.now_dt()),
        ]
        with ctx.engine.begin() as conn:
            conn.execute(sa.insert(old), rows)
        migrate_to(ctx, "head")
        with ctx.engine.connect() as conn:
            got = dict(
                (r.id, (r.serial, r.reported_serial))
                for r in conn.execute(
                    sa.select(tokens.c.id, tokens.c.serial, tokens.c.reported_serial)
                )
            )
        assert got == {
            "p1": (None, "P-1"),
            "a1": (None, "A-1"),
            "c1": ("C-1", None),
            "c2": ("C-2", None),
        }
        # downgrade puts them back where no inventory serial took the place meanwhile
        with ctx.engine.begin() as conn:
            conn.execute(sa.insert(tokens), [_row("c3", "A-1", "classic", "f.csv", ctx.now_dt())])
        migrate_to(ctx, "0003", down=True)
        old = sa.Table("tokens", sa.MetaData(), autoload_with=ctx.engine)
        with ctx.engine.connect() as conn:
            back = dict((r.id, r.serial) for r in conn.execute(sa.select(old.c.id, old.c.serial)))
        assert back == {"p1": "P-1", "a1": None, "c1": "C-1", "c2": "C-2", "c3": "A-1"}
    finally:
        migrate_to(ctx, "head")
        with ctx.engine.begin() as conn:
            conn.execute(sa.delete(tokens))
