"""Sign-in (password, then a current code when the user has or had a method), first-time
password, sign-out."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from keyfob.server import accounts, auditlog
from keyfob.server.errors import ServiceError
from keyfob.server.store import repo
from keyfob.server.validation import ValidationResult, validate
from keyfob.server.web import sessions
from keyfob.server.web.common import (
    LOGIN_CSRF_COOKIE,
    Code,
    CsrfError,
    Field,
    Redirect,
    by,
    check_csrf,
    client,
    ctx_of,
    current,
    render,
    secure_cookies,
    see_other,
    set_session_cookie,
    signed_in,
)
from keyfob.server.web.ratelimit import LoginLimiter, too_many
from keyfob.server.web.sessions import WebSession

router = APIRouter(tags=["pages: sign-in"])


def _login_page(
    request: Request, status: int = 200, error: str | None = None, username: str = ""
) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request, "login.html", status, login_csrf=token, error=error, username=username
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/login",
    )
    return response


@router.get("/login", response_class=HTMLResponse, summary="Sign-in form")
def login_form(request: Request) -> Response:
    session = current(request)
    if session is not None and session.full:
        return see_other("/")
    return _login_page(request)


@router.post("/login", response_class=HTMLResponse, summary="Sign in with a password")
def login(request: Request, username: Field, password: Field, csrf: Field = "") -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, csrf):
        raise CsrfError
    ctx = ctx_of(request)
    address = client(request) or "?"
    limiter: LoginLimiter = request.app.state.login_limiter
    attempt = limiter.attempt(username, address)
    if not attempt.allowed:
        _audit_signin(request, username, "failure", "rate_limited", stage="password")
        return too_many(
            _login_page(
                request,
                429,
                f"Too many attempts. Wait {attempt.wait} seconds and try again.",
                username,
            ),
            attempt.wait,
        )
    user = accounts.authenticate(ctx, username, password)
    if user is None:
        _audit_signin(request, username, "failure", "bad_password", stage="password")
        return _login_page(request, 401, "The username or password is wrong.", username)
    # A lost, disabled or retired token still asks for a code: whoever holds the password
    # after the token went missing signs in only with a temporary access passcode (as over
    # HTTP Basic, api/auth.py). Only a user who never had a method gets in without one.
    with ctx.engine.connect() as conn:
        has_method = repo.has_second_factor(conn, user.id)
    if has_method:
        value = sessions.create(ctx, user, "password")
    else:
        value = sessions.create(ctx, user, "full", sessions.PASSWORD)
    response = see_other("/login/code" if has_method else "/")
    ttl = sessions.PASSWORD_STAGE_TTL if has_method else sessions.FULL_TTL
    set_session_cookie(response, request, value, int(ttl.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    # A right password is no failure; but only the code step ends the guessing of a user that
    # has one, so its earlier failures keep counting until then.
    if has_method:
        limiter.release(attempt)
    else:
        limiter.succeeded(attempt)
        _audit_signin(request, user.username, "success", None, second_factor=False)
    return response


def _audit_signin(
    request: Request, username: str, outcome: str, reason: str | None, **details: object
) -> None:
    """Every sign-in on the pages, done or refused, is in the audit log (``web.signin``): the
    password step's refusals, and the end of a sign-in, with or without a code. A code typed
    at the second step also has its ``validate`` row. Every user's sign-ins are written alike,
    so the time of an answer does not tell an admin's account from another."""
    ctx = ctx_of(request)
    row = auditlog.event(
        ctx,
        "web.signin",
        outcome,
        username,
        client(request),
        username,
        reason=reason,
        details=dict(details),
    )
    with ctx.begin() as conn:
        auditlog.write(conn, row)


@router.get("/login/code", response_class=HTMLResponse, summary="Second step: code form")
def code_form(request: Request) -> Response:
    session = current(request)
    if session is None:
        return see_other("/login")
    if session.full:
        return see_other("/")
    return render(request, "login_code.html", session=session)


@router.post("/login/code", response_class=HTMLResponse, summary="Sign in with a code")
def code(request: Request, code: Code, csrf: Field = "") -> Response:
    session = current(request)
    if session is None:
        return see_other("/login")
    check_csrf(session, csrf)
    ctx = ctx_of(request)
    address = client(request) or "?"
    limiter: LoginLimiter = request.app.state.login_limiter
    attempt = limiter.attempt(session.user.username, address)
    if not attempt.allowed:
        page = render(
            request,
            "login_code.html",
            429,
            session=session,
            error="Too many attempts. Wait a few minutes and try again.",
        )
        _audit_signin(request, session.user.username, "failure", "rate_limited", stage="code")
        return too_many(page, attempt.wait)
    result = validate(ctx, session.user.username, code, client=address, actor=session.user.username)
    if not result.accepted:
        _audit_signin(request, session.user.username, "failure", "bad_code", stage="code")
        return render(
            request,
            "login_code.html",
            401,
            session=session,
            error="That code was not accepted. Wait for the next code and type "
            "it; if it keeps failing, check the clock of the phone or token.",
        )
    limiter.succeeded(attempt)
    _audit_signin(request, session.user.username, "success", None, second_factor=True)
    value = sessions.promote(ctx, session, _signed_in_with(result))
    response = see_other("/")
    set_session_cookie(response, request, value, int(sessions.FULL_TTL.total_seconds()))
    return response


def _signed_in_with(result: ValidationResult) -> str | None:
    """Which method an accepted code was: ``tap``, or the id of the token that took it."""
    return sessions.TAP if result.reason == "tap" else result.token_id


@router.get("/password", response_class=HTMLResponse, summary="Change password form")
def password_form(request: Request) -> Response:
    session = signed_in(request)
    return render(
        request, "password.html", session=session, first=session.user.must_change_password
    )


def _current_password_error(request: Request, session: WebSession, typed: str) -> tuple[str, int]:
    """("" or what is wrong, seconds to wait). A first, one-time password change needs no
    current password: the session itself came from signing in with it."""
    if session.user.must_change_password:
        return "", 0
    limiter: LoginLimiter = request.app.state.login_limiter
    right, wait = limiter.check_password(session.user.username, client(request) or "?", typed)
    if wait:
        return f"Too many attempts. Wait {wait} seconds and try again.", wait
    return ("" if right else "Your current password is wrong."), 0


def _new_password_error(new: str, repeat: str) -> str:
    if new != repeat:
        return "The two new passwords differ."
    try:
        accounts.check_password(new)
    except ServiceError as exc:
        return f"That password is too weak: {exc.message}."
    return ""


@router.post("/password", response_class=HTMLResponse, summary="Change password")
def set_password(
    request: Request, new: Field, repeat: Field, csrf: Field = "", current_password: Field = ""
) -> Response:
    session = signed_in(request, csrf)
    ctx = ctx_of(request)
    first = session.user.must_change_password
    error, wait = _current_password_error(request, session, current_password)
    error = error or _new_password_error(new, repeat)
    if error:
        status = 429 if wait else 400
        page = render(request, "password.html", status, session=session, first=first, error=error)
        return too_many(page, wait) if wait else page
    accounts.set_password(ctx, session.user.username, new, one_time=False, **by(session, request))
    sessions.destroy_user_sessions(ctx, session.user.id)
    value = sessions.create(ctx, session.user, "full", session.signed_in_with)
    response = see_other("/?notice=password")
    set_session_cookie(response, request, value, int(sessions.FULL_TTL.total_seconds()))
    return response


@router.post("/logout", summary="Sign out")
def logout(request: Request, csrf: Field = "") -> Response:
    session = current(request)
    if session is not None:
        check_csrf(session, csrf)
        sessions.destroy_key(ctx_of(request), session.key)
    response = see_other("/login?notice=signed-out")
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


__all__ = ["Redirect", "router"]
