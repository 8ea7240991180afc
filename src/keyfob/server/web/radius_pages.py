"""The admin page of RADIUS clients: list, add (the generated secret shown once), change the
mode or the Message-Authenticator rule, remove — the same services as
``keyfob admin radius-client``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from keyfob.errors import KeyfobError
from keyfob.server.inputs import STORABLE
from keyfob.server.radius import clients as radius_clients
from keyfob.server.radius.clients import ClientSettings, Mode
from keyfob.server.web.common import admin, client, ctx_of, render, see_other

router = APIRouter(prefix="/admin/radius")
Field = Annotated[str, Form(max_length=1024), STORABLE]
PAGE = "admin/radius.html"


def _render(request: Request, status: int = 200, **extra: Any) -> Response:
    session = admin(request)
    listed = radius_clients.list_clients(ctx_of(request))
    modes = [m.value for m in Mode]
    return render(request, PAGE, status, session=session, clients=listed, modes=modes, **extra)


@router.get("", response_class=HTMLResponse)
def radius_list(request: Request) -> Response:
    return _render(request)


def _settings(
    mode: Annotated[str | None, Form(max_length=16), STORABLE] = None,
    otp_first: Annotated[bool, Form()] = False,
    relaxed: Annotated[bool, Form()] = False,
) -> ClientSettings:
    """The mode and the two checkboxes of the add and change forms (an unticked box is not
    sent); no mode: otp when adding, unchanged when changing."""
    return ClientSettings(None, mode, otp_first, not relaxed)


SettingsForm = Annotated[ClientSettings, Depends(_settings)]


@router.post("", response_class=HTMLResponse)
def radius_add(
    request: Request,
    name: Annotated[str, Form(max_length=64), STORABLE],
    address: Annotated[str, Form(max_length=64), STORABLE],
    settings: SettingsForm,
    csrf: Field = "",
) -> Response:
    """Add a client; keyfob always makes the secret here (a form is no place to type one)."""
    session = admin(request, csrf)
    try:
        record, secret = radius_clients.add_client(
            ctx_of(request),
            name,
            address,
            settings=settings,
            actor=session.user.username,
            client=client(request),
        )
    except KeyfobError as exc:
        return _render(request, 400, error=str(exc))
    return _render(request, new_secret=secret, new_name=record.name)


@router.post("/{name}/set", response_class=HTMLResponse)
def radius_set(request: Request, name: str, settings: SettingsForm, csrf: Field = "") -> Response:
    session = admin(request, csrf)
    try:
        radius_clients.set_client(
            ctx_of(request), name, settings, actor=session.user.username, client=client(request)
        )
    except KeyfobError as exc:
        return _render(request, 400, error=str(exc))
    return see_other("/admin/radius")


@router.post("/{name}/remove", response_class=HTMLResponse)
def radius_remove(request: Request, name: str, csrf: Field = "") -> Response:
    session = admin(request, csrf)
    radius_clients.remove_client(
        ctx_of(request), name, actor=session.user.username, client=client(request)
    )
    return see_other("/admin/radius")
