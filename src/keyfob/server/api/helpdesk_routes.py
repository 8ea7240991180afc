"""REST routes of the helpdesk's token operations (server/helpdesk.py, issue 13): lost, found,
retire, the drift report and its reset. Each names its operation (keyfob.server.permissions)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request

from keyfob.server import helpdesk
from keyfob.server.api.auth import Principal, allow
from keyfob.server.api.models import LostBody
from keyfob.server.api.token_actions import token_action
from keyfob.server.context import ServerContext
from keyfob.server.permissions import Op
from keyfob.server.store.records import TokenRecord
from keyfob.server.views import token_view

helpdesk_api = APIRouter(prefix="/api/v1", tags=["helpdesk"])
TokensRead = Annotated[Principal, allow(Op.TOKENS_READ)]
TokensLost = Annotated[Principal, allow(Op.TOKENS_LOST)]
NO_BODY = LostBody()  # POST …/lost without a body: no passcode


def _ctx(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


def _by(who: Principal, request: Request) -> dict[str, Any]:
    return {"actor": who.actor, "client": request.client.host if request.client else None}


def _shown(request: Request, token: TokenRecord) -> dict[str, Any]:
    return token_view(token, _ctx(request).now())


@helpdesk_api.post(
    "/tokens/{serial}/lost",
    summary="Mark a token lost",
    description="Every code of the token (or app method, by its id) is then refused with the "
    "answer a wrong code gets; it stays among its owner's methods, shown as lost. With "
    "`issue_tap`, the owner also gets a temporary access passcode, answered here once as "
    "`passcode`. Needs a helpdesk or admin API key.",
)
def post_lost(
    serial: str, request: Request, who: TokensLost, body: LostBody = NO_BODY
) -> dict[str, Any]:
    token, passcode = helpdesk.mark_lost(
        _ctx(request), serial, issue_tap=body.issue_tap, **_by(who, request)
    )
    shown = _shown(request, token)
    if passcode is not None:
        shown["passcode"] = passcode
    return shown


token_action(
    helpdesk_api,
    "found",
    helpdesk.mark_found,
    Op.TOKENS_LOST,
    name="post_found",
    summary="Mark a lost token found",
    description="The token is active again, its wrong-code count and lock cleared; the next "
    "accepted code learns its clock drift again. Needs a helpdesk or admin API key.",
)
token_action(
    helpdesk_api,
    "retire",
    helpdesk.retire,
    Op.TOKENS_RETIRE,
    name="post_retire",
    summary="Retire a token for good",
    description="Its secret is destroyed and its owner cleared; it cannot be undone, and the "
    "serial is refused by a later import unless `allow_retired` is given. Needs an admin "
    "API key.",
)


@helpdesk_api.get(
    "/tokens/{serial}/drift",
    summary="A token's clock drift",
    description="The learned drift in steps and seconds, its history (the drift at accepted "
    "codes, as runs), the drift rate per day where the history allows one, the last use, and "
    "a warning when the drift nears the edge of the resync window. Needs a helpdesk or admin "
    "API key.",
)
def get_drift(serial: str, request: Request, who: TokensRead) -> dict[str, Any]:
    return helpdesk.drift_report(_ctx(request), serial).as_dict()


token_action(
    helpdesk_api,
    "drift-reset",
    helpdesk.reset_drift,
    Op.TOKENS_REPAIR,
    name="post_drift_reset",
    summary="Reset a token's learned drift",
    description="Sets the drift to zero and drops a half-done resync. Needs a helpdesk or "
    "admin API key.",
)
