"""The admin page of RADIUS clients: add (the generated secret shown once, never again), change
the mode and the Message-Authenticator rule, remove — CSRF-checked like every admin form."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from radiuskit import PASSWORD

from keyfob.server import accounts
from keyfob.server.api.app import create_app
from keyfob.server.context import open_context
from keyfob.server.radius import clients
from keyfob.server.settings import Settings
from testkit import Clock


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_admin_page_manages_radius_clients(tmp_path: Path, clock: Clock) -> None:
    ctx = open_context(
        Settings(db=f"sqlite:///{tmp_path / 'k.db'}", key_file=tmp_path / "k.key"), clock=clock
    )
    accounts.create_user(ctx, "root", password=PASSWORD, role="admin", one_time=False)
    web = TestClient(create_app(ctx), base_url="https://testserver")
    login = web.get("/login")
    web.post(
        "/login",
        data={"username": "root", "password": PASSWORD, "csrf": _csrf(login.text)},
        follow_redirects=True,
    )
    page = web.get("/admin/radius")
    assert page.status_code == 200 and "RADIUS clients" in page.text
    token = _csrf(page.text)
    added = web.post(
        "/admin/radius",
        data={"name": "vpn-1", "address": "198.51.100.0/24", "mode": "challenge", "csrf": token},
    )
    assert added.status_code == 200, added.text
    secret = re.search(r'<code id="new-secret">([A-Za-z0-9]{32})</code>', added.text)
    assert secret is not None
    (record,) = clients.list_clients(ctx)
    assert ctx.ring.open(record.secret_enc, record.id).decode() == secret.group(1)
    assert secret.group(1) not in web.get("/admin/radius").text  # shown once
    changed = web.post(
        "/admin/radius/vpn-1/set",
        data={"mode": "password+otp", "relaxed": "true", "csrf": token},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    (record,) = clients.list_clients(ctx)
    assert record.mode == "password+otp" and not record.require_message_authenticator
    refused = web.post("/admin/radius/vpn-1/remove", data={"csrf": "forged"})
    assert refused.status_code == 403 and clients.list_clients(ctx)
    removed = web.post("/admin/radius/vpn-1/remove", data={"csrf": token}, follow_redirects=False)
    assert removed.status_code == 303 and clients.list_clients(ctx) == []
    bad = web.post("/admin/radius", data={"name": "x", "address": "not an address", "csrf": token})
    assert bad.status_code == 400 and "not an IP address" in bad.text
    ctx.engine.dispose()
