"""The admin pages: users, the token inventory, seed-file import, the audit log, API keys.

Each calls the service the REST route calls, and answers a refusal with the status the route
gives it (keyfob.server.errors.http_status)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from keyfob.errors import KeyfobError
from keyfob.server import accounts, auditlog, enrolment, inventory
from keyfob.server.inputs import MAX_OFFSET, STORABLE, E, filter_word
from keyfob.server.store.records import AuditFilter, TokenFilter
from keyfob.server.store.vocab import TokenKind, TokenStatus
from keyfob.server.views import token_view, tokens_view, user_view
from keyfob.server.web import sessions
from keyfob.server.web.common import (
    Code,
    Field,
    Name,
    Word,
    admin,
    by,
    ctx_of,
    form_error,
    refused_page,
    render,
    see_other,
)
from keyfob.server.web.sessions import WebSession

router = APIRouter(prefix="/admin", tags=["pages: admin"])
PAGE = 50
TOKEN_FILTERS = ("state", "kind", "owner", "assigned", "locked")


def _page(page: int) -> int:
    """Pages from 1 up to where the offset would pass MAX_OFFSET (a page number from the URL
    must not become an OFFSET the database cannot hold)."""
    return min(max(page, 1), MAX_OFFSET // PAGE)


def _pages(page: int, total: int) -> dict[str, int]:
    return {"page": page, "pages": max(1, -(-total // PAGE)), "total": total}


def _word(vocabulary: type[E], text: str, what: str) -> E | None:
    return filter_word(vocabulary, text, what, hint="pick one from the list")


@router.get("", response_class=HTMLResponse, summary="Administration")
def index(request: Request) -> Response:
    admin(request)
    return see_other("/admin/tokens")


# --- users -------------------------------------------------------------------------------


def _users(request: Request) -> list[dict[str, Any]]:
    return [user_view(u) for u in accounts.list_users(ctx_of(request))]


@router.get("/users", response_class=HTMLResponse, summary="Users")
def users(request: Request) -> Response:
    session = admin(request)
    return render(request, "admin/users.html", session=session, users=_users(request))


@router.post("/users", response_class=HTMLResponse, summary="Add a user")
def add_user(
    request: Request, username: Name, display_name: Name = "", role: Word = "user", csrf: Field = ""
) -> Response:
    session = admin(request, csrf)
    ctx, caller, password = ctx_of(request), by(session, request), accounts.generate_password()
    try:
        user = accounts.create_user(
            ctx, username, password=password, role=role, display_name=display_name, **caller
        )
    except KeyfobError as exc:
        page = "admin/users.html"
        return form_error(request, page, exc, session=session, users=_users(request))
    return _password_shown(request, session, user.username, password)


def _password_shown(
    request: Request, session: WebSession, username: str, password: str
) -> Response:
    return render(
        request,
        "admin/password_shown.html",
        session=session,
        username=username,
        password=password,
    )


@router.get("/users/{username}", response_class=HTMLResponse, summary="One user")
def user_detail(request: Request, username: str) -> Response:
    session = admin(request)
    ctx = ctx_of(request)
    user = accounts.get_user(ctx, username)
    methods = [token_view(t, ctx.now()) for t in enrolment.list_methods(ctx, username)]
    return render(
        request, "admin/user.html", session=session, user=user_view(user), methods=methods
    )


@router.post(
    "/users/{username}/{action}",
    response_class=HTMLResponse,
    summary="Disable, enable or reset the password of a user",
)
def user_action(request: Request, username: str, action: str, csrf: Field = "") -> Response:
    session = admin(request, csrf)
    ctx = ctx_of(request)
    if action in ("disable", "enable"):
        user = accounts.set_disabled(ctx, username, action == "disable", **by(session, request))
        if action == "disable":
            sessions.destroy_user_sessions(ctx, user.id)
        return see_other(f"/admin/users/{user.username}?notice={action}d")
    if action == "password":
        password = accounts.generate_password()
        accounts.set_password(ctx, username, password, one_time=True, **by(session, request))
        sessions.destroy_user_sessions(ctx, accounts.get_user(ctx, username).id)
        return _password_shown(request, session, username, password)
    return see_other(f"/admin/users/{username}")


# --- tokens ------------------------------------------------------------------------------


@router.get("/tokens", response_class=HTMLResponse, summary="Token inventory")
def tokens(request: Request, page: int = 1) -> Response:
    session = admin(request)
    page = _page(page)
    # The filter form's fields, as the form sends them ("" is "any") and the page shows them.
    f = {name: request.query_params.get(name, "") for name in TOKEN_FILTERS}
    where = TokenFilter(
        _word(TokenStatus, f["state"], "state"),
        _word(TokenKind, f["kind"], "kind"),
        f["owner"] or None,
        {"yes": True, "no": False}.get(f["assigned"]),
        locked=f["locked"] == "yes",
    )
    ctx = ctx_of(request)
    found = inventory.list_inventory(ctx, where, limit=PAGE, offset=(page - 1) * PAGE)
    return render(
        request,
        "admin/tokens.html",
        session=session,
        items=tokens_view(found, ctx.now())["items"],
        **_pages(page, found.total),
        f=f,
    )


@router.post(
    "/tokens/{ref}/{action}",
    response_class=HTMLResponse,
    summary="Assign, unassign, unlock or resync a token",
)
def token_action(
    request: Request,
    ref: str,
    action: str,
    csrf: Field = "",
    username: Name = "",
    code1: Code = "",
    code2: Code = "",
    back: Name = "",
) -> Response:
    session = admin(request, csrf)
    ctx = ctx_of(request)
    caller = by(session, request)
    target = back if back.startswith("/admin/") else "/admin/tokens"
    try:
        if action == "assign":
            inventory.assign(ctx, ref, username, **caller)
        elif action == "unassign":
            inventory.unassign(ctx, ref, **caller)
        elif action == "unlock":
            inventory.unlock_token(ctx, ref, **caller)
        elif action == "resync":
            inventory.resync_token(ctx, ref, code1, code2, **caller)
        else:
            return see_other(target)
    except KeyfobError as exc:
        return refused_page(request, exc, title="Not done", back=target, session=session)
    joiner = "&" if "?" in target else "?"
    return see_other(f"{target}{joiner}notice={action}ed")  # assigned, unassigned, unlocked…


# --- import ------------------------------------------------------------------------------


@router.get("/import", response_class=HTMLResponse, summary="Import a seed file form")
def import_form(request: Request) -> Response:
    session = admin(request)
    return render(request, "admin/import.html", session=session)


@router.post("/import", response_class=HTMLResponse, summary="Import a seed file")
async def import_file(
    request: Request,
    file: Annotated[UploadFile, File()],
    fmt: Annotated[str, Form(alias="format", max_length=16), STORABLE] = "",
    password: Field = "",
    key: Annotated[str, Form(max_length=128), STORABLE] = "",
    mac_check: Word = "strict",
    action: Word = "preview",
    csrf: Field = "",
) -> Response:
    session = await run_in_threadpool(admin, request, csrf)
    data = await file.read(ctx_of(request).settings.max_request_bytes + 1)
    dry_run = action != "import"
    context = {"session": session, "filename": file.filename, "dry_run": dry_run}
    try:
        report = await run_in_threadpool(
            lambda: inventory.import_seeds(
                ctx_of(request),
                data,
                fmt=fmt or None,
                source=file.filename or "upload",
                password=password or None,
                key=key,
                mac_check=mac_check,
                dry_run=dry_run,
                **by(session, request),
            )
        )
    except KeyfobError as exc:
        return form_error(request, "admin/import.html", exc, **context)
    # As over REST: a preview is a success whatever it found; an import with bad rows a 422.
    status = 200 if report.ok or dry_run else 422
    return render(request, "admin/import.html", status, report=report.as_dict(), **context)


# --- audit -------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse, summary="Audit log")
def audit(
    request: Request, user: str = "", serial: str = "", action: str = "", page: int = 1
) -> Response:
    session = admin(request)
    page = _page(page)
    where = AuditFilter(user or None, serial or None, action or None)
    found = auditlog.query(ctx_of(request), where, limit=PAGE, offset=(page - 1) * PAGE)
    return render(
        request,
        "admin/audit.html",
        session=session,
        items=found.items,
        **_pages(page, found.total),
        f={"user": user, "serial": serial, "action": action},
    )


# --- API keys ----------------------------------------------------------------------------


@router.get("/apikeys", response_class=HTMLResponse, summary="API keys")
def apikeys(request: Request) -> Response:
    session = admin(request)
    keys = accounts.list_api_keys(ctx_of(request))
    return render(request, "admin/apikeys.html", session=session, keys=keys)


@router.post("/apikeys", response_class=HTMLResponse, summary="Create an API key")
def create_apikey(request: Request, name: Name, role: Word, csrf: Field = "") -> Response:
    session = admin(request, csrf)
    ctx = ctx_of(request)
    try:
        key, secret = accounts.create_api_key(ctx, name, role, **by(session, request))
    except KeyfobError as exc:
        keys = accounts.list_api_keys(ctx)
        return form_error(request, "admin/apikeys.html", exc, session=session, keys=keys)
    return render(
        request,
        "admin/apikeys.html",
        session=session,
        new_key=secret,
        new_name=key.name,
        keys=accounts.list_api_keys(ctx),
    )


# The list's Revoke button: the same service as the CLI and the API (errors: a page).
@router.post("/apikeys/{key_id}/revoke", response_class=HTMLResponse, summary="Revoke an API key")
def revoke_apikey(request: Request, key_id: str, csrf: Field = "") -> Response:
    session = admin(request, csrf)
    accounts.revoke_api_key(ctx_of(request), key_id, **by(session, request))
    return see_other("/admin/apikeys?notice=key-revoked")
