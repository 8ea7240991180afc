"""DELETE /api/v1/users/{username}: the service the CLI's `keyfob admin user delete` uses, for
admin API keys only; an unknown user is a 404 and the only enabled admin a 409 (nor is that
admin disabled: the same check guards the CLI's and the pages' disable)."""

from __future__ import annotations

import re

import pytest

from keyfob.server import accounts
from keyfob.server.errors import Conflict
from keyfob.server.store import repo

from .conftest import Api

USER = "gone@example.com"
STOCK = "HW-0001, 3132333435363738393031323334353637383930, totp, 6, 30\n"


def test_delete_a_user_with_an_app_and_a_stock_token(api: Api) -> None:
    assert api.post("/api/v1/users", json={"username": USER}).status_code == 201
    begun = api.post(f"/api/v1/users/{USER}/tokens", json={"kind": "app"})
    assert begun.status_code == 201, begun.text
    assert api.post("/api/v1/tokens/import", json={"content": STOCK}).status_code == 200
    assigned = api.post("/api/v1/tokens/HW-0001/assign", json={"username": USER})
    assert assigned.status_code == 200, assigned.text

    resp = api.delete(f"/api/v1/users/{USER}")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "username": USER,
        "deleted_methods": 1,
        "returned_to_inventory": ["HW-0001"],
    }
    users = api.get("/api/v1/users").json()["items"]
    assert USER not in [u["username"] for u in users]
    assert api.get(f"/api/v1/users/{USER}/tokens").status_code == 404
    token = api.get("/api/v1/tokens", params={"serial": "HW-0001"}).json()["items"]
    assert [(t.get("owner"), t["state"]) for t in token] == [(None, "active")]

    audit = api.get("/api/v1/audit", params={"action": "user.delete"}).json()["items"]
    assert len(audit) == 1
    row = audit[0]
    assert (row["actor"], row["target_user"], row["outcome"]) == (
        "apikey:test-admin",
        USER,
        "success",
    )
    assert row["details"] == {"deleted_methods": 1, "returned": 1}


def test_an_unknown_user_is_a_404(api: Api) -> None:
    resp = api.delete("/api/v1/users/nobody@example.com")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"


def test_the_only_enabled_admin_is_not_deleted(api: Api) -> None:
    accounts.create_user(api.ctx, "root@example.com", role="admin")
    resp = api.delete("/api/v1/users/root@example.com")
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "conflict"
    assert "only enabled admin" in resp.json()["error"]["message"]
    assert accounts.get_user(api.ctx, "root@example.com").role == "admin"
    # With a second admin, the first may go.
    accounts.create_user(api.ctx, "second@example.com", role="admin")
    assert api.delete("/api/v1/users/root@example.com").status_code == 200


def test_only_an_admin_key_may_delete(api: Api) -> None:
    accounts.create_user(api.ctx, USER)
    _, helpdesk = accounts.create_api_key(api.ctx, "test-helpdesk", "helpdesk")
    api.watch.secrets.add(helpdesk)
    for headers in ({"Authorization": f"Bearer {helpdesk}"}, api.headers("validate")):
        resp = api.delete(f"/api/v1/users/{USER}", role=None, headers=headers)
        assert resp.status_code == 403, resp.text
    assert resp.json()["error"]["code"] == "forbidden"
    assert accounts.get_user(api.ctx, USER).username == USER
    assert api.delete(f"/api/v1/users/{USER}", role=None).status_code == 401


def test_the_admin_check_counts_and_a_disabled_admin_does_not_count(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def every_user(*_: object, **__: object) -> None:
        raise AssertionError("deleting a user must not list every user")

    monkeypatch.setattr(repo, "list_users", every_user)
    accounts.create_user(api.ctx, "root@example.com", role="admin")
    accounts.create_user(api.ctx, "off@example.com", role="admin")
    accounts.set_disabled(api.ctx, "off@example.com", True, actor="test")
    resp = api.delete("/api/v1/users/root@example.com")
    assert resp.status_code == 409 and "only enabled admin" in resp.json()["error"]["message"]
    # The disabled admin may go; then a plain user, which needs no count at all.
    assert api.delete("/api/v1/users/off@example.com").status_code == 200
    accounts.create_user(api.ctx, USER)
    assert api.delete(f"/api/v1/users/{USER}").status_code == 200


def test_the_only_enabled_admin_is_not_disabled(api: Api) -> None:
    ctx = api.ctx
    accounts.create_user(ctx, "root@example.com", role="admin")
    with pytest.raises(Conflict) as refused:
        accounts.set_disabled(ctx, "root@example.com", True, actor="test")
    assert refused.value.message == "'root@example.com' is the only enabled admin"
    assert refused.value.hint == "make another admin first, or nobody could administer keyfob"
    assert accounts.get_user(ctx, "root@example.com").disabled is False
    # With a second admin, the first may be disabled; then the second is the only one left.
    accounts.create_user(ctx, "second@example.com", role="admin")
    assert accounts.set_disabled(ctx, "root@example.com", True, actor="test").disabled is True
    with pytest.raises(Conflict, match=re.escape("'second@example.com' is the only enabled admin")):
        accounts.set_disabled(ctx, "second@example.com", True, actor="test")
    # Enabling needs no check, and a disabled admin may be disabled again.
    accounts.set_disabled(ctx, "root@example.com", True, actor="test")
    assert accounts.set_disabled(ctx, "root@example.com", False, actor="test").disabled is False
    assert accounts.set_disabled(ctx, "second@example.com", True, actor="test").disabled is True
