"""The admin pages: users, the token inventory, seed-file import, the audit log, API keys.

Each calls the service the REST route calls, and answers a refusal with the status the route
gives it (keyfob.server.errors.http_status)."""

from __future__ import annotations

import math
import shlex
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from keyfob.errors import KeyfobError
from keyfob.server import accounts, auditlog, enrolment, helpdesk, inventory, tap
from keyfob.server.errors import Conflict
from keyfob.server.inputs import MAX_OFFSET, STORABLE, E, filter_word
from keyfob.server.store.records import AuditFilter, TokenFilter, TokenRecord, UserFilter
from keyfob.server.store.vocab import Role, TokenKind, TokenStatus
from keyfob.server.views import token_view, user_view
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


def _users(request: Request, prefix: str = "", role: str = "", page: int = 1) -> dict[str, Any]:
    """One page of the user list under the search form's fields ("" is "any"), with what the
    template needs to show the page and link the others."""
    page = _page(page)
    where = UserFilter(prefix or None, _word(Role, role, "role"))
    found = accounts.list_users(ctx_of(request), where, limit=PAGE, offset=(page - 1) * PAGE)
    return {
        "users": [user_view(u) for u in found.items],
        **_pages(page, found.total),
        "f": {"prefix": prefix, "role": role},
    }


@router.get("/users", response_class=HTMLResponse, summary="Users")
def users(request: Request, prefix: str = "", role: str = "", page: int = 1) -> Response:
    session = admin(request)
    listed = _users(request, prefix, role, page)
    return render(request, "admin/users.html", session=session, **listed)


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
        return form_error(request, page, exc, session=session, **_users(request))
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
    methods = [_with_drift(request, t) for t in enrolment.list_methods(ctx, username)]
    return render(
        request,
        "admin/user.html",
        session=session,
        user=user_view(user),
        methods=methods,
        burn_command=burn_command(request, user.username),
    )


def _with_drift(request: Request, token: TokenRecord) -> dict[str, Any]:
    """A token as the pages show it: its view and its drift report (steps, seconds, history,
    the warning near the resync window's edge) from the row already read."""
    ctx = ctx_of(request)
    return token_view(token, ctx.now()) | {"drift": helpdesk.report_of(ctx, token).as_dict()}


def burn_command(request: Request, username: str) -> str:
    """The command line that burns a programmable token for ``username`` and enrols it on this
    server: the admin runs it at a computer with an NFC reader (README, the burn walkthrough)."""
    url = shlex.quote(str(request.base_url).rstrip("/"))
    return f'keyfob burn --enroll {url} --user {shlex.quote(username)} --api-key "$KEY"'


def _confirm_user(
    request: Request,
    session: WebSession,
    username: str,
    action: str,
    button: str,
    title: str,
    text: str,
) -> Response:
    """The question before ``action`` (a path under the user's page) on ``username``; "back"
    returns to the user's page."""
    back = f"/admin/users/{username}"
    return render(
        request,
        "admin/confirm.html",
        session=session,
        title=title,
        text=text,
        action=f"{back}/{action}",
        button=button,
        back=back,
    )


# The questions asked before an action that cannot be undone from the page (a new password
# ends the old one; a removed app must be set up again): a GET shows the question, the form
# posts to the same path.
@router.get("/users/{username}/password", response_class=HTMLResponse, summary="Reset a password?")
def confirm_password(request: Request, username: str) -> Response:
    session = admin(request)
    user = accounts.get_user(ctx_of(request), username)
    return _confirm_user(
        request,
        session,
        user.username,
        "password",
        "Reset password",
        f"Reset the password of {user.username}?",
        "They get a new one-time password, shown on the next page, and choose their own "
        "at their next sign-in. Their current password stops working and they are signed out "
        "everywhere. Their sign-in methods stay.",
    )


@router.get(
    "/users/{username}/methods/{token_id}/remove",
    response_class=HTMLResponse,
    summary="Remove a user's method?",
)
def confirm_remove_method(request: Request, username: str, token_id: str) -> Response:
    session = admin(request)
    ctx = ctx_of(request)
    method = token_view(enrolment.get_method(ctx, username, token_id), ctx.now())
    serial = method["serial"] or method["reported_serial"]
    what = f"“{method['label']}” ({method['kind']}{f', serial {serial}' if serial else ''})"
    after = (
        "The token goes back to the inventory, where it can be assigned again."
        if method["kind"] == TokenKind.CLASSIC
        else "It is deleted: its codes stop working at once. The user can set up a new one."
    )
    return _confirm_user(
        request,
        session,
        username,
        f"methods/{token_id}/remove",
        "Remove method",
        f"Remove {what} from {username}?",
        f"Do this when the phone or token is lost or replaced. {after}",
    )


@router.post(
    "/users/{username}/methods/{token_id}/remove",
    response_class=HTMLResponse,
    summary="Remove a user's method",
)
def remove_method(request: Request, username: str, token_id: str, csrf: Field = "") -> Response:
    """Remove one of the user's sign-in methods (after the confirmation page)."""
    # The lost phone: the same service as DELETE /api/v1/users/{username}/tokens/{id}.
    session = admin(request, csrf)
    back = f"/admin/users/{username}"
    try:
        enrolment.remove(ctx_of(request), username, token_id, **by(session, request))
    except KeyfobError as exc:
        return refused_page(request, exc, title="Not removed", back=back, session=session)
    return see_other(f"{back}?notice=method-removed")


@router.post(
    "/users/{username}/{action}",
    response_class=HTMLResponse,
    summary="Disable, enable or reset the password of a user",
)
def user_action(request: Request, username: str, action: str, csrf: Field = "") -> Response:
    session = admin(request, csrf)
    ctx = ctx_of(request)
    if action in ("disable", "enable"):
        try:
            user = accounts.set_disabled(ctx, username, action == "disable", **by(session, request))
        except Conflict as exc:  # the only enabled admin: a 409, with the way back
            back = f"/admin/users/{username}"
            return refused_page(request, exc, title="Not done", back=back, session=session)
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
        items=[_with_drift(request, t) for t in found.items],
        **_pages(page, found.total),
        f=f,
    )


@router.get("/tokens/{ref}/retire", response_class=HTMLResponse, summary="Retire a token?")
def confirm_retire(request: Request, ref: str, back: str = "") -> Response:
    session = admin(request)
    ctx = ctx_of(request)
    try:
        token = helpdesk.drift_report(ctx, ref).token
    except KeyfobError as exc:
        return refused_page(request, exc, title="Not found", back="/admin/tokens", session=session)
    owner = f", now {token.owner}'s" if token.owner else ""
    return render(
        request,
        "admin/confirm.html",
        session=session,
        title=f"Retire token {token.serial or token.id}{owner}?",
        text="Its secret is destroyed and it leaves its owner for good; this cannot be undone. "
        "Importing its serial again needs --allow-retired. For a token that may turn up "
        "again, mark it lost instead.",
        action=f"/admin/tokens/{ref}/retire",
        button="Retire token",
        back=back if back.startswith("/admin/") else "/admin/tokens",
    )


@router.post(
    "/tokens/{ref}/{action}",
    response_class=HTMLResponse,
    summary="Assign, unassign, unlock, resync, disable, enable, mark lost or found, retire a "
    "token, or reset its drift",
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
    issue_tap: Annotated[bool, Form()] = False,
) -> Response:
    session = admin(request, csrf)
    ctx = ctx_of(request)
    caller = by(session, request)
    target = back if back.startswith("/admin/") else "/admin/tokens"
    try:
        if action == "lost":
            token, passcode = helpdesk.mark_lost(ctx, ref, issue_tap=issue_tap, **caller)
            if passcode is not None and token.owner:
                return tap_page(request, session, token.owner, passcode)
        elif action == "found":
            helpdesk.mark_found(ctx, ref, **caller)
        elif action == "retire":
            helpdesk.retire(ctx, ref, **caller)
        elif action == "drift-reset":
            helpdesk.reset_drift(ctx, ref, **caller)
        elif action == "assign":
            inventory.assign(ctx, ref, username, **caller)
        elif action == "unassign":
            inventory.unassign(ctx, ref, **caller)
        elif action == "unlock":
            inventory.unlock_token(ctx, ref, **caller)
        elif action == "resync":
            inventory.resync_token(ctx, ref, code1, code2, **caller)
        elif action in ("disable", "enable"):
            inventory.set_token_disabled(ctx, ref, action == "disable", **caller)
        else:
            return see_other(target)
    except KeyfobError as exc:
        return refused_page(request, exc, title="Not done", back=target, session=session)
    joiner = "&" if "?" in target else "?"
    return see_other(f"{target}{joiner}notice={TOKEN_NOTICES[action]}")


TOKEN_NOTICES = {
    "assign": "assigned",
    "unassign": "unassigned",
    "unlock": "unlocked",
    "resync": "resynced",
    "disable": "token-disabled",
    "enable": "token-enabled",
    "lost": "token-lost",
    "found": "token-found",
    "retire": "token-retired",
    "drift-reset": "drift-reset",
}


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


# --- temporary access passcodes (server/tap.py, issue 13) --------------------------------


def tap_page(
    request: Request,
    session: WebSession,
    username: str,
    passcode: str | None = None,
    status: int = 200,
) -> Response:
    """A user's passcodes (never a passcode, but the one just issued, shown this once)."""
    ctx = ctx_of(request)
    now = ctx.now_dt()
    passes = [p.as_dict(now) for p in tap.list_passes(ctx, username)]
    return render(
        request,
        "admin/tap.html",
        status=status,
        session=session,
        username=username,
        passes=passes,
        passcode=passcode,
    )


def _seconds(hours: str) -> int:
    try:
        value = float(hours.strip())
    except ValueError:
        return -1
    return round(value * 3600) if math.isfinite(value) and abs(value) < 10**6 else -1


@router.get("/tap/{username}", response_class=HTMLResponse, summary="A user's temporary passcodes")
def tap_list(request: Request, username: str) -> Response:
    session = admin(request)
    user = accounts.get_user(ctx_of(request), username)
    return tap_page(request, session, user.username)


@router.post(
    "/tap/{username}/issue",
    response_class=HTMLResponse,
    summary="Issue a temporary access passcode",
)
def tap_issue(
    request: Request,
    username: str,
    csrf: Field = "",
    hours: Annotated[str, Form(max_length=16)] = "8",
    uses: Annotated[int, Form(ge=1, le=tap.MAX_USES)] = 1,
    reason: Name = "",
) -> Response:
    """Issue a passcode for the user (their previous live one is revoked); it is shown once."""
    # hours is text so that the role check comes before the form's (a user gets 403, not 422);
    # what is no number becomes -1 s, which the service refuses with its hint.
    session = admin(request, csrf)
    back = f"/admin/tap/{username}"
    try:
        made, passcode = tap.issue(
            ctx_of(request),
            username,
            seconds=_seconds(hours),
            uses=uses,
            reason=reason.strip(),
            **by(session, request),
        )
    except KeyfobError as exc:
        return refused_page(request, exc, title="Not issued", back=back, session=session)
    return tap_page(request, session, made.username, passcode)


@router.post(
    "/tap/{username}/revoke",
    response_class=HTMLResponse,
    summary="Revoke a user's temporary access passcode",
)
def tap_revoke(request: Request, username: str, csrf: Field = "") -> Response:
    session = admin(request, csrf)
    back = f"/admin/tap/{username}"
    try:
        tap.revoke(ctx_of(request), username, **by(session, request))
    except KeyfobError as exc:
        return refused_page(request, exc, title="Not revoked", back=back, session=session)
    return see_other(f"{back}?notice=tap-revoked")
