"""API keys: revocation that every worker sees at once (CLI, REST, service), last use recorded
without a write per request, and the ``metrics`` role that /metrics asks for."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from keyfob.cli.main import main
from keyfob.server import accounts
from keyfob.server.api.app import create_app
from keyfob.server.context import ServerContext, open_context
from keyfob.server.errors import Conflict, NotFound, ServiceError
from keyfob.server.settings import Settings
from keyfob.server.store.schema import api_keys, audit
from testkit import statements

UNKNOWN = "kf_0123456789ab_" + "x" * 43


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _second_server(ctx: ServerContext) -> ServerContext:
    """Another server process on the same database and key file: its own pool and memory."""
    return open_context(ctx.settings, clock=ctx.clock)


def _new_key(ctx: ServerContext, leak_watch: Any, name: str, role: str) -> tuple[str, str]:
    key, secret = accounts.create_api_key(ctx, name, role, actor="test")
    leak_watch.secrets.add(secret)
    return key.id, secret


def _validate(client: TestClient, key: str) -> Any:
    body = {"username": "nobody@example.com", "code": "123456"}
    return client.post("/api/v1/validate", json=body, headers=_bearer(key))


def test_revoked_over_rest_is_refused_at_once_by_another_server(ctx, leak_watch) -> None:
    other = _second_server(ctx)
    try:
        here, there = TestClient(create_app(ctx)), TestClient(create_app(other))
        _, admin = _new_key(ctx, leak_watch, "ops", "admin")
        key_id, vpn = _new_key(ctx, leak_watch, "vpn", "validate")
        assert _validate(there, vpn).status_code == 200  # known and trusted over there
        assert _validate(there, vpn).status_code == 200

        resp = here.delete(f"/api/v1/apikeys/{key_id}", headers=_bearer(admin))
        assert resp.status_code == 200, resp.text
        assert resp.json()["revoked_at"] and resp.json()["name"] == "vpn"

        refused, unknown = _validate(there, vpn), _validate(there, UNKNOWN)
        assert refused.status_code == unknown.status_code == 401
        assert refused.json() == unknown.json()  # a revoked key looks like any wrong key
        assert refused.headers["www-authenticate"] == unknown.headers["www-authenticate"]
        assert _validate(here, vpn).status_code == 401
    finally:
        other.engine.dispose()


def test_revoke_by_name_and_by_id_with_an_audit_row(ctx, leak_watch) -> None:
    vpn_id, vpn = _new_key(ctx, leak_watch, "vpn", "validate")
    ops_id, ops = _new_key(ctx, leak_watch, "ops", "admin")
    assert accounts.check_api_key(ctx, vpn) is not None

    revoked = accounts.revoke_api_key(ctx, "vpn", actor="alice", client="192.0.2.1")
    assert revoked.id == vpn_id and revoked.revoked_at == ctx.now_dt()
    assert not revoked.hash  # the record handed back carries no hash
    assert accounts.check_api_key(ctx, vpn) is None
    assert accounts.check_api_key(ctx, ops) is not None
    accounts.revoke_api_key(ctx, ops_id, actor="alice")
    assert accounts.check_api_key(ctx, ops) is None

    with ctx.engine.connect() as conn:
        rows = conn.execute(sa.select(audit).where(audit.c.action == "apikey.revoke")).all()
    assert [(r.actor, r.details["key_id"], r.details["name"]) for r in rows] == [
        ("alice", vpn_id, "vpn"),
        ("alice", ops_id, "ops"),
    ]
    assert rows[0].client == "192.0.2.1"
    text = " ".join(str(v) for r in rows for v in r)
    assert vpn.split("_", 2)[2] not in text and ops.split("_", 2)[2] not in text

    with pytest.raises(Conflict) as again:
        accounts.revoke_api_key(ctx, vpn_id, actor="alice")
    assert "already revoked" in again.value.message and again.value.hint


def test_unknown_ambiguous_and_pasted_keys_are_clear_errors(ctx, leak_watch) -> None:
    first, _ = _new_key(ctx, leak_watch, "gateway", "validate")
    second, _ = _new_key(ctx, leak_watch, "gateway", "validate")
    with pytest.raises(Conflict) as ambiguous:
        accounts.revoke_api_key(ctx, "gateway", actor="alice")
    assert first in ambiguous.value.message and second in ambiguous.value.message
    assert "id" in ambiguous.value.hint

    accounts.revoke_api_key(ctx, first, actor="alice")  # by id: one of the two
    assert accounts.revoke_api_key(ctx, "gateway", actor="alice").id == second

    with pytest.raises(NotFound) as unknown:
        accounts.revoke_api_key(ctx, "no-such-key", actor="alice")
    assert "apikey list" in unknown.value.hint

    key_id, secret = _new_key(ctx, leak_watch, "pasted", "validate")
    with pytest.raises(ServiceError) as pasted:
        accounts.revoke_api_key(ctx, secret, actor="alice")
    assert secret.split("_", 2)[2] not in str(pasted.value)
    assert key_id in pasted.value.hint
    assert accounts.check_api_key(ctx, secret) is not None  # nothing was revoked


def _last_used(ctx: ServerContext, key_id: str) -> Any:
    with ctx.engine.connect() as conn:
        return conn.execute(
            sa.select(api_keys.c.last_used_at).where(api_keys.c.id == key_id)
        ).scalar_one()


def test_last_use_is_recorded_at_most_once_a_minute(ctx, clock, leak_watch) -> None:
    key_id, secret = _new_key(ctx, leak_watch, "vpn", "validate")
    assert _last_used(ctx, key_id) is None
    assert accounts.list_api_keys(ctx)[0].last_used_at is None

    assert statements(ctx, lambda: accounts.check_api_key(ctx, secret)) == (2, 1)
    first = ctx.now_dt()
    assert _last_used(ctx, key_id) == first
    assert accounts.list_api_keys(ctx)[0].last_used_at == first

    clock.advance(59)  # within the minute: one indexed read, no write, in any server
    other = _second_server(ctx)
    try:
        for server in (ctx, other):
            assert statements(server, lambda s=server: accounts.check_api_key(s, secret)) == (1, 0)
        assert _last_used(ctx, key_id) == first
        clock.advance(2)
        assert statements(other, lambda: accounts.check_api_key(other, secret)) == (2, 1)
        assert _last_used(ctx, key_id) == ctx.now_dt()
    finally:
        other.engine.dispose()
    # A malformed or foreign-looking key costs no statement at all.
    assert statements(ctx, lambda: accounts.check_api_key(ctx, "kf_NOT-HEX_x")) == (0, 0)


def test_rest_lists_keys_without_hashes_and_needs_an_admin_key(api) -> None:
    listed = api.get("/api/v1/apikeys")
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert {k["name"] for k in items} == {"test-admin", "test-validate"}
    assert set(items[0]) == {"id", "name", "role", "created_at", "last_used_at", "revoked_at"}
    assert all(k["last_used_at"] for k in items if k["name"] == "test-admin")  # this request
    assert api.get("/api/v1/apikeys", role="validate").status_code == 403
    assert api.delete("/api/v1/apikeys/test-admin", role="validate").status_code == 403
    assert api.get("/api/v1/apikeys", role=None).status_code == 401

    gone = api.delete("/api/v1/apikeys/no-such-key")
    assert gone.status_code == 404 and gone.json()["error"]["hint"]
    assert api.delete("/api/v1/apikeys/test-validate").status_code == 200
    again = api.delete("/api/v1/apikeys/test-validate")
    assert again.status_code == 409 and "already revoked" in again.json()["error"]["message"]
    revoked = {k["name"]: k["revoked_at"] for k in api.get("/api/v1/apikeys").json()["items"]}
    assert revoked["test-validate"] and revoked["test-admin"] is None


def test_metrics_need_a_metrics_or_admin_key(api, leak_watch) -> None:
    _, scraper = _new_key(api.ctx, leak_watch, "prometheus", "metrics")
    nothing = api.get("/metrics", role=None)
    assert nothing.status_code == 401 and nothing.json()["error"]["hint"]
    assert nothing.headers["www-authenticate"] == "Bearer"
    assert api.get("/metrics", role=None, headers=_bearer(UNKNOWN)).status_code == 401
    assert api.get("/metrics", role="validate").status_code == 403
    for headers in (_bearer(scraper), api.headers("admin")):
        resp = api.get("/metrics", role=None, headers=headers)
        assert resp.status_code == 200 and "keyfob_validations_total" in resp.text
    # A scraper's key is good for nothing else.
    assert api.get("/api/v1/users", role=None, headers=_bearer(scraper)).status_code == 403
    body = {"username": "nobody@example.com", "code": "123456"}
    resp = api.post("/api/v1/validate", role=None, headers=_bearer(scraper), json=body)
    assert resp.status_code == 403
    accounts.revoke_api_key(api.ctx, "prometheus", actor="t")
    assert api.get("/metrics", role=None, headers=_bearer(scraper)).status_code == 401


def _cli(capsys: Any, db: str, *args: str) -> tuple[int, str, str]:
    code = main(["admin", "--db", db, "apikey", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_lists_last_use_and_revokes(tmp_path, capsys, leak_watch, clock) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    assert main(["admin", "--db", db, "init"]) == 0  # admin commands never create a database
    capsys.readouterr()
    code, out, _ = _cli(capsys, db, "create", "--role", "validate", "--name", "vpn", "--json")
    secret = json.loads(out)["key"]
    leak_watch.secrets.add(secret)
    code, out, _ = _cli(capsys, db, "list", "--json")
    (listed,) = json.loads(out)
    assert listed["name"] == "vpn" and listed["last_used_at"] is None
    assert listed["revoked_at"] is None and "hash" not in listed

    server = open_context(Settings(db=db), clock=clock)  # a running server uses the key
    try:
        assert accounts.check_api_key(server, secret) is not None
        code, out, _ = _cli(capsys, db, "list", "--json")
        assert json.loads(out)[0]["last_used_at"] == server.now_dt().isoformat()
        code, out, _ = _cli(capsys, db, "list")
        assert "2027-01-15 08:00" in out and "never" not in out

        code, out, _ = _cli(capsys, db, "revoke", "vpn")
        assert code == 0 and f"revoked API key {listed['id']}" in out
        assert accounts.check_api_key(server, secret) is None  # at once, in the server too
    finally:
        server.engine.dispose()
    code, out, _ = _cli(capsys, db, "list", "--json")
    assert json.loads(out)[0]["revoked_at"]

    code, _, err = _cli(capsys, db, "revoke", listed["id"])
    assert code == 1 and "already revoked" in err
    code, _, err = _cli(capsys, db, "revoke", "nope")
    assert code == 1 and "no API key" in err and "apikey list" in err
    code, _, err = _cli(capsys, db, "revoke", secret)
    assert code == 1 and secret.split("_", 2)[2] not in err and listed["id"] in err


def test_a_validation_request_reads_its_key_once(api) -> None:
    """Over HTTP a validation costs the key's one indexed SELECT plus validate's statements
    (3 and a commit; 2 on PostgreSQL: test_statement_budget.py): the price of seeing a
    revocation from any worker at once."""
    api.validate("nobody@example.com", "123456")  # first use of the key: recorded
    want = (3, 0) if api.ctx.engine.dialect.name == "postgresql" else (4, 1)
    assert statements(api.ctx, lambda: api.validate("nobody@example.com", "123456")) == want
