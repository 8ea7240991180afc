"""REST routes (docs/design.md §6.2). Each: authorise, call a service, shape the answer."""

from __future__ import annotations

import base64
import binascii
import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from keyfob.server import accounts, enrolment, inventory
from keyfob.server.api.auth import (
    Principal,
    require_admin,
    require_self_or_admin,
    require_validate,
)
from keyfob.server.api.models import (
    AssignBody,
    BeginBody,
    ExportBody,
    ImportBody,
    ResyncBody,
    SelfAssignBody,
    UserBody,
    ValidateBody,
    VerifyBody,
)
from keyfob.server.context import ServerContext
from keyfob.server.errors import ServiceError
from keyfob.server.inputs import MAX_OFFSET
from keyfob.server.store import repo
from keyfob.server.validation import validate
from keyfob.server.views import api_key_view, user_view

router = APIRouter(prefix="/api/v1")
Admin = Annotated[Principal, Depends(require_admin)]
# Bounded: an OFFSET past PostgreSQL's bigint is a database error, not an empty page.
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip (at most 10^9)")]


def _ctx(request: Request) -> ServerContext:
    return request.app.state.ctx


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("/validate", tags=["validate"])
async def post_validate(
    body: ValidateBody, request: Request, who: Annotated[Principal, Depends(require_validate)]
) -> dict[str, str]:
    """Check a user's code. The answer is only accept or reject, whatever the reason.

    Deliberately ``async`` and run on the event loop: a validation is ~0.3 ms of CPU with three
    short statements, and handing it to the thread pool (twice, with a sync dependency) cost
    more than the work itself and made 40 threads fight over the GIL.
    """
    started = time.perf_counter()
    result = validate(
        _ctx(request), body.username, body.code, client=_client(request), actor=who.actor
    )
    metrics = request.app.state.metrics
    metrics.validations.labels("accept" if result.accepted else "reject").inc()
    metrics.validate_seconds.observe(time.perf_counter() - started)
    return {"result": "accept" if result.accepted else "reject"}


# --- users -------------------------------------------------------------------------------


@router.post("/users", status_code=201, tags=["users"])
def post_user(body: UserBody, request: Request, who: Admin) -> dict[str, Any]:
    user = accounts.create_user(
        _ctx(request),
        body.username,
        password=body.password,
        role=body.role,
        display_name=body.display_name,
        actor=who.actor,
        client=_client(request),
    )
    return user_view(user)


@router.get("/users", tags=["users"])
def get_users(request: Request, who: Admin) -> dict[str, Any]:
    return {"items": [user_view(u) for u in accounts.list_users(_ctx(request))]}


@router.get("/users/{username}/tokens", tags=["methods"])
def get_methods(username: str, request: Request) -> dict[str, Any]:
    require_self_or_admin(request, username)
    return {"items": enrolment.list_methods(_ctx(request), username)}


@router.post("/users/{username}/tokens", status_code=201, tags=["methods"])
def post_begin(username: str, body: BeginBody, request: Request) -> dict[str, Any]:
    who = require_self_or_admin(request, username)
    return enrolment.begin(
        _ctx(request),
        username,
        body.kind,
        label=body.label,
        algorithm=body.algorithm,
        digits=body.digits,
        period=body.period,
        actor=who.actor,
        client=_client(request),
    )


@router.post("/users/{username}/tokens/assign", tags=["methods"])
def post_self_assign(username: str, body: SelfAssignBody, request: Request) -> dict[str, Any]:
    who = require_self_or_admin(request, username)
    return enrolment.self_assign(
        _ctx(request),
        username,
        body.serial,
        body.code,
        label=body.label,
        actor=who.actor,
        client=_client(request),
    )


@router.post("/users/{username}/tokens/{token_id}/verify", tags=["methods"])
def post_verify(username: str, token_id: str, body: VerifyBody, request: Request) -> dict[str, Any]:
    who = require_self_or_admin(request, username)
    return enrolment.verify_enrolment(
        _ctx(request),
        username,
        token_id,
        body.code,
        serial=body.serial,
        actor=who.actor,
        client=_client(request),
    )


@router.delete("/users/{username}/tokens/{token_id}", status_code=204, tags=["methods"])
def delete_method(username: str, token_id: str, request: Request) -> Response:
    who = require_self_or_admin(request, username)
    enrolment.remove(_ctx(request), username, token_id, actor=who.actor, client=_client(request))
    return Response(status_code=204)


# --- inventory ---------------------------------------------------------------------------


@router.post("/tokens/import", tags=["inventory"])
def post_import(body: ImportBody, request: Request, who: Admin) -> dict[str, Any]:
    if (body.content is None) == (body.content_base64 is None):
        raise ServiceError(
            "give the file as exactly one of content or content_base64",
            hint="send text files (CSV, URIs, PSKC XML) as content, anything else as "
            "content_base64",
        )
    if body.content is not None:
        data = body.content.encode("utf-8")
    else:
        try:
            data = base64.b64decode(body.content_base64 or "", validate=True)
        except binascii.Error:
            raise ServiceError(
                "content_base64 is not valid base64",
                hint="encode the file with standard base64 on one line (base64 -w0 FILE)",
            ) from None
    try:
        key = bytes.fromhex(body.key) if body.key else None
    except ValueError:
        raise ServiceError("key is not hex", hint="give the pre-shared key as hex digits") from None
    report = inventory.import_seeds(
        _ctx(request),
        data,
        fmt=body.format,
        source=body.filename,
        password=body.password,
        key=key,
        mac_check=body.mac_check,
        dry_run=body.dry_run,
        actor=who.actor,
        client=_client(request),
    )
    result = report.as_dict()
    if not report.ok and not body.dry_run:
        raise _ImportFailed(result)
    return result


class _ImportFailed(ServiceError):
    status = 422
    code = "import_rejected"

    def __init__(self, report: dict[str, Any]) -> None:
        first = next(r for r in report["rows"] if r["action"] == "error")
        super().__init__(
            f"{report['errors']} row(s) have errors; nothing was imported "
            f"(first: {first['where']}: {first['message']})",
            hint=first.get("hint") or "fix the file, or run with dry_run to see every row",
        )
        self.report = report


@router.get("/tokens", tags=["inventory"])
def get_tokens(
    request: Request,
    who: Admin,
    state: Annotated[str | None, Query(max_length=16)] = None,
    kind: Annotated[str | None, Query(max_length=16)] = None,
    owner: Annotated[str | None, Query(max_length=255)] = None,
    assigned: bool | None = None,
    locked: bool | None = None,
    serial: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    return inventory.list_inventory(
        _ctx(request),
        state=state,
        kind=kind,
        owner=owner,
        assigned=assigned,
        locked=locked,
        serial=serial,
        limit=limit,
        offset=offset,
    )


@router.post("/tokens/export", tags=["inventory"])
def post_export(body: ExportBody, request: Request, who: Admin) -> Response:
    data = inventory.export(
        _ctx(request),
        body.format,
        password=body.password,
        assigned_only=body.assigned_only,
        actor=who.actor,
        client=_client(request),
    )
    media = "text/csv" if body.format == "azure-csv" else "application/pskc+xml"
    name = "keyfob-tokens.csv" if body.format == "azure-csv" else "keyfob-tokens.pskcxml"
    return Response(
        data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.post("/tokens/{serial}/assign", tags=["inventory"])
def post_assign(serial: str, body: AssignBody, request: Request, who: Admin) -> dict[str, Any]:
    return inventory.assign(
        _ctx(request),
        serial,
        body.username,
        label=body.label,
        actor=who.actor,
        client=_client(request),
    )


@router.post("/tokens/{serial}/unassign", tags=["inventory"])
def post_unassign(serial: str, request: Request, who: Admin) -> dict[str, Any]:
    return inventory.unassign(_ctx(request), serial, actor=who.actor, client=_client(request))


@router.post("/tokens/{serial}/unlock", tags=["inventory"])
def post_unlock(serial: str, request: Request, who: Admin) -> dict[str, Any]:
    return inventory.unlock_token(_ctx(request), serial, actor=who.actor, client=_client(request))


@router.post("/tokens/{serial}/resync", tags=["inventory"])
def post_resync(serial: str, body: ResyncBody, request: Request, who: Admin) -> dict[str, Any]:
    return inventory.resync_token(
        _ctx(request), serial, body.code1, body.code2, actor=who.actor, client=_client(request)
    )


# --- audit -------------------------------------------------------------------------------


@router.get("/audit", tags=["audit"])
def get_audit(
    request: Request,
    who: Admin,
    user: Annotated[str | None, Query(max_length=255)] = None,
    serial: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(max_length=16)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    with _ctx(request).engine.connect() as conn:
        items, total = repo.query_audit(
            conn,
            user=user,
            serial=serial,
            action=action,
            outcome=outcome,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
    for item in items:
        item["at"] = item["at"].isoformat()
    return {"items": items, "total": total, "limit": limit, "offset": offset}


# --- API keys ----------------------------------------------------------------------------


@router.get("/apikeys", tags=["apikeys"])
def get_apikeys(request: Request, who: Admin) -> dict[str, Any]:
    """Every API key with its dates, revoked ones included; never a key or its hash."""
    return {"items": [api_key_view(k) for k in accounts.list_api_keys(_ctx(request))]}


@router.delete("/apikeys/{key}", tags=["apikeys"])
def delete_apikey(key: str, request: Request, who: Admin) -> dict[str, Any]:
    """Revoke the key with this id (or name): refused by every worker from the next request."""
    revoked = accounts.revoke_api_key(_ctx(request), key, actor=who.actor, client=_client(request))
    return api_key_view(revoked)
