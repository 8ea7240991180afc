"""Hostile shapes sent to every route of the app, on SQLite and on a real PostgreSQL.

The routes, their path and query parameters and their body fields come from the app's own
OpenAPI description, so a route added later is covered without touching this file (or fails
here until it gets sample values). Every answer must be below 500; an API error is JSON with a
``hint``; a page error is an HTML page. The focused tests below pin the exact answers.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from keyfob.server import accounts
from keyfob.server.store.schema import audit
from keyfob.server.web import sessions
from keyfob.server.web.common import LOGIN_CSRF_COOKIE

from .conftest import Api

NUL = "a\x00b"
HUGE = "9223372036854775808"  # 2**63: one past PostgreSQL's bigint
LONG_SERIAL = "S" * 300
LONG_FORWARDED = "f" * 2000
PASSWORD = "bad-input-password-1"
USER = "alice@example.com"
LOGIN_CSRF = "login-csrf-value"
SENT = str(918_270 + 3)  # a request value that must not reach the log (not in any source line)

OATH_CSV = """# serial, hex key, type, digits, period
HW-0001, 3132333435363738393031323334353637383930, totp, 6, 30
HW-0002, 3132333435363738393031323334353637383931, totp, 6, 30
"""

# Sample values that let a request get past "not found" and reach the database.
STRINGS = {
    "username": USER,
    "serial": "HW-0002",
    "ref": "HW-0001",
    "action": "assign",
    "kind": "app",
    "code": "123456",
    "code1": "123456",
    "code2": "654321",
    "password": PASSWORD,
    "new": "another-password-22",
    "repeat": "another-password-22",
    "current_password": PASSWORD,
    "label": "my token",
    "display_name": "Alice",
    "name": "a key",
    "role": "user",
    "content": OATH_CSV,
    "format": "oath-csv",
    "filename": "tokens.csv",
    "address": "192.0.2.10",  # a RADIUS client's
    "mode": "otp",
}


@dataclass
class Operation:
    """One method on one path, as the OpenAPI description gives it."""

    method: str
    path: str
    params: list[dict[str, Any]]
    media: str | None = None
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)

    @property
    def api(self) -> bool:
        return self.path.startswith("/api/") or self.path in ("/healthz", "/metrics")

    def of(self, where: str) -> list[dict[str, Any]]:
        return [p for p in self.params if p["in"] == where]


def _operations(spec: dict[str, Any]) -> list[Operation]:
    ops = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            content = op.get("requestBody", {}).get("content", {})
            operation = Operation(method.upper(), path, op.get("parameters", []))
            for media, body in content.items():
                ref = body["schema"]["$ref"].rsplit("/", 1)[1]
                schema = spec["components"]["schemas"][ref]
                operation.media = media
                operation.properties = schema["properties"]
                operation.required = schema.get("required", [])
            ops.append(operation)
    return ops


def _is_file(schema: dict[str, Any]) -> bool:
    return "contentMediaType" in schema or schema.get("format") == "binary"


def _is_string(schema: dict[str, Any]) -> bool:
    kinds = [schema, *schema.get("anyOf", [])]
    return not _is_file(schema) and any(k.get("type") == "string" for k in kinds)


def _sample(name: str, schema: dict[str, Any]) -> Any:
    if "enum" in schema:
        return schema["enum"][0]
    kinds = [schema, *schema.get("anyOf", [])]
    if any(k.get("type") == "string" for k in kinds):
        return STRINGS[name]
    if "default" in schema:
        return schema["default"]
    return schema.get("minimum", 1)


@dataclass
class World:
    """Alice (with a password and a pending enrolment), two inventory tokens, and an admin who
    can sign in on the web."""

    api: Api
    client: TestClient
    token_id: str
    spare_key: str  # an API key's id the cases may revoke

    def web_cookies(self) -> dict[str, str]:
        admin = accounts.get_user(self.api.ctx, "root@example.com")
        value = sessions.create(self.api.ctx, admin, "full")
        return {sessions.COOKIE: value, LOGIN_CSRF_COOKIE: LOGIN_CSRF}

    def send(
        self,
        op: Operation,
        *,
        path: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        if not op.api:  # a fresh signed-in admin each time: a case may sign out or disable
            self.client.cookies.clear()
            for name, value in self.web_cookies().items():
                self.client.cookies.set(name, value)
        values = {p["name"]: self.path_value(p["name"]) for p in op.of("path")} | (path or {})
        url = op.path.format(**{k: _quote(v) for k, v in values.items()})
        fields = self.body(op) | (body or {})
        kw: dict[str, Any] = {"params": query or {}}
        if op.media == "application/json":
            kw["json"] = fields
        elif op.media is not None:
            kw["data"] = fields
            if op.media == "multipart/form-data":
                kw["files"] = {"file": ("tokens.csv", OATH_CSV.encode(), "text/csv")}
        if op.api:
            sent = {"Authorization": f"Bearer {self.api.admin_key}"} | (headers or {})
        else:
            sent = dict(headers or {})
        return self.client.request(op.method, url, headers=sent, **kw)

    def path_value(self, name: str) -> str:
        ids = {"token_id": self.token_id, "key": self.spare_key, "key_id": self.spare_key}
        return ids.get(name) or STRINGS[name]

    def body(self, op: Operation) -> dict[str, Any]:
        fields = {}
        for name, schema in op.properties.items():
            if _is_file(schema):
                continue
            if name == "csrf":
                fields[name] = self.csrf_for(op)
            elif name in op.required or name in ("code", "serial"):
                fields[name] = _sample(name, schema)
        return fields

    def csrf_for(self, op: Operation) -> str:
        if op.path == "/login":
            return LOGIN_CSRF
        session = sessions.load(self.api.ctx, self.client.cookies.get(sessions.COOKIE))
        return session.csrf if session else ""


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="@")


@pytest.fixture
def world(api: Api) -> Iterator[World]:
    api.watch.secrets.add(PASSWORD)
    assert (
        api.post("/api/v1/users", json={"username": USER, "password": PASSWORD}).status_code == 201
    )
    accounts.create_user(
        api.ctx, "root@example.com", password=PASSWORD, role="admin", one_time=False
    )
    assert api.post("/api/v1/tokens/import", json={"content": OATH_CSV}).status_code == 200
    assert api.post("/api/v1/tokens/HW-0001/assign", json={"username": USER}).status_code == 200
    begun = api.post(f"/api/v1/users/{USER}/tokens", json={"kind": "app"})
    assert begun.status_code == 201, begun.text
    spare, _ = accounts.create_api_key(api.ctx, "spare", "validate")
    app = ProxyHeadersMiddleware(api.client.app, trusted_hosts="*")  # as `keyfob serve` runs it
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:  # type: ignore[arg-type]
        yield World(api, client, begun.json()["id"], spare.id)


def _problems(op: Operation, case: str, resp: Any, refused: bool) -> list[str]:
    """What is wrong with one answer (an empty list when it is right)."""
    where = f"{op.method} {op.path} [{case}] -> {resp.status_code}"
    kind = resp.headers.get("content-type", "")
    if resp.status_code >= 500:
        return [f"{where}: {resp.text[:200]!r}"]
    if refused and resp.status_code < 400:
        return [f"{where}: accepted"]
    if resp.status_code < 400:
        return []
    if not op.api:
        return [] if kind.startswith("text/html") else [f"{where}: a page error as {kind}"]
    if not kind.startswith("application/json"):
        return [f"{where}: not JSON but {kind}"]
    error = resp.json().get("error", {})
    return [] if error.get("hint") else [f"{where}: no hint in {error}"]


def _cases(op: Operation) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(name, what to send, must it be refused) for every hostile shape that fits ``op``."""
    for p in op.of("path"):
        yield f"NUL in path {p['name']}", {"path": {p["name"]: NUL}}, True
        if p["name"] in ("serial", "ref"):
            yield f"long path {p['name']}", {"path": {p["name"]: LONG_SERIAL}}, False
    for p in op.of("query"):
        yield f"NUL in query {p['name']}", {"query": {p["name"]: NUL}}, True
        if p["schema"].get("type") == "integer":
            yield f"huge query {p['name']}", {"query": {p["name"]: HUGE}}, False
        if p["name"] == "serial":
            yield "long query serial", {"query": {"serial": LONG_SERIAL}}, False
    for name, schema in op.properties.items():
        if _is_string(schema) and name != "csrf":
            yield f"NUL in body {name}", {"body": {name: NUL}}, True
        if name == "serial":
            yield "long body serial", {"body": {"serial": LONG_SERIAL}}, True
    yield "long X-Forwarded-For", {"headers": {"X-Forwarded-For": LONG_FORWARDED}}, False
    if op.api:
        basic = base64.b64encode(f"{NUL}:{PASSWORD}".encode()).decode()
        yield "NUL in Basic user", {"headers": {"Authorization": f"Basic {basic}"}}, True


def test_every_route_answers_hostile_input_with_a_4xx(world: World) -> None:
    spec = world.client.app.app.openapi()  # type: ignore[attr-defined]
    problems: list[str] = []
    for op in _operations(spec):
        for case, kw, refused in _cases(op):
            problems += _problems(op, case, world.send(op, **kw), refused)
    assert problems == [], "\n".join(problems)


def _only(world: World, method: str, path: str) -> Operation:
    spec = world.client.app.app.openapi()  # type: ignore[attr-defined]
    return next(o for o in _operations(spec) if (o.method, o.path) == (method, path))


def test_nul_in_the_path_query_and_basic_user_names_the_part(world: World) -> None:
    methods = _only(world, "GET", "/api/v1/users/{username}/tokens")
    resp = world.send(methods, path={"username": NUL})
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "bad_request"
    assert "path" in resp.json()["error"]["message"]
    resp = world.send(_only(world, "GET", "/api/v1/tokens"), query={"owner": NUL})
    assert resp.status_code == 400 and "query" in resp.json()["error"]["message"]
    basic = base64.b64encode(f"{NUL}:{PASSWORD}".encode()).decode()
    resp = world.send(methods, headers={"Authorization": f"Basic {basic}"})
    assert resp.status_code == 400 and "Authorization" in resp.json()["error"]["message"]
    page = world.send(_only(world, "GET", "/admin/users/{username}"), path={"username": NUL})
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/api/v1/tokens", "/api/v1/audit", "/api/v1/users"])
def test_an_offset_past_bigint_is_refused_with_a_hint(world: World, path: str) -> None:
    resp = world.send(_only(world, "GET", path), query={"offset": HUGE})
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert "offset" in error["message"] and "offset" in error["hint"]


def test_a_long_forwarded_address_is_clamped_in_the_audit(world: World) -> None:
    resp = world.client.post(
        "/api/v1/validate",
        json={"username": USER, "code": "123456"},
        headers={
            "Authorization": f"Bearer {world.api.validate_key}",
            "X-Forwarded-For": LONG_FORWARDED,
        },
    )
    assert resp.status_code == 200, resp.text
    with world.api.ctx.engine.connect() as conn:
        clients = conn.execute(sa.select(audit.c.client)).scalars().all()
    assert clients and all(c is None or len(c) <= 64 for c in clients)
    assert any(c and c.startswith("fff") for c in clients)


def test_the_sign_in_form_refuses_a_nul_username_with_a_page(world: World) -> None:
    world.client.cookies.clear()
    world.client.cookies.set(LOGIN_CSRF_COOKIE, LOGIN_CSRF)
    resp = world.client.post(
        "/login", data={"username": NUL, "password": PASSWORD, "csrf": LOGIN_CSRF}
    )
    assert 400 <= resp.status_code < 500
    assert resp.headers["content-type"].startswith("text/html")


def test_a_serial_over_its_column_is_refused_before_the_database(world: World) -> None:
    """Every service that takes a serial says what a serial is (a 400 with a hint), instead of
    "not accepted" or "not found" for a value no token could ever have."""
    from keyfob.server import enrolment, inventory
    from keyfob.server.errors import ServiceError

    ctx = world.api.ctx
    calls = [
        lambda: enrolment.self_assign(ctx, USER, LONG_SERIAL, "123456", actor="test"),
        lambda: enrolment.verify_enrolment(
            ctx, USER, world.token_id, "123456", serial=LONG_SERIAL, actor="test"
        ),
        lambda: inventory.assign(ctx, LONG_SERIAL, USER, actor="test"),
        lambda: inventory.unlock_token(ctx, "HW\x000001", actor="test"),
    ]
    for call in calls:
        with pytest.raises(ServiceError) as caught:
            call()
        assert (caught.value.status, caught.value.code) == (400, "bad_request")
        assert "128" in caught.value.message and caught.value.hint


ERRORS = [
    pytest.param("GET", "/api/v1/no-such-route", None, 404, id="unknown route"),
    pytest.param("DELETE", "/api/v1/users", None, 405, id="method not allowed"),
    pytest.param("POST", "/api/v1/users", {"username": 5}, 422, id="body of the wrong type"),
    pytest.param("POST", "/api/v1/users", {"username": "x y"}, 400, id="username with a space"),
    pytest.param("GET", "/api/v1/users/nobody@example.com/tokens", None, 404, id="unknown user"),
    pytest.param("POST", "/api/v1/tokens/HW-0001/unassign", None, 409, id="unassign twice"),
    pytest.param("POST", "/api/v1/tokens/NOPE/unlock", None, 404, id="unknown serial"),
    pytest.param("POST", "/api/v1/tokens/export", {"format": "pskc"}, 400, id="pskc, no password"),
    pytest.param("POST", "/api/v1/tokens/import", {}, 400, id="import of nothing"),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), ERRORS)
def test_every_api_error_carries_a_hint(
    world: World, method: str, path: str, body: Any, status: int
) -> None:
    if path.endswith("unassign"):
        world.api.post(path)  # now it is not assigned: a second unassign conflicts
    resp = world.client.request(
        method, path, json=body, headers={"Authorization": f"Bearer {world.api.admin_key}"}
    )
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["hint"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no credentials"),
        pytest.param(
            {"Authorization": "Basic " + base64.b64encode(b"x:y").decode()}, 403, id="basic"
        ),
    ],
)
def test_auth_errors_carry_a_hint(world: World, headers: dict[str, str], status: int) -> None:
    resp = world.client.post(
        "/api/v1/validate", json={"username": "a", "code": "1"}, headers=headers
    )
    assert resp.status_code == status and resp.json()["error"]["hint"]
    if status == 401:
        return
    bob = {"username": "bob@example.com", "password": PASSWORD}
    assert world.api.post("/api/v1/users", json=bob).status_code == 201
    user_basic = base64.b64encode(f"bob@example.com:{PASSWORD}".encode()).decode()
    resp = world.client.get("/api/v1/users", headers={"Authorization": f"Basic {user_basic}"})
    assert resp.status_code == 403 and resp.json()["error"]["hint"]


def _listing_fails(world: World, monkeypatch: pytest.MonkeyPatch, error: Exception) -> Any:
    """``GET /api/v1/tokens`` while the inventory listing raises ``error``."""
    from keyfob.server import inventory

    def fail(*_: Any, **__: Any) -> None:
        raise error

    monkeypatch.setattr(inventory, "list_inventory", fail)
    return world.send(_only(world, "GET", "/api/v1/tokens"))


def test_an_unexpected_failure_is_a_500_in_the_usual_shape_and_logs_no_values(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    error = sa.exc.OperationalError("SELECT 1", {"code": SENT}, Exception("gone"))
    resp = _listing_fails(world, monkeypatch, error)
    assert resp.status_code == 500
    assert resp.json()["error"]["code"] == "internal_error" and resp.json()["error"]["hint"]
    page = world.send(_only(world, "GET", "/admin/tokens"))
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in page.headers  # still inside the security headers
    assert "unexpected Exception" in caplog.text and SENT not in caplog.text


def test_a_value_the_database_refuses_is_a_400_and_logs_no_values(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The last net under the checks at the edge: a DataError is the caller's value."""
    error = sa.exc.DataError("INSERT …", {"serial": SENT}, Exception("too long"))
    resp = _listing_fails(world, monkeypatch, error)
    assert resp.status_code == 400 and resp.json()["error"]["hint"]
    assert SENT not in caplog.text and SENT not in resp.text


def test_page_errors_are_pages(world: World) -> None:
    world.client.cookies.clear()
    for path in ("/no-such-page", "/login?x=%01"):
        resp = world.client.get(path)
        assert 400 <= resp.status_code < 500
        assert resp.headers["content-type"].startswith("text/html")
    resp = world.client.post("/login", data={"username": "a", "password": "b", "csrf": "x"})
    assert resp.status_code == 403 and resp.headers["content-type"].startswith("text/html")
    resp = world.client.delete("/api/v1/validate")
    assert resp.status_code == 405 and "POST" in resp.json()["error"]["hint"]
