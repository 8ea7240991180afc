"""The self-service page: my methods; add an authenticator app or a hardware token; rename,
remove (after a fresh code or the password), resync; mark a token lost (one this session did
not sign in with)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from keyfob.errors import KeyfobError
from keyfob.server import enrolment, helpdesk
from keyfob.server.errors import Conflict
from keyfob.server.store.records import Enrolment
from keyfob.server.store.vocab import TokenKind
from keyfob.server.validation import validate
from keyfob.server.views import enrolment_view, token_view
from keyfob.server.web.common import (
    Code,
    Field,
    Label,
    Serial,
    Word,
    by,
    client,
    ctx_of,
    form_error,
    refused_page,
    render,
    see_other,
    signed_in,
)
from keyfob.server.web.ratelimit import LoginLimiter, too_many
from keyfob.server.web.sessions import WebSession

router = APIRouter(tags=["pages: self-service"])


def _methods(request: Request, username: str) -> list[dict[str, Any]]:
    ctx = ctx_of(request)
    return [token_view(t, ctx.now()) for t in enrolment.list_methods(ctx, username)]


def _method(request: Request, username: str, token_id: str) -> dict[str, Any]:
    """One of the user's methods: the same lookup, and the same 404, as the REST routes'."""
    ctx = ctx_of(request)
    return token_view(enrolment.get_method(ctx, username, token_id), ctx.now())


def _setup_page(
    request: Request, session: WebSession, pending: Enrolment, exc: KeyfobError | None = None
) -> HTMLResponse:
    # Counted from the server's clock: the browser's own clock may well be wrong.
    seconds_left = max(0, int(pending.expires_at.timestamp() - ctx_of(request).now()))
    context: dict[str, Any] = {
        "session": session,
        "setup": enrolment_view(pending),
        "seconds_left": seconds_left,
    }
    if exc is None:
        return render(request, "setup.html", **context)
    return form_error(request, "setup.html", exc, **context)


def _set_up_again(request: Request, session: WebSession, exc: KeyfobError) -> Response:
    """The enrolment cannot go on (expired, already done, not the user's): say so, send the
    user back."""
    return refused_page(request, exc, title="Set up again", back="/", session=session)


@router.get("/", response_class=HTMLResponse, summary="My sign-in methods")
def home(request: Request) -> Response:
    session = signed_in(request)
    methods = _methods(request, session.user.username)
    return render(request, "home.html", session=session, methods=methods)


# The user marks one of their own tokens lost: the helpdesk's service (the same state, the same
# audit row, with the user as actor), refused for the token this session signed in with — a code
# of it was just typed, so it is not lost, or whoever typed it is not its owner — and for a
# session that does not say how it signed in (from before revision 0009). (A comment, not a
# docstring: a route's docstring would be its OpenAPI description.)
@router.post("/methods/{token_id}/lost", response_class=HTMLResponse, summary="I lost this token")
def lost(request: Request, token_id: str, csrf: Field = "") -> Response:
    session = signed_in(request, csrf)
    ctx = ctx_of(request)
    try:
        method = enrolment.get_method(ctx, session.user.username, token_id)
        if session.signed_in_with is None:
            raise Conflict(
                "this session does not say how you signed in",
                hint="sign out, sign in again with another method, then mark the token lost",
            )
        helpdesk.mark_lost(
            ctx,
            method.serial or method.id,
            owner=session.user.username,
            signed_in_with=session.signed_in_with,
            **by(session, request),
        )
    except KeyfobError as exc:
        methods = _methods(request, session.user.username)
        return form_error(request, "home.html", exc, session=session, methods=methods)
    return see_other("/?notice=lost")


@router.post("/methods/new", response_class=HTMLResponse, summary="Add an app or a token")
def new_method(
    request: Request,
    kind: Word,
    label: Label = "",
    period: Annotated[int, Form()] = 30,
    csrf: Field = "",
) -> Response:
    session = signed_in(request, csrf)
    if kind == TokenKind.CLASSIC:
        return see_other("/methods/claim")
    try:
        begun = enrolment.begin(
            ctx_of(request),
            session.user.username,
            kind,
            label=label or None,
            period=period,
            **by(session, request),
        )
    except KeyfobError as exc:
        methods = _methods(request, session.user.username)
        return form_error(request, "home.html", exc, session=session, methods=methods)
    return see_other(f"/methods/{begun.id}/setup")


@router.get("/methods/{token_id}/setup", response_class=HTMLResponse, summary="Set up a new method")
def setup(request: Request, token_id: str) -> Response:
    session = signed_in(request)
    try:
        pending = enrolment.pending_enrolment(ctx_of(request), session.user.username, token_id)
    except KeyfobError as exc:
        return _set_up_again(request, session, exc)
    return _setup_page(request, session, pending)


@router.post(
    "/methods/{token_id}/verify", response_class=HTMLResponse, summary="Activate a new method"
)
def verify(
    request: Request, token_id: str, code: Code, csrf: Field = "", serial: Serial = ""
) -> Response:
    session = signed_in(request, csrf)
    ctx = ctx_of(request)
    try:
        enrolment.verify_enrolment(
            ctx,
            session.user.username,
            token_id,
            code,
            serial=serial.strip() or None,
            **by(session, request),
        )
    except KeyfobError as exc:
        try:
            pending = enrolment.pending_enrolment(ctx, session.user.username, token_id)
        except KeyfobError:
            return _set_up_again(request, session, exc)
        return _setup_page(request, session, pending, exc)
    return see_other("/?notice=added")


@router.get("/methods/claim", response_class=HTMLResponse, summary="Claim a token form")
def claim_form(request: Request) -> Response:
    session = signed_in(request)
    return render(request, "claim.html", session=session)


@router.post("/methods/claim", response_class=HTMLResponse, summary="Claim a token from IT")
def claim(request: Request, serial: Serial, code: Code, csrf: Field = "") -> Response:
    session = signed_in(request, csrf)
    try:
        enrolment.self_assign(
            ctx_of(request), session.user.username, serial, code, **by(session, request)
        )
    except KeyfobError as exc:
        return form_error(request, "claim.html", exc, session=session, serial=serial)
    return see_other("/?notice=added")


@router.post("/methods/{token_id}/rename", response_class=HTMLResponse, summary="Rename a method")
def rename(request: Request, token_id: str, label: Label, csrf: Field = "") -> Response:
    session = signed_in(request, csrf)
    enrolment.rename(
        ctx_of(request), session.user.username, token_id, label, **by(session, request)
    )
    return see_other("/?notice=renamed")


# The two forms that ask to confirm something about one method: the page is named as the path
# ends (remove.html, resync.html).
@router.get("/methods/{token_id}/remove", response_class=HTMLResponse, summary="Remove form")
@router.get("/methods/{token_id}/resync", response_class=HTMLResponse, summary="Resync form")
def method_form(request: Request, token_id: str) -> Response:
    session = signed_in(request)
    method = _method(request, session.user.username, token_id)
    page = request.url.path.rsplit("/", 1)[1] + ".html"
    return render(request, page, session=session, method=method)


# Removing a method needs proof of presence again: a current code or the password.
@router.post("/methods/{token_id}/remove", response_class=HTMLResponse, summary="Remove a method")
def remove(
    request: Request, token_id: str, csrf: Field = "", code: Code = "", password: Field = ""
) -> Response:
    session = signed_in(request, csrf)
    ctx = ctx_of(request)
    method = _method(request, session.user.username, token_id)
    proven, wait = False, 0
    if code.strip():
        proven = validate(ctx, session.user.username, code, **by(session, request)).accepted
    elif password:
        limiter: LoginLimiter = request.app.state.login_limiter
        proven, wait = limiter.check_password(
            session.user.username, client(request) or "?", password
        )
    if not proven:
        page = render(
            request,
            "remove.html",
            429 if wait else 401,
            session=session,
            method=method,
            error=f"Too many attempts. Wait {wait} seconds and try again."
            if wait
            else "Type a current code from one of your methods, or your password, to confirm.",
        )
        return too_many(page, wait) if wait else page
    enrolment.remove(ctx, session.user.username, token_id, **by(session, request))
    return see_other("/?notice=removed")


@router.post("/methods/{token_id}/resync", response_class=HTMLResponse, summary="Resync a method")
def resync(request: Request, token_id: str, code1: Code, code2: Code, csrf: Field = "") -> Response:
    session = signed_in(request, csrf)
    method = _method(request, session.user.username, token_id)
    try:
        enrolment.resync_method(
            ctx_of(request), session.user.username, token_id, code1, code2, **by(session, request)
        )
    except KeyfobError as exc:
        return form_error(request, "resync.html", exc, session=session, method=method)
    return see_other("/?notice=resynced")
