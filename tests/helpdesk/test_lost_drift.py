"""Lost, found and retired tokens, and drift at a glance (issue 13, server/helpdesk.py).

Lost → refused with the same answer as a wrong code; found → accepted; retired → the stored
secret column no longer opens to the old secret, and a re-import of the serial is refused
without allow_retired. Drift history and the warning from codes at known offsets (the injected
clock)."""

from __future__ import annotations

import base64

import pyotp
import pytest
import sqlalchemy as sa

from keyfob.server import accounts, helpdesk, inventory
from keyfob.server.errors import Conflict
from keyfob.server.store.records import TokenFilter
from keyfob.server.store.schema import audit, tokens
from keyfob.server.store.vocab import TokenStatus
from testkit import Clock, wrong_code

USER = "lena@example.com"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
SERIAL = "2300000000001"
CSV = f"upn,serial number,secret key,time interval,manufacturer,model\n{USER},{SERIAL},{SECRET},30,Token2,C202\n"


@pytest.fixture
def fob(api, clock: Clock) -> pyotp.TOTP:
    """A classic token, imported and assigned to USER."""
    api.watch.secrets.add(SECRET)
    accounts.create_user(api.ctx, USER)
    report = inventory.import_seeds(api.ctx, CSV.encode(), actor="test")
    assert report.ok, report.as_dict()
    return pyotp.TOTP(SECRET, interval=30)


def _validate(api, code: str):
    resp = api.post("/api/v1/validate", json={"username": USER, "code": code}, role="validate")
    return resp.status_code, resp.json()


def _actions(ctx) -> list[str]:
    with ctx.engine.connect() as conn:
        return [r.action for r in conn.execute(sa.select(audit).order_by(audit.c.id))]


def test_lost_refuses_like_a_wrong_code_and_found_accepts(api, fob, clock: Clock) -> None:
    wrong = _validate(api, wrong_code(SECRET, at=clock.now))
    clock.advance(30)
    token, passcode = helpdesk.mark_lost(api.ctx, SERIAL, actor="hd")
    assert token.state is TokenStatus.LOST and token.lost_at is not None
    assert token.owner == USER and passcode is None  # still among the user's methods
    right_while_lost = _validate(api, fob.at(clock.now))
    assert right_while_lost == wrong  # same status, same body
    assert right_while_lost[1]["result"] == "reject"
    with pytest.raises(Conflict):
        inventory.set_token_disabled(api.ctx, SERIAL, False, actor="hd")  # not a back door
    clock.advance(30)
    found = helpdesk.mark_found(api.ctx, SERIAL, actor="hd")
    assert found.state is TokenStatus.ACTIVE and found.lost_at is None
    assert found.verification.fail_count == 0
    assert _validate(api, fob.at(clock.now))[1]["result"] == "accept"
    assert {"token.lost", "token.found"} <= set(_actions(api.ctx))


def test_lost_with_a_passcode(api, fob, clock: Clock, leak_watch) -> None:
    _, passcode = helpdesk.mark_lost(api.ctx, SERIAL, actor="hd", issue_tap=True)
    assert passcode is not None
    leak_watch.secrets.add(passcode)
    assert api.validate(USER, passcode) == "accept"


def test_self_service_lost_is_the_owners_only(api, fob) -> None:
    accounts.create_user(api.ctx, "other@example.com")
    with pytest.raises(Exception) as err:
        helpdesk.mark_lost(api.ctx, SERIAL, actor="other", owner="other@example.com")
    assert getattr(err.value, "status", None) == 404
    token, _ = helpdesk.mark_lost(api.ctx, SERIAL, actor=USER, owner=USER.upper())
    assert token.state is TokenStatus.LOST


def test_retire_destroys_the_secret_and_refuses_reimport(api, fob, clock: Clock) -> None:
    with api.ctx.engine.connect() as conn:
        token_id, before = conn.execute(
            sa.select(tokens.c.id, tokens.c.secret_enc).where(tokens.c.serial == SERIAL)
        ).one()
    old = base64.b32decode(SECRET)
    assert api.ctx.ring.open(before, token_id) == old
    retired = helpdesk.retire(api.ctx, SERIAL, actor="admin")
    assert retired.state is TokenStatus.RETIRED and retired.owner is None
    with api.ctx.engine.connect() as conn:
        after = conn.execute(
            sa.select(tokens.c.secret_enc).where(tokens.c.id == token_id)
        ).scalar_one()
    assert after != before
    assert api.ctx.ring.open(after, token_id) != old  # overwritten, not flagged
    assert _validate(api, fob.at(clock.now))[1]["result"] == "reject"
    again = inventory.import_seeds(api.ctx, CSV.encode(), actor="test")
    assert not again.ok
    row = again.rows[0]
    assert row.action == "error" and "retired" in row.message and "--allow-retired" in row.hint
    forced = inventory.import_seeds(api.ctx, CSV.encode(), allow_retired=True, actor="test")
    assert forced.ok and forced.count("create") == 1
    clock.advance(30)
    assert _validate(api, fob.at(clock.now))[1]["result"] == "accept"


def test_retire_over_rest_import_is_refused_too(api, fob) -> None:
    helpdesk.retire(api.ctx, SERIAL, actor="admin")
    resp = api.post("/api/v1/tokens/import", json={"content": CSV})
    assert resp.status_code == 422 and "retired" in resp.text
    resp = api.post("/api/v1/tokens/import", json={"content": CSV, "allow_retired": True})
    assert resp.status_code == 200, resp.text


def test_drift_history_warning_reset_and_filter(api, fob, clock: Clock) -> None:
    # Codes at known offsets from the injected clock: on time twice, then one step ahead.
    clock.advance(30)
    assert api.validate(USER, fob.at(clock.now)) == "accept"  # drift 0
    clock.advance(30)
    assert api.validate(USER, fob.at(clock.now)) == "accept"  # drift 0 again: same run
    clock.advance(30)
    assert api.validate(USER, fob.at(clock.now + 30)) == "accept"  # +1 step
    report = helpdesk.drift_report(api.ctx, SERIAL)
    assert [(r.drift, r.accepts) for r in report.history] == [(0, 2), (1, 1)]
    assert report.drift_steps == 1 and report.drift_seconds == 30 and report.warning is None
    assert report.last_used_at is not None
    # 100 steps ahead (the token's clock 50 minutes fast): two consecutive codes resync it.
    clock.advance(30)
    assert api.validate(USER, fob.at(clock.now + 100 * 30)) == "reject"
    assert api.validate(USER, fob.at(clock.now + 101 * 30)) == "accept"
    report = helpdesk.drift_report(api.ctx, SERIAL)
    assert report.drift_steps == 101 and report.drift_seconds == 3030
    assert report.history[-1].drift == 101
    assert report.warning and "resync window" in report.warning  # 101 >= 0.75 * 120
    data = report.as_dict()
    assert data["history"][-1]["drift_seconds"] == 3030 and data["warning"]
    over = inventory.list_inventory(api.ctx, TokenFilter(drift_over=3000))
    assert [t.serial for t in over.items] == [SERIAL]
    assert inventory.list_inventory(api.ctx, TokenFilter(drift_over=3030)).total == 0
    reset = helpdesk.reset_drift(api.ctx, SERIAL, actor="hd")
    assert reset.verification.drift == 0
    assert helpdesk.drift_report(api.ctx, SERIAL).warning is None
    assert "token.drift_reset" in _actions(api.ctx)


def test_drift_history_stays_compact() -> None:
    from keyfob.server.store import driftlog

    text = None
    for i in range(500):
        text = driftlog.append(text, 1_700_000_000 + 30 * i, i % 7)
    runs = driftlog.parse(text)
    assert len(runs) == driftlog.MAX_RUNS and len(text or "") <= driftlog.MAX_CHARS
    assert driftlog.parse("not json") == []
