"""Who is calling: a bearer API key (role ``validate`` or ``admin``) or a user's own password
(HTTP Basic), which lets the burner and scripts act for one user without an admin key."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from fastapi import Request

from keyfob.server import accounts
from keyfob.server.context import ServerContext
from keyfob.server.errors import Forbidden, Unauthorized
from keyfob.server.store import repo


@dataclass(frozen=True)
class Principal:
    kind: str  # apikey | user
    name: str
    role: str  # validate | admin | user

    @property
    def actor(self) -> str:
        return f"apikey:{self.name}" if self.kind == "apikey" else self.name

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _ctx(request: Request) -> ServerContext:
    return request.app.state.ctx


def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    ctx = _ctx(request)
    if scheme.lower() == "bearer" and value:
        key = accounts.check_api_key(ctx, value.strip())
        if key is not None:
            return Principal("apikey", key.name, key.role)
    elif scheme.lower() == "basic" and value:
        try:
            username, _, password = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            username, password = "", ""
        user = accounts.authenticate(ctx, username, password) if username else None
        if user is not None:
            with ctx.engine.connect() as conn:
                has_factor = bool(repo.active_tokens_of(conn, user.username)[1])
            if has_factor:
                # A password alone must not undo the second factor the web pages demand.
                raise Unauthorized(
                    "this account has a second factor, so its password alone is not enough "
                    "for the API",
                    hint="use the self-service web page, or ask an admin (API key)",
                )
            return Principal("user", user.username, user.role)
    raise Unauthorized(
        "missing or invalid credentials",
        hint="send 'Authorization: Bearer <API key>' or HTTP Basic user:password",
    )


async def require_validate(request: Request) -> Principal:
    """Bearer API keys only (no password hashing on the validation path); verified keys are
    cached, so this rarely touches the database."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value:
        key = accounts.check_api_key(_ctx(request), value.strip())
        if key is not None and key.role in ("validate", "admin"):
            return Principal("apikey", key.name, key.role)
        if key is not None:
            raise Forbidden("this needs an API key with role validate or admin")
    elif scheme.lower() == "basic":
        raise Forbidden("this needs an API key with role validate or admin")
    raise Unauthorized(
        "missing or invalid API key",
        hint="send 'Authorization: Bearer <API key>' (keyfob admin apikey create)",
    )


def require_admin(request: Request) -> Principal:
    p = authenticate(request)
    if not p.is_admin:
        raise Forbidden("this needs an admin API key or an admin user")
    return p


def require_self_or_admin(request: Request, username: str) -> Principal:
    p = authenticate(request)
    if p.is_admin or (p.kind == "user" and p.name.casefold() == username.casefold()):
        return p
    raise Forbidden("you can only manage your own methods")
