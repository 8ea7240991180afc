"""The admin pages: users, the token inventory, seed-file import, the audit log, API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from keyfob.errors import KeyfobError
from keyfob.server import accounts, enrolment, inventory
from keyfob.server.inputs import MAX_OFFSET, STORABLE
from keyfob.server.store import repo
from keyfob.server.views import user_view
from keyfob.server.web import sessions
from keyfob.server.web.common import admin, check_csrf, client, ctx_of, render, see_other

router = APIRouter(prefix="/admin")
Field = Annotated[str, Form(max_length=1024), STORABLE]
Code = Annotated[str, Form(max_length=32), STORABLE]
PAGE = 50


def _page(page: int) -> int:
    """Pages from 1 up to where the offset would pass MAX_OFFSET (a page number from the URL
    must not become an OFFSET the database cannot hold)."""
    return min(max(page, 1), MAX_OFFSET // PAGE)


@router.get("", response_class=HTMLResponse)
def index(request: Request) -> Response:
    admin(request)
    return see_other("/admin/tokens")


# --- users -------------------------------------------------------------------------------


@router.get("/users", response_class=HTMLResponse)
def users(request: Request) -> Response:
    session = admin(request)
    return render(
        request,
        "admin/users.html",
        session=session,
        users=[user_view(u) for u in accounts.list_users(ctx_of(request))],
    )


@router.post("/users", response_class=HTMLResponse)
def add_user(
    request: Request,
    username: Annotated[str, Form(max_length=255), STORABLE],
    display_name: Annotated[str, Form(max_length=255), STORABLE] = "",
    role: Annotated[str, Form(max_length=8), STORABLE] = "user",
    csrf: Field = "",
) -> Response:
    session = admin(request)
    check_csrf(session, csrf)
    ctx = ctx_of(request)
    password = accounts.generate_password()
    try:
        user = accounts.create_user(
            ctx,
            username,
            password=password,
            role=role,
            display_name=display_name,
            actor=session.user.username,
            client=client(request),
        )
    except KeyfobError as exc:
        return render(
            request,
            "admin/users.html",
            400,
            session=session,
            error=str(exc),
            users=[user_view(u) for u in accounts.list_users(ctx)],
        )
    return render(
        request,
        "admin/password_shown.html",
        session=session,
        username=user.username,
        password=password,
    )


@router.get("/users/{username}", response_class=HTMLResponse)
def user_detail(request: Request, username: str) -> Response:
    session = admin(request)
    ctx = ctx_of(request)
    user = accounts.get_user(ctx, username)
    return render(
        request,
        "admin/user.html",
        session=session,
        user=user_view(user),
        methods=enrolment.list_methods(ctx, username),
    )


@router.post("/users/{username}/{action}", response_class=HTMLResponse)
def user_action(request: Request, username: str, action: str, csrf: Field = "") -> Response:
    session = admin(request)
    check_csrf(session, csrf)
    ctx = ctx_of(request)
    actor = session.user.username
    if action in ("disable", "enable"):
        user = accounts.set_disabled(
            ctx, username, action == "disable", actor=actor, client=client(request)
        )
        if action == "disable":
            sessions.destroy_user_sessions(ctx, user.id)
        return see_other(f"/admin/users/{user.username}?notice={action}d")
    if action == "password":
        password = accounts.generate_password()
        accounts.set_password(
            ctx, username, password, one_time=True, actor=actor, client=client(request)
        )
        sessions.destroy_user_sessions(ctx, accounts.get_user(ctx, username).id)
        return render(
            request,
            "admin/password_shown.html",
            session=session,
            username=username,
            password=password,
        )
    return see_other(f"/admin/users/{username}")


# --- tokens ------------------------------------------------------------------------------


@router.get("/tokens", response_class=HTMLResponse)
def tokens(
    request: Request,
    state: str = "",
    kind: str = "",
    owner: str = "",
    assigned: str = "",
    locked: str = "",
    page: int = 1,
) -> Response:
    session = admin(request)
    page = _page(page)
    filters: dict[str, Any] = {
        "state": state or None,
        "kind": kind or None,
        "owner": owner or None,
        "assigned": {"yes": True, "no": False}.get(assigned),
        "locked": locked == "yes",
    }
    data = inventory.list_inventory(
        ctx_of(request), limit=PAGE, offset=(page - 1) * PAGE, **filters
    )
    return render(
        request,
        "admin/tokens.html",
        session=session,
        items=data["items"],
        total=data["total"],
        page=page,
        pages=max(1, -(-data["total"] // PAGE)),
        f={"state": state, "kind": kind, "owner": owner, "assigned": assigned, "locked": locked},
    )


@router.post("/tokens/{ref}/{action}", response_class=HTMLResponse)
def token_action(
    request: Request,
    ref: str,
    action: str,
    csrf: Field = "",
    username: Annotated[str, Form(max_length=255), STORABLE] = "",
    code1: Code = "",
    code2: Code = "",
    back: Annotated[str, Form(max_length=255), STORABLE] = "",
) -> Response:
    session = admin(request)
    check_csrf(session, csrf)
    ctx = ctx_of(request)
    kw = {"actor": session.user.username, "client": client(request)}
    target = back if back.startswith("/admin/") else "/admin/tokens"
    joiner = "&" if "?" in target else "?"
    try:
        if action == "assign":
            inventory.assign(ctx, ref, username, **kw)
        elif action == "unassign":
            inventory.unassign(ctx, ref, **kw)
        elif action == "unlock":
            inventory.unlock_token(ctx, ref, **kw)
        elif action == "resync":
            inventory.resync_token(ctx, ref, code1, code2, **kw)
        else:
            return see_other(target)
    except KeyfobError as exc:
        return render(
            request,
            "message.html",
            422,
            session=session,
            title="Not done",
            message=str(exc),
            back=target,
        )
    notice = {
        "assign": "assigned",
        "unassign": "unassigned",
        "unlock": "unlocked",
        "resync": "resynced",
    }[action]
    return see_other(f"{target}{joiner}notice={notice}")


# --- import ------------------------------------------------------------------------------


@router.get("/import", response_class=HTMLResponse)
def import_form(request: Request) -> Response:
    session = admin(request)
    return render(request, "admin/import.html", session=session)


@router.post("/import", response_class=HTMLResponse)
async def import_file(
    request: Request,
    file: Annotated[UploadFile, File()],
    fmt: Annotated[str, Form(alias="format", max_length=16), STORABLE] = "",
    password: Field = "",
    key: Annotated[str, Form(max_length=128), STORABLE] = "",
    mac_check: Annotated[str, Form(max_length=8), STORABLE] = "strict",
    action: Annotated[str, Form(max_length=8), STORABLE] = "preview",
    csrf: Field = "",
) -> Response:
    from starlette.concurrency import run_in_threadpool

    session = await run_in_threadpool(admin, request)
    check_csrf(session, csrf)
    data = await file.read(request.app.state.ctx.settings.max_request_bytes + 1)
    error = None
    report = None
    try:
        key_bytes = bytes.fromhex(key) if key.strip() else None
    except ValueError:
        key_bytes, error = None, "The pre-shared key must be hex digits."
    if error is None:
        try:
            report = await run_in_threadpool(
                lambda: inventory.import_seeds(
                    ctx_of(request),
                    data,
                    fmt=fmt or None,
                    source=file.filename or "upload",
                    password=password or None,
                    key=key_bytes,
                    mac_check=mac_check,
                    dry_run=action != "import",
                    actor=session.user.username,
                    client=client(request),
                ).as_dict()
            )
        except KeyfobError as exc:
            error = str(exc)
    status = 200 if error is None and report and report["ok"] else 422
    return render(
        request,
        "admin/import.html",
        status,
        session=session,
        report=report,
        error=error,
        filename=file.filename,
        dry_run=action != "import",
    )


# --- audit -------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit(
    request: Request, user: str = "", serial: str = "", action: str = "", page: int = 1
) -> Response:
    session = admin(request)
    page = _page(page)
    with ctx_of(request).engine.connect() as conn:
        items, total = repo.query_audit(
            conn,
            user=user or None,
            serial=serial or None,
            action=action or None,
            limit=PAGE,
            offset=(page - 1) * PAGE,
        )
    return render(
        request,
        "admin/audit.html",
        session=session,
        items=items,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE)),
        f={"user": user, "serial": serial, "action": action},
    )


# --- API keys ----------------------------------------------------------------------------


@router.get("/apikeys", response_class=HTMLResponse)
def apikeys(request: Request) -> Response:
    session = admin(request)
    return render(
        request, "admin/apikeys.html", session=session, keys=accounts.list_api_keys(ctx_of(request))
    )


@router.post("/apikeys", response_class=HTMLResponse)
def create_apikey(
    request: Request,
    name: Annotated[str, Form(max_length=255), STORABLE],
    role: Annotated[str, Form(max_length=16), STORABLE],
    csrf: Field = "",
) -> Response:
    session = admin(request)
    check_csrf(session, csrf)
    ctx = ctx_of(request)
    try:
        key, secret = accounts.create_api_key(
            ctx, name, role, actor=session.user.username, client=client(request)
        )
    except KeyfobError as exc:
        return render(
            request,
            "admin/apikeys.html",
            400,
            session=session,
            error=str(exc),
            keys=accounts.list_api_keys(ctx),
        )
    return render(
        request,
        "admin/apikeys.html",
        session=session,
        new_key=secret,
        new_name=key.name,
        keys=accounts.list_api_keys(ctx),
    )


@router.post("/apikeys/{key_id}/revoke", response_class=HTMLResponse)
def revoke_apikey(request: Request, key_id: str, csrf: Field = "") -> Response:
    """The list's Revoke button: the same service as the CLI and the API (errors: a page)."""
    session = admin(request)
    check_csrf(session, csrf)
    accounts.revoke_api_key(
        ctx_of(request), key_id, actor=session.user.username, client=client(request)
    )
    return see_other("/admin/apikeys?notice=key-revoked")
