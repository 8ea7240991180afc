"""What every page handler shares: templates, the signed-in session, CSRF, redirects, notices."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from keyfob.errors import KeyfobError
from keyfob.server import permissions
from keyfob.server.auditlog import Caller
from keyfob.server.context import ServerContext
from keyfob.server.errors import http_headers, http_status
from keyfob.server.inputs import STORABLE
from keyfob.server.store import repo
from keyfob.server.store.vocab import ApiRole, Role, TokenKind, TokenStatus
from keyfob.server.web import sessions
from keyfob.server.web.sessions import WebSession

# Form fields, each as long as the column it reaches: any text (a password, the CSRF token), a
# code someone types, a name (user, display, key) or path, a serial, a method's label, and one
# word of a list (a kind, a role, an action).
Field = Annotated[str, Form(max_length=1024), STORABLE]
Code = Annotated[str, Form(max_length=32), STORABLE]
Name = Annotated[str, Form(max_length=255), STORABLE]
Serial = Annotated[str, Form(max_length=128), STORABLE]
Label = Annotated[str, Form(max_length=64), STORABLE]
Word = Annotated[str, Form(max_length=16), STORABLE]

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
# The stored words, for the templates to compare with and to offer in forms; `kinds` names
# each kind for people.
templates.env.globals.update(
    TokenKind=TokenKind,
    TokenStatus=TokenStatus,
    Role=Role,
    ApiRole=ApiRole,
    is_staff=permissions.is_staff,
    may=lambda role, op: permissions.allowed(role, permissions.Op(op)),
    kinds={
        TokenKind.APP: "Authenticator app",
        TokenKind.PROGRAMMABLE: "Programmable hardware token",
        TokenKind.CLASSIC: "Hardware token",
    },
)
LOGIN_CSRF_COOKIE = "kf_login_csrf"

# Notices are codes, not text from the URL, so a crafted link cannot put words on the page.
NOTICES = {
    "added": "Your new sign-in method is ready.",
    "removed": "The method was removed.",
    "renamed": "The method was renamed.",
    "resynced": "The codes work again.",
    "lost": "The token is marked lost: its codes are refused, and whoever signed in with it is "
    "signed out. If it turns up, your IT team can mark it found.",
    "password": "Your password is set.",
    "signed-out": "You are signed out.",
    "expired": "Your session ended; please sign in again.",
    "assigned": "The token is assigned.",
    "unassigned": "The token is back in the inventory.",
    "unlocked": "The token is unlocked.",
    "user-added": "The user was added.",
    "disabled": "The user is disabled.",
    "enabled": "The user is enabled.",
    "key-revoked": "The API key is revoked: no server accepts it any more.",
    "method-removed": "The method was removed: its codes no longer work.",
    "token-disabled": "The token is disabled: its codes are refused until it is enabled.",
    "token-enabled": "The token is enabled again.",
    "token-lost": "The token is marked lost: every code of it is refused until it is found.",
    "token-found": "The token is found: its codes work again.",
    "token-retired": "The token is retired: its secret is destroyed.",
    "drift-reset": "The token's learned drift is back to zero.",
    "tap-revoked": "The temporary access passcode is revoked.",
}


class Redirect(Exception):
    """Raised anywhere in a page handler: answer with a 303 to ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url


def ctx_of(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx  # set by create_app; Starlette's state is Any
    return ctx


def client(request: Request) -> str | None:
    return request.client.host if request.client else None


def by(session: WebSession, request: Request) -> Caller:
    """The signed-in user and their address, as every service call names its caller."""
    return {"actor": session.user.username, "client": client(request)}


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https"


def current(request: Request) -> WebSession | None:
    return sessions.load(ctx_of(request), request.cookies.get(sessions.COOKIE))


def signed_in(request: Request, csrf: str | None = None) -> WebSession:
    """A full session, or off to the sign-in page (or to set a password first). A form's
    handler passes the form's ``csrf``, which must be the session's."""
    session = current(request)
    if session is None or not session.full:
        raise Redirect("/login")
    if session.user.must_change_password and request.url.path != "/password":
        raise Redirect("/password")
    if csrf is not None:
        check_csrf(session, csrf)
    return session


def admin(request: Request, csrf: str | None = None) -> WebSession:
    """As :func:`signed_in`, for a page under /admin: the page's operation (by its route and
    ``{action}``, keyfob.server.permissions.PAGES) must be allowed to the user's role, or the
    page is refused (403) — a user's, or a helpdesk user's asking for an admin's operation."""
    session = signed_in(request)
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    action = request.path_params.get("action")
    permissions.require(session.user.role, permissions.page_op(request.method, template, action))
    if csrf is not None:
        check_csrf(session, csrf)
    return session


def check_csrf(session: WebSession, token: str | None) -> None:
    if not token or not hmac.compare_digest(session.csrf, token):
        raise CsrfError


class CsrfError(Exception):
    """A form without a valid CSRF token: refused (403), nothing done."""


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    session = context.get("session")
    notice = NOTICES.get(request.query_params.get("notice", ""))
    # Half signed in (the password, not yet the code): no menu, whose every link would lead
    # back to the sign-in page.
    me = session.user if session and session.full else None
    base = {
        "request": request,
        "notice": notice,
        "csrf": session.csrf if session else None,
        "me": me,
        "no_second_factor": me is not None and _staff_without_method(request, me),
    }
    return templates.TemplateResponse(request, name, base | context, status_code=status)


def _staff_without_method(request: Request, user: Any) -> bool:
    """An admin (or helpdesk) account that a password alone opens: every page nudges them to
    add a second factor (one indexed SELECT, for staff only)."""
    if not permissions.is_staff(user.role):
        return False
    with ctx_of(request).engine.connect() as conn:
        return not repo.active_tokens_of(conn, user.username)[1]


def form_error(request: Request, name: str, exc: KeyfobError, **context: Any) -> HTMLResponse:
    """The form page ``name`` again with the error above it, answered with the status (and
    headers, such as Retry-After) that the API gives the same error."""
    page = render(request, name, http_status(exc), error=exc.message, hint=exc.hint, **context)
    page.headers.update(http_headers(exc))
    return page


def message_page(
    request: Request,
    status: int,
    message: str,
    hint: str | None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """The page that says what went wrong (``title``, ``back``: where to go on from it)."""
    page = render(request, "message.html", status, message=message, hint=hint, **context)
    page.headers.update(headers or {})
    return page


def refused_page(
    request: Request, exc: KeyfobError, *, title: str, back: str, session: WebSession | None
) -> HTMLResponse:
    """The message page for a refusal, with the status and headers the API gives it."""
    status, headers = http_status(exc), http_headers(exc)
    return message_page(
        request, status, exc.message, exc.hint, headers, title=title, back=back, session=session
    )


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def set_session_cookie(response: Response, request: Request, value: str, max_age: int) -> None:
    response.set_cookie(
        sessions.COOKIE,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/",
    )
