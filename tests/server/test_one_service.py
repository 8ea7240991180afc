"""One service layer for the REST API and the pages (issue 10): both front ends call the same
service for the same thing, and answer the same refusal with the same status and words."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from keyfob.cli.main import main
from keyfob.server import accounts, auditlog, enrolment, inventory
from keyfob.server.store import repo
from keyfob.server.store.records import AuditFilter, TokenFilter, UserFilter
from keyfob.server.store.schema import tokens
from keyfob.server.store.vocab import ApiRole, ImportAction, Role, TokenKind, TokenStatus
from keyfob.server.web import sessions

from .conftest import Api

USER = "ann@example.com"
ADMIN = "root@example.com"
PASSWORD = "one-service-password-1"
STOCK = "HW-0001, 3132333435363738393031323334353637383930, totp, 6, 30\n"
BAD_ROW = "HW-0002, not-hex-at-all, totp, 6, 30\n"


class Page:
    """A browser's session on the pages: the cookie of a signed-in user and its CSRF token."""

    def __init__(self, api: Api, username: str) -> None:
        value = sessions.create(api.ctx, accounts.get_user(api.ctx, username), "full")
        self.client = TestClient(api.client.app, follow_redirects=False)
        self.client.cookies.set(sessions.COOKIE, value)
        loaded = sessions.load(api.ctx, value)
        assert loaded is not None
        self.csrf = loaded.csrf

    def get(self, path: str) -> Any:
        return self.client.get(path)

    def post(self, path: str, **fields: str) -> Any:
        return self.client.post(path, data={"csrf": self.csrf, **fields})


@pytest.fixture
def pages(api: Api) -> Callable[[str], Page]:
    api.watch.secrets.add(PASSWORD)
    accounts.create_user(api.ctx, USER, password=PASSWORD, one_time=False)
    accounts.create_user(api.ctx, ADMIN, password=PASSWORD, role="admin", one_time=False)
    return lambda username: Page(api, username)


def _said(page: Any) -> str:
    return html.unescape(page.text)


def test_a_missing_method_is_a_404_on_both(api: Api, pages: Callable[[str], Page]) -> None:
    rest = api.delete(f"/api/v1/users/{USER}/tokens/no-such-id")
    assert rest.status_code == 404
    message = rest.json()["error"]["message"]
    web = pages(USER)
    answers = {
        "remove form": web.get("/methods/no-such-id/remove"),
        "resync form": web.get("/methods/no-such-id/resync"),
        "setup page": web.get("/methods/no-such-id/setup"),  # was a 410 "set up again"
        "remove": web.post("/methods/no-such-id/remove", password=PASSWORD),
        "resync": web.post("/methods/no-such-id/resync", code1="123456", code2="654321"),
        "verify": web.post("/methods/no-such-id/verify", code="123456"),
        "rename": web.post("/methods/no-such-id/rename", label="phone"),
    }
    for what, page in answers.items():
        assert page.status_code == 404, what
        assert message in _said(page), what


def test_a_bad_period_is_a_400_on_both(api: Api, pages: Callable[[str], Page]) -> None:
    rest = api.post(f"/api/v1/users/{USER}/tokens", json={"kind": "app", "period": 45})
    page = pages(USER).post("/methods/new", kind="app", period="45")  # was a 409
    assert rest.status_code == page.status_code == 400
    message = rest.json()["error"]["message"]
    assert message == "period 45 is not 30 or 60" and message in _said(page)
    assert enrolment.list_methods(api.ctx, USER) == []


def test_admin_token_refusals_have_the_api_status(api: Api, pages: Callable[[str], Page]) -> None:
    assert api.post("/api/v1/tokens/import", json={"content": STOCK}).status_code == 200
    web = pages(ADMIN)
    cases = [  # (REST path, page path, status) — the page said 422 for every one of them
        ("/api/v1/tokens/NOPE-1/unlock", "/admin/tokens/NOPE-1/unlock", 404),
        ("/api/v1/tokens/HW-0001/unassign", "/admin/tokens/HW-0001/unassign", 409),
    ]
    for rest_path, page_path, status in cases:
        rest, page = api.post(rest_path), web.post(page_path)
        assert rest.status_code == page.status_code == status, page_path
        assert rest.json()["error"]["message"] in _said(page)
    rest = api.post("/api/v1/tokens/HW-0001/assign", json={"username": "nobody@example.com"})
    page = web.post("/admin/tokens/HW-0001/assign", username="nobody@example.com")
    assert rest.status_code == page.status_code == 404
    # A name that already exists: 409 over REST, and now on the page too (it said 400).
    rest = api.post("/api/v1/users", json={"username": USER})
    page = web.post("/admin/users", username=USER.upper())
    assert rest.status_code == page.status_code == 409


def test_the_only_enabled_admin_is_refused_alike_on_both(
    api: Api, pages: Callable[[str], Page]
) -> None:
    """Disabled on the page or deleted over REST: the same 409 and message (it was not checked
    on disable at all)."""
    page = pages(ADMIN).post(f"/admin/users/{ADMIN}/disable")
    rest = api.delete(f"/api/v1/users/{ADMIN}")
    assert rest.status_code == page.status_code == 409
    assert rest.json()["error"]["message"] in _said(page)
    assert accounts.get_user(api.ctx, ADMIN).disabled is False


def test_one_preshared_key_parser_for_both(api: Api, pages: Callable[[str], Page]) -> None:
    rest = api.post("/api/v1/tokens/import", json={"content": STOCK, "key": "zz"})
    files = {"file": ("stock.csv", STOCK.encode(), "text/csv")}
    web = pages(ADMIN)
    page = web.client.post("/admin/import", data={"csrf": web.csrf, "key": "zz"}, files=files)
    assert rest.status_code == 400, rest.text
    assert page.status_code == 400, page.text
    message = rest.json()["error"]["message"]
    assert "pre-shared key is not hex" in message and message in _said(page)


def test_an_import_answers_alike_on_both(api: Api, pages: Callable[[str], Page]) -> None:
    web = pages(ADMIN)
    for action, dry_run, status in (("preview", True, 200), ("import", False, 422)):
        rest = api.post(
            "/api/v1/tokens/import", json={"content": STOCK + BAD_ROW, "dry_run": dry_run}
        )
        files = {"file": ("stock.csv", (STOCK + BAD_ROW).encode(), "text/csv")}
        page = web.client.post(
            "/admin/import", data={"csrf": web.csrf, "action": action}, files=files
        )
        assert rest.status_code == page.status_code == status, action
        assert "row(s) have errors; nothing was imported" in _said(page)


def _recording(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[Any]:
    """Every filter the service ``module.name`` is called with, by either front end."""
    seen: list[Any] = []
    real = getattr(module, name)

    def spy(ctx: Any, where: Any, **kw: Any) -> Any:
        seen.append(where)
        return real(ctx, where, **kw)

    monkeypatch.setattr(module, name, spy)
    return seen


def test_listings_go_through_the_same_service(
    api: Api, pages: Callable[[str], Page], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert api.post("/api/v1/tokens/import", json={"content": STOCK}).status_code == 200
    audits = _recording(monkeypatch, auditlog, "query")
    rest = api.get("/api/v1/audit", params={"user": "TEST", "action": "token."})
    page = pages(ADMIN).get("/admin/audit?user=TEST&action=token.")
    assert rest.status_code == page.status_code == 200
    assert audits == [AuditFilter(user="TEST", action="token.")] * 2
    assert f"{rest.json()['total']} event(s)" in page.text

    listed = _recording(monkeypatch, inventory, "list_inventory")
    rest = api.get("/api/v1/tokens", params={"state": "active", "kind": "classic"})
    page = pages(ADMIN).get("/admin/tokens?state=active&kind=classic&owner=&assigned=&locked=")
    assert rest.status_code == page.status_code == 200
    wanted = TokenFilter(state=TokenStatus.ACTIVE, kind=TokenKind.CLASSIC)
    assert listed == [wanted, wanted] and rest.json()["total"] == 1
    # A word that is no state is refused alike (it used to list nothing on both).
    rest = api.get("/api/v1/tokens", params={"state": "asleep"})
    assert (
        rest.status_code == 422
        and pages(ADMIN).get("/admin/tokens?state=asleep").status_code == 400
    )

    people = _recording(monkeypatch, accounts, "list_users")
    rest = api.get("/api/v1/users", params={"prefix": "ANN", "role": "user"})
    page = pages(ADMIN).get("/admin/users?prefix=ANN&role=user")
    assert rest.status_code == page.status_code == 200
    assert people == [UserFilter(prefix="ANN", role=Role.USER)] * 2
    assert rest.json()["total"] == 1 and "1 user(s)." in page.text


def test_services_return_records_that_read_back_as_the_stored_words(api: Api) -> None:
    accounts.create_user(api.ctx, USER)
    begun = enrolment.begin(api.ctx, USER, "app", actor="test")
    api.watch.secrets.add(begun.credential.secret.hex())
    method = enrolment.get_method(api.ctx, USER, begun.id)
    assert method.kind is TokenKind.APP and method.state is TokenStatus.PENDING
    assert accounts.get_user(api.ctx, USER).role is Role.USER
    roles = {k.name: k.role for k in accounts.list_api_keys(api.ctx)}
    assert roles == {"test-admin": ApiRole.ADMIN, "test-validate": ApiRole.VALIDATE}
    assert all(type(role) is ApiRole for role in roles.values())
    with api.ctx.engine.connect() as conn:  # stored as the very strings they always were
        stored = conn.execute(sa.select(tokens.c.kind, tokens.c.state)).one()
        user = repo.get_user(conn, USER)
    assert tuple(stored) == ("app", "pending") and type(stored[0]) is str
    assert user is not None and user.role == "user"
    assert [a.value for a in ImportAction] == ["create", "unchanged", "error", "warning"]


def test_the_cli_and_the_api_show_when_a_key_was_last_used(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    key, secret = accounts.create_api_key(api.ctx, "vpn", "validate", actor="test")
    api.watch.secrets.add(secret)
    body = {"username": "nobody@example.com", "code": "123456"}
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.post("/api/v1/validate", role=None, headers=headers, json=body).status_code == 200

    used = api.ctx.now_dt().isoformat()
    listed = {k["name"]: k for k in api.get("/api/v1/apikeys").json()["items"]}
    assert listed["vpn"]["last_used_at"] == used
    settings = api.ctx.settings
    cli = ["admin", "--db", settings.db, "--key-file", str(settings.key_file), "apikey", "list"]
    assert main([*cli, "--json"]) == 0
    shown = {k["name"]: k for k in json.loads(capsys.readouterr().out)}
    assert shown["vpn"]["last_used_at"] == used and shown["vpn"]["id"] == key.id
    assert main(cli) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.endswith(" vpn"))
    assert "2027-01-15 08:00" in row and "never" not in row
