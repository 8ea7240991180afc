"""What every page handler shares: templates, the signed-in session, CSRF, redirects, notices."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from keyfob.server.context import ServerContext
from keyfob.server.web import sessions
from keyfob.server.web.sessions import WebSession

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
LOGIN_CSRF_COOKIE = "kf_login_csrf"

# Notices are codes, not text from the URL, so a crafted link cannot put words on the page.
NOTICES = {
    "added": "Your new sign-in method is ready.",
    "removed": "The method was removed.",
    "renamed": "The method was renamed.",
    "resynced": "The token is in step again.",
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
}


class Redirect(Exception):
    """Raised anywhere in a page handler: answer with a 303 to ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url


def ctx_of(request: Request) -> ServerContext:
    return request.app.state.ctx


def client(request: Request) -> str | None:
    return request.client.host if request.client else None


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https"


def current(request: Request) -> WebSession | None:
    return sessions.load(ctx_of(request), request.cookies.get(sessions.COOKIE))


def signed_in(request: Request) -> WebSession:
    """A full session, or off to the sign-in page (or to set a password first)."""
    session = current(request)
    if session is None or not session.full:
        raise Redirect("/login")
    if session.user.must_change_password and request.url.path != "/password":
        raise Redirect("/password")
    return session


def admin(request: Request) -> WebSession:
    session = signed_in(request)
    if session.user.role != "admin":
        raise Redirect("/")
    return session


def check_csrf(session: WebSession, token: str | None) -> None:
    if not token or not hmac.compare_digest(session.csrf, token):
        raise CsrfError


class CsrfError(Exception):
    """A form without a valid CSRF token: refused (403), nothing done."""


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    session = context.get("session")
    notice = NOTICES.get(request.query_params.get("notice", ""))
    base = {
        "request": request,
        "notice": notice,
        "csrf": session.csrf if session else None,
        "me": session.user if session else None,
    }
    return templates.TemplateResponse(request, name, base | context, status_code=status)


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
