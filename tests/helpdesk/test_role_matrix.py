"""Role by operation: every REST route and every admin page, for each role, is allowed or 403 —
as keyfob.server.permissions says. The routes come from the app itself, so a new route without
an operation fails here instead of being open (or shut) by accident."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from keyfob.server import accounts
from keyfob.server.api.app import create_app
from keyfob.server.context import ServerContext
from keyfob.server.errors import Conflict
from keyfob.server.permissions import PAGES, SELF_OPS, Op, allowed, page_op
from keyfob.server.web import sessions

USER = "alice@example.com"
# Routes checked in their own handler rather than by a dependency.
INLINE = {"/metrics": Op.METRICS}
API_ROLES = ("validate", "metrics", "helpdesk", "admin")
USER_ROLES = ("user", "helpdesk", "admin")
PARAMS = {"username": USER, "serial": "NOSUCH1", "token_id": "x" * 32, "key": "nosuchkey"}


def _flat(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute, also inside included routers (FastAPI keeps those as wrappers)."""
    out: list[APIRoute] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            out += _flat(inner.routes)
        elif isinstance(route, APIRoute):
            out.append(route)
    return out


def _operation(route: APIRoute) -> Op | None:
    for dep in route.dependant.dependencies:
        op = getattr(dep.call, "operation", None)
        if op is not None:
            return Op(op)
    return INLINE.get(route.path)


def _api_routes(app: Any) -> list[tuple[str, str, Op]]:
    found = []
    for route in _flat(app.routes):
        if not (route.path.startswith("/api/") or route.path in INLINE):
            continue
        op = _operation(route)
        assert op is not None, f"{route.path} names no operation (permissions.Op)"
        for method in sorted(route.methods):
            found.append((method, route.path, op))
    return found


def _fill(path: str, **extra: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: extra.get(m[1], PARAMS.get(m[1], "x")), path)


@pytest.fixture
def keys(sqlite_ctx: ServerContext) -> dict[str, str]:
    out = {}
    for role in API_ROLES:
        _, out[role] = accounts.create_api_key(sqlite_ctx, f"k-{role}", role)
    return out


def _ensure_user(ctx: ServerContext) -> None:
    """The user every route is tried on; made again after a route that deletes users."""
    with contextlib.suppress(Conflict):
        accounts.create_user(ctx, USER, password="correct horse battery", one_time=False)


def test_every_api_route_by_role(sqlite_ctx: ServerContext, keys: dict[str, str]) -> None:
    client = TestClient(create_app(sqlite_ctx), raise_server_exceptions=False)
    routes = _api_routes(client.app)
    assert len(routes) >= 15
    for method, path, op in routes:
        _ensure_user(sqlite_ctx)
        url = _fill(path)
        for role, key in keys.items():
            resp = client.request(method, url, json={}, headers={"Authorization": f"Bearer {key}"})
            want_ok = allowed(role, op)
            assert (resp.status_code != 403) == want_ok, (method, path, role, resp.status_code)
            assert resp.status_code != 401, (method, path, role)
        # HTTP Basic: a user's own password, on their own account only.
        resp = client.request(method, url, json={}, auth=(USER, "correct horse battery"))
        own = op in SELF_OPS and "{username}" in path
        assert (resp.status_code not in (401, 403)) == own, (method, path, resp.status_code)
        if own:
            other = client.request(
                method, _fill(path, username="bob@example.com"), json={}, auth=(USER, "x")
            )
            assert other.status_code == 403


def _page_cases(app: Any) -> list[tuple[str, str, str | None, Op, Any]]:
    cases = []
    for route in _flat(app.routes):
        if not route.path.startswith("/admin"):
            continue
        for method in sorted(route.methods):
            entry = PAGES.get(f"{method} {route.path}")
            actions = list(entry) if isinstance(entry, dict) else [None]
            if "{action}" in route.path:
                actions.append("no-such-action")  # unlisted: admins only
            for action in actions:
                op = page_op(method, route.path, action)
                cases.append((method, route.path, action, op, _form(route)))
    return cases


def _form(route: APIRoute) -> tuple[dict[str, str], dict[str, Any]]:
    """A value for every form field the page requires (a form that does not parse is a 422
    before the page's own check), and a file for each file field."""
    data: dict[str, str] = {}
    files: dict[str, Any] = {}
    for field in route.dependant.body_params:
        name = field.alias or field.name
        if "UploadFile" in str(field.field_info.annotation):
            files[name] = ("seeds.csv", b"serial,secret\n", "text/csv")
        else:
            kind = str(field.field_info.annotation)
            data[name] = "1" if "int" in kind else "true" if "bool" in kind else "x"
    return data, files


def test_every_admin_page_by_role(sqlite_ctx: ServerContext) -> None:
    app = create_app(sqlite_ctx)
    cases = _page_cases(app)
    assert len(cases) >= 20
    for role in USER_ROLES:
        user = accounts.create_user(sqlite_ctx, f"{role}@example.com", role=role)
        cookie = sessions.create(sqlite_ctx, user, "full")
        session = sessions.load(sqlite_ctx, cookie)
        assert session is not None
        client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
        client.cookies.set(sessions.COOKIE, cookie)
        for method, path, action, op, (form, files) in cases:
            url = _fill(path, action=action or "x", username=USER)
            if method == "POST":
                resp = client.post(url, data={**form, "csrf": session.csrf}, files=files or None)
            else:
                resp = client.request(method, url)
            want_ok = allowed(role, op)
            assert (resp.status_code != 403) == want_ok, (
                role,
                method,
                path,
                action,
                resp.status_code,
            )


def test_helpdesk_is_between_user_and_admin() -> None:
    for op in Op:
        if allowed("helpdesk", op):
            assert allowed("admin", op), op
    for op in (
        Op.TOKENS_EXPORT,
        Op.TOKENS_IMPORT,
        Op.APIKEYS,
        Op.DIRECTORIES,
        Op.KEYS,
        Op.RADIUS_CLIENTS,
        Op.USERS_MANAGE,
        Op.TOKENS_RETIRE,
    ):
        assert not allowed("helpdesk", op), op
    for op in (
        Op.TAP_ISSUE,
        Op.TOKENS_LOST,
        Op.TOKENS_REPAIR,
        Op.TOKENS_ASSIGN,
        Op.TOKENS_READ,
        Op.USERS_READ,
        Op.AUDIT_READ,
    ):
        assert allowed("helpdesk", op), op
