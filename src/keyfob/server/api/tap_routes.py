"""REST routes of the helpdesk's temporary access passcodes (server/tap.py, issue 13)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request

from keyfob.server import tap
from keyfob.server.api.auth import Principal, allow
from keyfob.server.api.models import TapBody
from keyfob.server.context import ServerContext
from keyfob.server.permissions import Op

tap_api = APIRouter(prefix="/api/v1", tags=["helpdesk"])
TapRead = Annotated[Principal, allow(Op.TAP_READ)]
TapIssue = Annotated[Principal, allow(Op.TAP_ISSUE)]


def _ctx(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


@tap_api.post(
    "/users/{username}/tap",
    status_code=201,
    summary="Issue a temporary access passcode",
    description="Answers the passcode once (it is stored only as a salted hash); the user's "
    "previous live passcode is revoked. Needs a helpdesk or admin API key.",
)
def post_tap(username: str, body: TapBody, request: Request, who: TapIssue) -> dict[str, Any]:
    made, passcode = tap.issue(
        _ctx(request),
        username,
        seconds=round(body.hours * 3600),
        uses=body.uses,
        reason=body.reason,
        actor=who.actor,
        client=_client(request),
    )
    return {"passcode": passcode, "expires_at": made.expires_at.isoformat(), "uses": made.uses}


@tap_api.get(
    "/users/{username}/tap",
    summary="List a user's temporary access passcodes",
    description="Never the passcodes. Needs a helpdesk or admin API key.",
)
def get_tap(username: str, request: Request, who: TapRead) -> dict[str, Any]:
    ctx = _ctx(request)
    return {"items": [p.as_dict(ctx.now_dt()) for p in tap.list_passes(ctx, username)]}


@tap_api.delete(
    "/users/{username}/tap",
    summary="Revoke a user's live temporary access passcode",
    description="Needs a helpdesk or admin API key.",
)
def delete_tap(username: str, request: Request, who: TapIssue) -> dict[str, Any]:
    count = tap.revoke(_ctx(request), username, actor=who.actor, client=_client(request))
    return {"revoked": count}
