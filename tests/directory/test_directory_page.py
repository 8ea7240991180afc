"""The admin page of directories (/admin/directories) through the app, against the real slapd:
add (the bind password never comes back), test with each step's time, remove; CSRF and the
admin-only rule. The service ``directory set`` is covered here too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from slapdkit import SERVICE_DN, SERVICE_PW, Slapd, Tree

from conftest import AddDirectory
from keyfob.server import accounts
from keyfob.server.api.app import create_app
from keyfob.server.context import ServerContext
from keyfob.server.directory import admin, admit
from keyfob.server.errors import Conflict, ServiceError
from keyfob.server.store.schema import audit
from keyfob.server.web import sessions

PAGE = "/admin/directories"


def signed_in(web: TestClient, ctx: ServerContext, username: str, role: str) -> str:
    """Sign ``username`` (created with ``role``) in on ``web``; returns the session's CSRF."""
    user = accounts.create_user(ctx, username, password="page-test-pw-1", role=role, one_time=False)
    value = sessions.create(ctx, user, "full")
    web.cookies.set(sessions.COOKIE, value)
    session = sessions.load(ctx, value)
    assert session is not None
    return session.csrf


@pytest.fixture
def web(ctx: ServerContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx), follow_redirects=False) as client:
        yield client


def add_form(tree: Tree, slapd: Slapd, tls_dir: Path, csrf: str, **kw: str) -> dict[str, str]:
    return {
        "csrf": csrf,
        "name": "corp",
        "kind": "openldap",
        "urls": slapd.ldaps_url,
        "base_dn": tree.base,
        "bind_dn": SERVICE_DN,
        "bind_password": SERVICE_PW,
        "ca_file": str(tls_dir / "ca.pem"),
        "cache_ttl": "120",
    } | kw


def test_add_test_and_remove_on_the_page(
    ctx: ServerContext, web: TestClient, slapd: Slapd, tree: Tree, tls_dir: Path
) -> None:
    tree.add_user("nora", "nora-directory-pw")
    csrf = signed_in(web, ctx, "root@example.com", "admin")
    page = web.get(PAGE)
    assert page.status_code == 200 and "No directory yet" in page.text
    assert 'href="/admin/directories" aria-current="page"' in page.text  # the nav link

    # a bad setting: 400, the form filled in again, but never the password
    bad = web.post(PAGE, data=add_form(tree, slapd, tls_dir, csrf, urls="ldap://127.0.0.1:1"))
    assert bad.status_code == 400 and "would send passwords in clear" in bad.text
    assert tree.base in bad.text and SERVICE_PW not in bad.text

    added = web.post(PAGE, data=add_form(tree, slapd, tls_dir, csrf))
    assert added.status_code == 200, added.text
    assert "Directory “corp” added" in added.text and SERVICE_PW not in added.text
    assert slapd.ldaps_url in added.text
    again = web.post(PAGE, data=add_form(tree, slapd, tls_dir, csrf))
    assert again.status_code == 409 and "exists" in again.text

    tested = web.post(f"{PAGE}/corp/test", data={"csrf": csrf, "login": "nora"})
    assert tested.status_code == 200 and "every step passed" in tested.text
    steps = re.findall(r"<td>([\d.]+) ms</td><td>([^<]+)</td>", tested.text)
    assert [r for _, r in steps] == ["ok", "found"]
    assert "entryUUID" in tested.text and tree.user_dn("nora") in tested.text
    missing = web.post(f"{PAGE}/corp/test", data={"csrf": csrf, "login": "nobody*"})
    assert missing.status_code == 200 and "a step failed" in missing.text
    assert web.post(f"{PAGE}/nope/test", data={"csrf": csrf}).status_code == 404

    assert admit(ctx, "nora").directory_user  # her row now exists, linked
    removed = web.post(f"{PAGE}/corp/remove", data={"csrf": csrf})
    assert removed.status_code == 303 and removed.headers["location"] == f"{PAGE}?removed=1"
    listed = web.get(removed.headers["location"])
    assert "1 of its users were disabled" in listed.text and "No directory yet" in listed.text
    assert accounts.get_user(ctx, "nora").disabled
    with ctx.engine.connect() as conn:
        rows = conn.execute(sa.select(audit.c.action, audit.c.details)).all()
    assert {"directory.add", "directory.remove"} <= {r.action for r in rows}
    assert all(SERVICE_PW not in str(r.details) for r in rows)


def test_csrf_and_admins_only(
    ctx: ServerContext, web: TestClient, tree: Tree, add_directory: AddDirectory
) -> None:
    record = add_directory(tree, name="corp")
    csrf = signed_in(web, ctx, "root@example.com", "admin")
    assert web.post(f"{PAGE}/corp/remove", data={"csrf": "forged"}).status_code == 403
    assert web.post(f"{PAGE}/corp/remove", data={}).status_code == 403
    assert admin.get_directory(ctx, "corp").id == record.id  # still there
    for name, role in (("pat@example.com", "user"), ("hal@example.com", "helpdesk")):
        web.cookies.clear()
        signed_in(web, ctx, name, role)
        refused(web, csrf)
    assert admin.get_directory(ctx, "corp").id == record.id
    web.cookies.clear()
    assert web.get(PAGE).headers["location"] == "/login"


def refused(web: TestClient, csrf: str) -> None:
    for resp in (  # refused (403), or sent back to their own page
        web.get(PAGE),
        web.post(f"{PAGE}/corp/remove", data={"csrf": csrf}),
        web.post(PAGE, data={"csrf": csrf}),
    ):
        assert resp.status_code in (303, 403) and resp.headers.get("location") in (None, "/")
        assert "corp" not in resp.text


def test_set_changes_settings_and_refuses_a_kind_change_with_users(
    ctx: ServerContext, tree: Tree, add_directory: AddDirectory
) -> None:
    tree.add_user("olga", "olga-directory-pw")
    add_directory(tree, name="corp")
    changed = admin.set_directory(ctx, "corp", {"cache_ttl": 60, "group_dn": ""}, actor="t")
    assert changed.cache_ttl == 60
    with pytest.raises(ServiceError, match="cache TTL"):
        admin.set_directory(ctx, "corp", {"cache_ttl": 1}, actor="t")
    with pytest.raises(ServiceError, match="no directory setting"):
        admin.set_directory(ctx, "corp", {"name": "other"}, actor="t")
    assert admit(ctx, "olga").directory_user
    with pytest.raises(Conflict, match="kind cannot change"):
        admin.set_directory(ctx, "corp", {"kind": "ad"}, actor="t")
    # a new bind password is sealed again; the wrong one makes the directory unusable
    admin.set_directory(ctx, "corp", {}, "wrong-service-pw", actor="t")
    assert not admin.test_directory(ctx, "corp").ok
    admin.set_directory(ctx, "corp", {}, SERVICE_PW, actor="t")
    assert admin.test_directory(ctx, "corp", "olga").ok
