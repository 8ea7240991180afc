"""The small token routes of the API: ``POST /tokens/{serial}/<action>`` that only looks the
token up, calls one service with the caller and answers the token's view (keyfob.server.views).
One function registers each, instead of a route function each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request

from keyfob.server.api.auth import Principal, allow
from keyfob.server.context import ServerContext
from keyfob.server.permissions import Op
from keyfob.server.store.records import TokenRecord
from keyfob.server.views import token_view

# ``service(ctx, serial, *args, actor=..., client=...)``, e.g. inventory.unlock_token.
TokenService = Callable[..., TokenRecord]


def token_action(
    api: APIRouter,
    action: str,
    service: TokenService,
    op: Op,
    *args: Any,
    name: str,
    summary: str,
    description: str | None = None,
) -> None:
    """Register ``POST /tokens/{serial}/<action>`` on ``api``, allowed for ``op``; ``name`` is
    the route's (and the start of its OpenAPI operationId)."""
    permission = allow(op)

    def endpoint(serial: str, request: Request, who: Principal = permission) -> dict[str, Any]:
        ctx: ServerContext = request.app.state.ctx
        client = request.client.host if request.client else None
        token = service(ctx, serial, *args, actor=who.actor, client=client)
        return token_view(token, ctx.now())

    api.add_api_route(
        f"/tokens/{{serial}}/{action}",
        endpoint,
        methods=["POST"],
        name=name,
        summary=summary,
        description=description,
    )
