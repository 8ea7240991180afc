"""The self-service page: my methods; add an authenticator app or a hardware token; rename,
remove (after a fresh code or the password), resync."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from keyfob.errors import KeyfobError
from keyfob.server import enrolment
from keyfob.server.errors import NotFound
from keyfob.server.inputs import STORABLE
from keyfob.server.validation import validate
from keyfob.server.web.common import check_csrf, client, ctx_of, render, see_other, signed_in
from keyfob.server.web.ratelimit import LoginLimiter, too_many
from keyfob.server.web.sessions import WebSession

router = APIRouter()
Field = Annotated[str, Form(max_length=1024), STORABLE]
Code = Annotated[str, Form(max_length=32), STORABLE]

KIND_NAMES = {
    "app": "Authenticator app",
    "programmable": "Programmable hardware token",
    "classic": "Hardware token",
}


def _set_up_again(request: Request, session: WebSession, exc: KeyfobError) -> Response:
    """The enrolment is gone (expired or already done): say so and send the user back."""
    return render(
        request,
        "message.html",
        410,
        session=session,
        title="Set up again",
        message=str(exc),
        back="/",
    )


def _seconds_left(request: Request, view: dict) -> int:
    """Counted from the server's clock: the browser's own clock may well be wrong."""
    from datetime import datetime

    expires = datetime.fromisoformat(view["expires_at"]).timestamp()
    return max(0, int(expires - ctx_of(request).now()))


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    session = signed_in(request)
    methods = enrolment.list_methods(ctx_of(request), session.user.username)
    return render(request, "home.html", session=session, methods=methods, kinds=KIND_NAMES)


@router.post("/methods/new", response_class=HTMLResponse)
def new_method(
    request: Request,
    kind: Annotated[str, Form(max_length=16), STORABLE],
    label: Annotated[str, Form(max_length=64), STORABLE] = "",
    period: Annotated[int, Form()] = 30,
    csrf: Field = "",
) -> Response:
    session = signed_in(request)
    check_csrf(session, csrf)
    if kind == "classic":
        return see_other("/methods/claim")
    try:
        begun = enrolment.begin(
            ctx_of(request),
            session.user.username,
            kind,
            label=label or None,
            period=period,
            actor=session.user.username,
            client=client(request),
        )
    except KeyfobError as exc:
        methods = enrolment.list_methods(ctx_of(request), session.user.username)
        return render(
            request,
            "home.html",
            409,
            session=session,
            methods=methods,
            kinds=KIND_NAMES,
            error=str(exc),
        )
    return see_other(f"/methods/{begun['id']}/setup")


@router.get("/methods/{token_id}/setup", response_class=HTMLResponse)
def setup(request: Request, token_id: str) -> Response:
    session = signed_in(request)
    try:
        view = enrolment.setup_view(ctx_of(request), session.user.username, token_id)
    except KeyfobError as exc:
        return _set_up_again(request, session, exc)
    return render(
        request,
        "setup.html",
        session=session,
        setup=view,
        kinds=KIND_NAMES,
        seconds_left=_seconds_left(request, view),
    )


@router.post("/methods/{token_id}/verify", response_class=HTMLResponse)
def verify(
    request: Request,
    token_id: str,
    code: Code,
    csrf: Field = "",
    serial: Annotated[str, Form(max_length=128), STORABLE] = "",
) -> Response:
    session = signed_in(request)
    check_csrf(session, csrf)
    ctx = ctx_of(request)
    try:
        enrolment.verify_enrolment(
            ctx,
            session.user.username,
            token_id,
            code,
            serial=serial.strip() or None,
            actor=session.user.username,
            client=client(request),
        )
    except KeyfobError as exc:
        try:
            view = enrolment.setup_view(ctx, session.user.username, token_id)
        except KeyfobError:
            return _set_up_again(request, session, exc)
        return render(
            request,
            "setup.html",
            422,
            session=session,
            setup=view,
            kinds=KIND_NAMES,
            error=exc.message,
            hint=exc.hint,
            seconds_left=_seconds_left(request, view),
        )
    return see_other("/?notice=added")


@router.get("/methods/claim", response_class=HTMLResponse)
def claim_form(request: Request) -> Response:
    session = signed_in(request)
    return render(request, "claim.html", session=session)


@router.post("/methods/claim", response_class=HTMLResponse)
def claim(
    request: Request,
    serial: Annotated[str, Form(max_length=128), STORABLE],
    code: Code,
    csrf: Field = "",
) -> Response:
    session = signed_in(request)
    check_csrf(session, csrf)
    try:
        enrolment.self_assign(
            ctx_of(request),
            session.user.username,
            serial,
            code,
            actor=session.user.username,
            client=client(request),
        )
    except KeyfobError as exc:
        return render(
            request,
            "claim.html",
            422,
            session=session,
            serial=serial,
            error=exc.message,
            hint=exc.hint,
        )
    return see_other("/?notice=added")


@router.post("/methods/{token_id}/rename", response_class=HTMLResponse)
def rename(
    request: Request,
    token_id: str,
    label: Annotated[str, Form(max_length=64), STORABLE],
    csrf: Field = "",
) -> Response:
    session = signed_in(request)
    check_csrf(session, csrf)
    enrolment.rename(
        ctx_of(request),
        session.user.username,
        token_id,
        label,
        actor=session.user.username,
        client=client(request),
    )
    return see_other("/?notice=renamed")


def _method(request: Request, username: str, token_id: str) -> dict:
    for m in enrolment.list_methods(ctx_of(request), username):
        if m["id"] == token_id:
            return m
    raise NotFound(
        "you have no such sign-in method", hint="go back to your methods and pick one from the list"
    )


@router.get("/methods/{token_id}/remove", response_class=HTMLResponse)
def remove_form(request: Request, token_id: str) -> Response:
    session = signed_in(request)
    method = _method(request, session.user.username, token_id)
    return render(request, "remove.html", session=session, method=method, kinds=KIND_NAMES)


@router.post("/methods/{token_id}/remove", response_class=HTMLResponse)
def remove(
    request: Request, token_id: str, csrf: Field = "", code: Code = "", password: Field = ""
) -> Response:
    """Removing a method needs proof of presence again: a current code or the password."""
    session = signed_in(request)
    check_csrf(session, csrf)
    ctx = ctx_of(request)
    method = _method(request, session.user.username, token_id)
    proven, wait = False, 0
    if code.strip():
        proven = validate(
            ctx, session.user.username, code, client=client(request), actor=session.user.username
        ).accepted
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
            kinds=KIND_NAMES,
            error=f"Too many attempts. Wait {wait} seconds and try again."
            if wait
            else "Type a current code from one of your methods, or your password, to confirm.",
        )
        return too_many(page, wait) if wait else page
    enrolment.remove(
        ctx, session.user.username, token_id, actor=session.user.username, client=client(request)
    )
    return see_other("/?notice=removed")


@router.get("/methods/{token_id}/resync", response_class=HTMLResponse)
def resync_form(request: Request, token_id: str) -> Response:
    session = signed_in(request)
    method = _method(request, session.user.username, token_id)
    return render(request, "resync.html", session=session, method=method, kinds=KIND_NAMES)


@router.post("/methods/{token_id}/resync", response_class=HTMLResponse)
def resync(request: Request, token_id: str, code1: Code, code2: Code, csrf: Field = "") -> Response:
    session = signed_in(request)
    check_csrf(session, csrf)
    method = _method(request, session.user.username, token_id)
    try:
        enrolment.resync_method(
            ctx_of(request),
            session.user.username,
            token_id,
            code1,
            code2,
            actor=session.user.username,
            client=client(request),
        )
    except KeyfobError as exc:
        return render(
            request,
            "resync.html",
            422,
            session=session,
            method=method,
            kinds=KIND_NAMES,
            error=exc.message,
            hint=exc.hint,
        )
    return see_other("/?notice=resynced")
