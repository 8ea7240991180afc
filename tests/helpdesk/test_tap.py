"""Temporary access passcodes: accepted once, then refused; refused after expiry (the injected
clock) and after revoke; never in logs, audit or responses after issue; over REST and the web
sign-in's validation path; a wrong one counts against the same lockout."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from keyfob.server import accounts, tap
from keyfob.server.store.schema import access_passes, audit
from keyfob.server.validation import validate
from testkit import Clock, activate_app, keyfob, statements

USER = "tina@example.com"


@pytest.fixture
def helpdesk_key(api) -> str:
    _, key = accounts.create_api_key(api.ctx, "hd", "helpdesk")
    api.watch.secrets.add(key)
    return key


def _issue(api, key: str, **body) -> dict:
    resp = api.post(
        f"/api/v1/users/{USER}/tap",
        json=body,
        role=None,
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def _everything_stored(ctx) -> str:
    with ctx.engine.connect() as conn:
        rows = conn.execute(sa.select(audit)).all() + conn.execute(sa.select(access_passes)).all()
    return " ".join(str(v) for r in rows for v in r)


def test_passcode_is_one_use_and_never_stored(api, helpdesk_key, clock: Clock, leak_watch) -> None:
    accounts.create_user(api.ctx, USER)
    activate_app(api.ctx, clock, USER)
    issued = _issue(api, helpdesk_key, hours=8, reason="INC-42")
    passcode = issued["passcode"]
    assert set(issued) == {"passcode", "expires_at", "uses"} and issued["uses"] == 1
    groups = passcode.split(" ")
    assert len(groups) == 5 and all(len(g) == 4 and g.isdigit() for g in groups)  # 66 bits
    leak_watch.secrets.add(passcode)
    assert api.validate(USER, passcode) == "accept"
    assert api.validate(USER, passcode) == "reject"  # spent
    digits = passcode.replace(" ", "")
    stored = _everything_stored(api.ctx)
    assert digits not in stored and passcode not in stored
    listed = api.get(
        f"/api/v1/users/{USER}/tap", role=None, headers={"Authorization": f"Bearer {helpdesk_key}"}
    ).json()
    assert digits not in json.dumps(listed) and listed["items"][0]["uses_left"] == 0
    with api.ctx.engine.connect() as conn:
        actions = [r.action for r in conn.execute(sa.select(audit).order_by(audit.c.id))]
        actors = {
            r.actor for r in conn.execute(sa.select(audit).where(audit.c.action == "tap.issue"))
        }
    assert "tap.issue" in actions and "tap.use" in actions
    assert actors == {"apikey:hd"}


def test_expiry_revoke_and_one_live_pass(api, helpdesk_key, clock: Clock) -> None:
    accounts.create_user(api.ctx, USER)
    first = _issue(api, helpdesk_key, hours=1, uses=3)["passcode"]
    second = _issue(api, helpdesk_key, hours=1, uses=3)["passcode"]
    assert api.validate(USER, first) == "reject"  # a new pass revoked the old
    assert api.validate(USER, second.replace(" ", "-")) == "accept"  # dashes are fine too
    clock.advance(3601)
    assert api.validate(USER, second) == "reject"  # expired
    third = _issue(api, helpdesk_key, hours=1, uses=3)["passcode"]
    resp = api.delete(
        f"/api/v1/users/{USER}/tap", role=None, headers={"Authorization": f"Bearer {helpdesk_key}"}
    )
    assert resp.status_code == 200
    assert api.validate(USER, third) == "reject"


def test_limits(api, helpdesk_key) -> None:
    accounts.create_user(api.ctx, USER)
    for body in ({"hours": 0.1}, {"hours": 169}, {"uses": 0}, {"uses": 101}):
        resp = api.post(
            f"/api/v1/users/{USER}/tap",
            json=body,
            role=None,
            headers={"Authorization": f"Bearer {helpdesk_key}"},
        )
        assert resp.status_code in (400, 422), body
    with pytest.raises(Exception, match="ticket"):
        tap.issue(api.ctx, USER, require_reason=True, actor="t")


def test_wrong_passcodes_count_against_the_lockout(api, helpdesk_key, clock: Clock) -> None:
    accounts.create_user(api.ctx, USER)
    activate_app(api.ctx, clock, USER)
    good = _issue(api, helpdesk_key)["passcode"]
    wrong = "1111 2222 3333 4444 5555" if good != "1111 2222 3333 4444 5555" else "9" * 20
    for _ in range(5):
        assert api.validate(USER, wrong) == "reject"
    # The user's token is now locked: even the right passcode is refused until it ends.
    assert api.validate(USER, good) == "reject"
    with api.ctx.engine.connect() as conn:
        fails = conn.execute(sa.select(access_passes.c.failures)).scalar_one()
    assert fails >= 5


def test_same_validation_path_as_web_and_radius(sqlite_ctx, clock: Clock) -> None:
    """The web sign-in and RADIUS call validation.validate like REST does."""
    accounts.create_user(sqlite_ctx, USER)
    _, passcode = tap.issue(sqlite_ctx, USER, actor="helpdesk")
    result = validate(sqlite_ctx, USER, passcode, client="10.0.0.1", actor=USER)
    assert result.accepted and result.reason == "tap"


def test_cli_issue_json_list_revoke(tmp_path, clock: Clock) -> None:
    db, key_file = f"sqlite:///{tmp_path / 'k.db'}", tmp_path / "k.key"
    opts = ["--db", db, "--key-file", str(key_file)]
    keyfob("admin", *opts, "init", check=False)
    keyfob("admin", *opts, "user", "add", USER, check=False)
    out = keyfob(
        "admin",
        *opts,
        "tap",
        "issue",
        USER,
        "--hours",
        "2",
        "--uses",
        "2",
        "--reason",
        "INC-7",
        "--json",
    )
    issued = json.loads(out.stdout)
    assert set(issued) == {"passcode", "expires_at", "uses"} and issued["uses"] == 2
    listed = keyfob("admin", *opts, "tap", "list", "--json").stdout
    assert issued["passcode"].replace(" ", "") not in listed.replace(" ", "")
    assert json.loads(listed)[0]["reason"] == "INC-7"
    keyfob("admin", *opts, "tap", "revoke", USER)
    assert json.loads(keyfob("admin", *opts, "tap", "list", "--json").stdout)[0]["live"] is False


def test_a_passcode_shaped_code_costs_the_same_for_any_user(sqlite_ctx, clock: Clock) -> None:
    """Unknown user, user without a pass, user whose live pass the code does not open: the
    same statements and commits, so timing tells none of them apart."""
    for name in ("nopass@example.com", "haspass@example.com"):
        accounts.create_user(sqlite_ctx, name)
        activate_app(sqlite_ctx, clock, name)
    _, real = tap.issue(sqlite_ctx, "haspass@example.com", actor="helpdesk")
    wrong = "1111 2222 3333 4444 5555" if real != "1111 2222 3333 4444 5555" else "9" * 20
    costs = {
        name: statements(sqlite_ctx, lambda n=name: validate(sqlite_ctx, n, wrong))
        for name in ("ghost@example.com", "nopass@example.com", "haspass@example.com")
    }
    assert len(set(costs.values())) == 1, costs


@pytest.mark.parametrize(
    ("text", "at_start", "widths"),
    [
        ("pw42" + "1234 5678 9012 3456 7890", False, [24]),
        ("pw42" + "1234-5678-9012-3456-7890", False, [24]),
        ("pw42" + "12345678901234567890", False, [20]),
        ("12345678901234567890" + "pw42", True, [20]),
        ("1234 5678 9012 3456 7890" + "pw", True, [24]),
        ("1234 5678 9012 3456 7890", False, []),  # no password left over
        ("correct horse 42" + "123456", False, []),  # a 6-digit code: not a passcode
        ("pw" + "1234 5678 9012 3456 78901", False, []),  # a group of five
        ("pw" + "".join(chr(0xFF10 + int(c)) for c in "1234567890" * 2), False, []),  # fullwidth
    ],
    ids=[
        "spaced-after",
        "dashed-after",
        "digits-after",
        "digits-first",
        "spaced-first",
        "no-password",
        "otp-code",
        "bad-group",
        "fullwidth",
    ],
)
def test_passcode_widths(text: str, at_start: bool, widths: list[int]) -> None:
    """Where RADIUS password+otp splits a passcode off the password (modes.py)."""
    assert tap.passcode_widths(text, at_start=at_start) == widths
