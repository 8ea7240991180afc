"""The admin page of directories (LDAP, Active Directory): list, add (the bind password goes in
and never comes back out), test with each step's time, remove — the same services as
``keyfob admin directory`` (server/directory/admin.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from keyfob.errors import KeyfobError
from keyfob.server.directory import admin as directories
from keyfob.server.directory.config import LOGIN_ATTRIBUTES, Kind, spec_from_options
from keyfob.server.inputs import STORABLE
from keyfob.server.web.common import admin, client, ctx_of, form_error, render, see_other

router = APIRouter(prefix="/admin/directories")
PAGE = "admin/directories.html"
Csrf = Annotated[str, Form(max_length=1024), STORABLE]
Text = Annotated[str, Form(max_length=1024), STORABLE]


def _context(request: Request, **extra: Any) -> dict[str, Any]:
    listed = directories.list_directories(ctx_of(request))
    return {
        "session": admin(request),
        "directories": [directories.directory_view(r, n) for r, n in listed],
        "kinds": [k.value for k in Kind],
        "login_attributes": LOGIN_ATTRIBUTES,
        "form": {},
    } | extra


def _render(request: Request, status: int = 200, **extra: Any) -> Response:
    return render(request, PAGE, status, **_context(request, **extra))


@router.get("", response_class=HTMLResponse, summary="Directories")
def directory_list(request: Request) -> Response:
    return _render(request)


@router.post("", response_class=HTMLResponse, summary="Add a directory")
def directory_add(
    request: Request,
    name: Annotated[str, Form(max_length=64), STORABLE] = "",
    urls: Text = "",
    base_dn: Text = "",
    bind_dn: Text = "",
    bind_password: Annotated[str, Form(max_length=1024)] = "",
    kind: Annotated[str, Form(max_length=16), STORABLE] = "ad",
    login_attribute: Annotated[str, Form(max_length=32), STORABLE] = "",
    filter: Text = "",
    group: Text = "",
    disabled_filter: Text = "",
    ca_file: Text = "",
    starttls: Annotated[bool, Form()] = False,
    cache_ttl: Annotated[int, Form(ge=0, le=10**6)] = 300,
    csrf: Csrf = "",
) -> Response:
    """Add a directory; on an error the form comes back filled in, all but the password."""
    # Every field has a default so that the role check comes before the form's (a helpdesk
    # user gets 403, not 422); the service refuses what is empty, with its hint.
    session = admin(request, csrf)
    form = {
        "name": name,
        "urls": urls,
        "base_dn": base_dn,
        "bind_dn": bind_dn,
        "kind": kind,
        "login_attribute": login_attribute,
        "filter": filter,
        "group": group,
        "disabled_filter": disabled_filter,
        "ca_file": ca_file,
        "starttls": starttls,
        "cache_ttl": cache_ttl,
    }
    try:
        spec = spec_from_options(form)
        record = directories.add_directory(
            ctx_of(request),
            spec,
            bind_password,
            actor=session.user.username,
            client=client(request),
        )
    except KeyfobError as exc:
        return form_error(request, PAGE, exc, **_context(request, form=form))
    return _render(request, added=record.name)


@router.post("/{name}/test", response_class=HTMLResponse, summary="Test a directory")
def directory_test(
    request: Request,
    name: str,
    login: Annotated[str, Form(max_length=255), STORABLE] = "",
    csrf: Csrf = "",
) -> Response:
    """Connect and bind to each server of the directory, then look the given login up; the
    page reports each step with its time, a failed step included."""
    # A failed step is part of the report (200), not an error of the page.
    admin(request, csrf)
    try:
        report = directories.test_directory(ctx_of(request), name, login.strip() or None)
    except KeyfobError as exc:
        return form_error(request, PAGE, exc, **_context(request))
    return _render(request, tested=name, report=report, login=login.strip())


@router.post("/{name}/remove", response_class=HTMLResponse, summary="Remove a directory")
def directory_remove(request: Request, name: str, csrf: Csrf = "") -> Response:
    session = admin(request, csrf)
    try:
        count = directories.remove_directory(
            ctx_of(request), name, actor=session.user.username, client=client(request)
        )
    except KeyfobError as exc:
        return form_error(request, PAGE, exc, **_context(request))
    return see_other(f"/admin/directories?removed={count}")
