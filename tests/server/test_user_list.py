"""Listing users a page at a time: the one service (``accounts.list_users``) behind
``GET /api/v1/users``, the admin page ``/admin/users`` and ``keyfob admin user list`` — pages by
username with the total, a username prefix whose ``%`` and ``_`` match themselves, a role, and
bad paging values refused with a hint; on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import json
import shlex
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keyfob.cli.main import main
from keyfob.server import accounts
from keyfob.server.context import ServerContext
from keyfob.server.store import repo
from keyfob.server.store.records import UserFilter
from keyfob.server.store.schema import users
from keyfob.server.store.vocab import Role
from keyfob.server.web import sessions

from .conftest import Api

PAGED = [f"page-{i:02d}@example.com" for i in range(1, 8)]  # seven: pages of 3, 3 and 1
# Usernames that hold LIKE's wildcards and escape characters, each beside a name that the
# unescaped wildcard would also match.
LITERAL = [
    "a_b@example.com",
    "axb@example.com",
    "100%@example.com",
    "1000@example.com",
    "x/y@example.com",
    "xy@example.com",
    "back\\slash@example.com",
    "backxslash@example.com",
]
HUGE = "9223372036854775808"  # 2**63: one past PostgreSQL's bigint
DASH = "\N{EN DASH}"  # between the first and the last row a CLI page shows


def _add(ctx: ServerContext, *names: str, role: Role = Role.USER) -> None:
    """Users without passwords, in one statement (no argon2, no audit: only rows to list)."""
    rows = [repo.user_values(name, now=ctx.now_dt(), role=role) for name in names]
    with ctx.begin() as conn:
        conn.execute(users.insert(), rows)


def _names(ctx: ServerContext, **where: Any) -> list[str]:
    return [u.username for u in accounts.list_users(ctx, UserFilter(**where), limit=1000).items]


# --- the service, on both backends ---------------------------------------------------------


def test_pages_by_username_with_the_total(ctx: ServerContext) -> None:
    _add(ctx, *reversed(PAGED), "zed@example.com", "Page-00@Example.com")
    where = UserFilter(prefix="page-")
    pages = [accounts.list_users(ctx, where, limit=3, offset=o) for o in (0, 3, 6, 9)]
    assert [p.total for p in pages] == [8, 8, 8, 8]
    shown = [[u.username for u in p.items] for p in pages]
    assert shown == [["Page-00@Example.com", *PAGED[:2]], PAGED[2:5], PAGED[5:], []]
    everyone = accounts.list_users(ctx)  # no filter: the first page of 100
    assert everyone.total == 9 and len(everyone.items) == 9
    assert everyone.items[-1].username == "zed@example.com"


def test_a_prefix_matches_in_any_case_and_its_wildcards_literally(ctx: ServerContext) -> None:
    _add(ctx, *LITERAL, "Carol@Example.com")
    assert _names(ctx, prefix="a_") == ["a_b@example.com"]
    assert _names(ctx, prefix="100%") == ["100%@example.com"]
    assert _names(ctx, prefix="%") == []
    assert _names(ctx, prefix="_") == []
    assert _names(ctx, prefix="x/") == ["x/y@example.com"]  # SQLAlchemy's escape character
    assert _names(ctx, prefix="back\\") == ["back\\slash@example.com"]  # PostgreSQL's default
    assert _names(ctx, prefix="CAROL@") == _names(ctx, prefix="carol@") == ["Carol@Example.com"]
    assert len(_names(ctx, prefix="")) == len(LITERAL) + 1  # "" is no filter


def test_a_role_alone_and_with_a_prefix(ctx: ServerContext) -> None:
    _add(ctx, "ann@example.com", "bob@example.com")
    _add(ctx, "desk1@example.com", "desk2@example.com", role=Role.HELPDESK)
    _add(ctx, "root@example.com", "admin2@example.com", role=Role.ADMIN)
    assert _names(ctx, role=Role.ADMIN) == ["admin2@example.com", "root@example.com"]
    assert _names(ctx, role=Role.HELPDESK, prefix="desk2") == ["desk2@example.com"]
    assert _names(ctx, role=Role.USER, prefix="desk") == []
    page = accounts.list_users(ctx, UserFilter(role=Role.HELPDESK), limit=1)
    assert page.total == 2 and [u.username for u in page.items] == ["desk1@example.com"]


def test_enabled_admins_are_counted_not_listed(ctx: ServerContext) -> None:
    _add(ctx, "root@example.com", "off@example.com", role=Role.ADMIN)
    _add(ctx, "ann@example.com")
    accounts.set_disabled(ctx, "off@example.com", True, actor="test")
    with ctx.begin() as conn:  # what the last-admin check counts, as it counts it
        assert len(repo.lock_enabled_admins(conn)) == 1


# --- REST ----------------------------------------------------------------------------------


def test_the_api_answers_a_page_with_total_limit_and_offset(api: Api) -> None:
    _add(api.ctx, *PAGED, "other@example.com")
    resp = api.get("/api/v1/users", params={"prefix": "PAGE-", "limit": 3, "offset": 3})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert {k: body[k] for k in ("total", "limit", "offset")} == {
        "total": 7,
        "limit": 3,
        "offset": 3,
    }
    assert [u["username"] for u in body["items"]] == PAGED[3:6]
    assert set(body["items"][0]) == {
        "username",
        "display_name",
        "role",
        "disabled",
        "must_change_password",
        "created_at",
    }
    whole = api.get("/api/v1/users").json()
    assert (whole["total"], whole["limit"], whole["offset"]) == (8, 100, 0)
    assert len(whole["items"]) == 8
    last = api.get("/api/v1/users", params={"prefix": "page-", "limit": 3, "offset": 6}).json()
    assert [u["username"] for u in last["items"]] == PAGED[6:]
    past = api.get("/api/v1/users", params={"offset": 50}).json()
    assert past["items"] == [] and past["total"] == 8


def test_the_api_filters_by_a_literal_prefix_and_a_role(api: Api) -> None:
    _add(api.ctx, *LITERAL)
    _add(api.ctx, "root@example.com", role=Role.ADMIN)
    for prefix, wanted in (("a_", ["a_b@example.com"]), ("100%", ["100%@example.com"])):
        body = api.get("/api/v1/users", params={"prefix": prefix}).json()
        assert [u["username"] for u in body["items"]] == wanted and body["total"] == 1
    body = api.get("/api/v1/users", params={"role": "admin"}).json()
    assert [u["username"] for u in body["items"]] == ["root@example.com"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"limit": "0"}, "limit", id="limit 0"),
        pytest.param({"limit": "1001"}, "limit", id="limit over 1000"),
        pytest.param({"limit": "ten"}, "limit", id="limit not a number"),
        pytest.param({"offset": "-1"}, "offset", id="negative offset"),
        pytest.param({"offset": HUGE}, "offset", id="offset past bigint"),
        pytest.param({"role": "wizard"}, "role", id="no such role"),
    ],
)
def test_bad_paging_values_are_refused_with_a_hint(
    api: Api, params: dict[str, str], field: str
) -> None:
    # The same machinery as /api/v1/tokens and /api/v1/audit: a query value outside its bounds
    # is the request-validation answer (422, code invalid_request), naming the field.
    resp = api.get("/api/v1/users", params=params)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in error["message"] and field in error["hint"]


def test_a_prefix_longer_than_any_username_is_a_400(api: Api) -> None:
    resp = api.get("/api/v1/users", params={"prefix": "_" * 30_000})  # 60 000 bytes escaped
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert "prefix is 30000 characters long" in error["message"] and error["hint"]
    assert api.get("/api/v1/users", params={"prefix": "a" * 255}).json()["total"] == 0


@pytest.mark.parametrize(
    ("path", "name", "longest"),
    [("/api/v1/tokens", "serial", 128), ("/api/v1/audit", "action", 64)],
    ids=["token-serial", "audit-action"],
)
def test_other_prefix_filters_longer_than_their_column_are_a_400(
    api: Api, path: str, name: str, longest: int
) -> None:
    """SQLite refuses a LIKE pattern past 50 000 bytes: without the check this was a 500."""
    resp = api.get(path, params={name: "_" * 30_000})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert f"{name} is 30000 characters long; none is longer than {longest}" in error["message"]
    assert error["hint"]
    assert api.get(path, params={name: "a" * longest}).json()["total"] == 0


def test_helpdesk_keys_list_validate_keys_do_not(api: Api) -> None:
    _, helpdesk = accounts.create_api_key(api.ctx, "desk", "helpdesk")
    api.watch.secrets.add(helpdesk)
    resp = api.get("/api/v1/users", role=None, headers={"Authorization": f"Bearer {helpdesk}"})
    assert resp.status_code == 200 and resp.json()["total"] == 0
    assert api.get("/api/v1/users", role="validate").status_code == 403


# --- the admin page ------------------------------------------------------------------------


def _admin_page(api: Api) -> TestClient:
    accounts.create_user(api.ctx, "root@example.com", role="admin")
    cookie = sessions.create(api.ctx, accounts.get_user(api.ctx, "root@example.com"), "full")
    client = TestClient(api.client.app, follow_redirects=False)
    client.cookies.set(sessions.COOKIE, cookie)
    return client


def _rows(text: str) -> list[str]:
    return [u for u in PAGED + LITERAL if f'href="/admin/users/{html.escape(u)}"' in text]


def test_the_page_pages_with_links_and_a_search_box(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyfob.server.web import admin_pages

    monkeypatch.setattr(admin_pages, "PAGE", 3)  # seven users make three pages
    _add(api.ctx, *PAGED)
    client = _admin_page(api)
    first = client.get("/admin/users", params={"prefix": "page-"})
    assert first.status_code == 200, first.text
    text = first.text
    assert '<form method="get" action="/admin/users"' in text
    assert 'name="prefix" value="page-"' in text
    assert "7 user(s), page 1 of 3." in text
    assert _rows(text) == PAGED[:3]
    assert 'href="?prefix=page-&amp;role=&page=2">Next →</a>' in text
    assert "← Previous" not in text

    second = client.get("/admin/users", params={"prefix": "page-", "page": 2}).text
    assert _rows(second) == PAGED[3:6] and "page 2 of 3" in second
    assert 'page=1">← Previous</a>' in second and 'page=3">Next →</a>' in second
    past = client.get("/admin/users", params={"prefix": "page-", "page": 99})
    assert past.status_code == 200 and _rows(past.text) == []  # past the end: nothing listed

    everyone = client.get("/admin/users").text  # the admin too: eight
    assert "8 user(s), page 1 of 3." in everyone and 'name="prefix" value=""' in everyone


def test_the_page_searches_a_literal_prefix_and_a_role(api: Api) -> None:
    _add(api.ctx, *LITERAL)
    client = _admin_page(api)
    text = client.get("/admin/users", params={"prefix": "100%"}).text
    assert _rows(text) == ["100%@example.com"] and "1 user(s)." in text
    assert 'name="prefix" value="100%"' in text
    text = client.get("/admin/users", params={"prefix": "a_"}).text
    assert _rows(text) == ["a_b@example.com"]
    text = client.get("/admin/users", params={"role": "admin"}).text
    assert "1 user(s)." in text and 'href="/admin/users/root@example.com"' in text
    assert '<option value="admin" selected>' in text
    refused = client.get("/admin/users", params={"role": "wizard"})
    assert refused.status_code == 400 and "role 'wizard'" in html.unescape(refused.text)


# --- the CLI -------------------------------------------------------------------------------


def _group(ctx: ServerContext) -> list[str]:
    return ["--db", ctx.settings.db, "--key-file", str(ctx.settings.key_file)]


def _cli(
    ctx: ServerContext, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    code = main(["admin", *_group(ctx), "user", "list", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_next_page_command_names_no_database_the_environment_gave(
    sqlite_ctx: ServerContext, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """KEYFOB_DB (which may hold a password) stays where it is: the same environment gives the
    next page the same database."""
    _add(sqlite_ctx, *PAGED)
    monkeypatch.setenv("KEYFOB_DB", sqlite_ctx.settings.db)
    monkeypatch.setenv("KEYFOB_KEY_FILE", str(sqlite_ctx.settings.key_file))
    code = main(["admin", "user", "list", "--limit", "2"])
    _, err = capsys.readouterr()
    assert code == 0
    assert (
        err
        == f"showing 1{DASH}2 of 7 user(s); next page: keyfob admin user list --limit 2 --offset 2\n"
    )


def test_the_cli_pages_and_says_how_to_see_the_next_page(
    sqlite_ctx: ServerContext, capsys: pytest.CaptureFixture[str]
) -> None:
    _add(sqlite_ctx, *PAGED, *LITERAL)
    code, out, err = _cli(sqlite_ctx, capsys, "--prefix", "page-", "--limit", "3")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == PAGED[:3]
    # the next page's command names the database and key file typed here, so it can be pasted
    assert err == (
        f"showing 1{DASH}3 of 7 user(s); next page: "
        + shlex.join(["keyfob", "admin", *_group(sqlite_ctx), "user", "list"])
        + " --prefix page- --limit 3 --offset 3\n"
    )
    code, out, err = _cli(sqlite_ctx, capsys, "--prefix", "page-", "--limit", "3", "--offset", "6")
    assert [line.split()[0] for line in out.splitlines()] == PAGED[6:]
    assert err == f"showing 7{DASH}7 of 7 user(s)\n"
    code, out, err = _cli(sqlite_ctx, capsys, "--prefix", "page-", "--limit", "3", "--offset", "9")
    assert code == 0 and out == ""
    assert err == (
        "showing none of 7: --offset 9 is past the last user; the last page starts at --offset 6\n"
    )
    code, out, err = _cli(sqlite_ctx, capsys, "--prefix", "100%")
    assert out.split() == ["100%@example.com", "user"] and err == f"showing 1{DASH}1 of 1 user(s)\n"
    code, out, err = _cli(sqlite_ctx, capsys, "--prefix", "nobody", "--role", "admin")
    assert (code, out, err) == (0, "", "no users match\n")
    # The default page is 100: the hint leaves --limit out, and quotes what the shell would eat.
    _add(sqlite_ctx, *[f"many-{i:03d}@example.com" for i in range(120)])
    code, out, err = _cli(sqlite_ctx, capsys, "--prefix", "many-")
    assert len(out.splitlines()) == 100
    assert err.endswith("user list --prefix many- --offset 100\n")
    code, out, err = _cli(sqlite_ctx, capsys, "--limit", "1")
    assert err.startswith(f"showing 1{DASH}1 of 135 user(s); next page: keyfob admin --db ")
    # A prefix the shell would take apart comes back quoted, so the hint can be pasted.
    _add(sqlite_ctx, "o'neil-1@example.com", "o'neil-2@example.com")
    code, out, err = _cli(sqlite_ctx, capsys, "--prefix", "O'", "--limit", "1")
    assert out.split()[0] == "o'neil-1@example.com"
    line, hint = err.rstrip("\n").split("; next page: ")
    assert line == f"showing 1{DASH}1 of 2 user(s)"
    assert shlex.split(hint) == [
        *("keyfob", "admin", *_group(sqlite_ctx), "user", "list"),
        *("--prefix", "O'", "--limit", "1", "--offset", "1"),
    ]


def test_the_cli_json_is_the_api_page(
    sqlite_ctx: ServerContext, capsys: pytest.CaptureFixture[str]
) -> None:
    _add(sqlite_ctx, *PAGED)
    _add(sqlite_ctx, "root@example.com", role=Role.ADMIN)
    code, out, err = _cli(sqlite_ctx, capsys, "--prefix", "page-", "--limit", "2", "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert (data["total"], data["limit"], data["offset"]) == (7, 2, 0)
    assert [u["username"] for u in data["items"]] == PAGED[:2]
    code, out, _ = _cli(sqlite_ctx, capsys, "--role", "admin", "--json")
    assert [u["username"] for u in json.loads(out)["items"]] == ["root@example.com"]


@pytest.mark.parametrize(
    ("args", "status", "said"),
    [
        pytest.param(("--limit", "0"), 2, "--limit", id="limit 0"),
        pytest.param(("--limit", "1001"), 2, "--limit", id="limit over 1000"),
        pytest.param(("--offset", "-1"), 2, "--offset", id="negative offset"),
        pytest.param(("--role", "wizard"), 1, "use user, helpdesk or admin", id="no such role"),
    ],
)
def test_the_cli_refuses_bad_paging_values(
    sqlite_ctx: ServerContext,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    status: int,
    said: str,
) -> None:
    code, out, err = _cli(sqlite_ctx, capsys, *args)
    assert code == status and out == "" and said in err
