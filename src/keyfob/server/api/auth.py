"""Who is calling: a bearer API key (``validate``, ``admin`` or ``metrics``), or a user's own
password (HTTP Basic), which lets the burner and scripts set up one user's first method.

HTTP Basic is deliberately narrow: it acts as role ``user`` on the caller's own methods only
(even for an admin user: a password typed into a script is not an admin credential), never for
an account whose password is one-time, never once the account has an active method (a password
alone must not undo the second factor the web pages demand), and it is rate-limited like the web
sign-in, before any password is hashed. Every refusal gets the same 401, whatever the reason.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from sqlalchemy import Connection

from keyfob.server import accounts, permissions
from keyfob.server.api.blocking import run_db
from keyfob.server.context import ServerContext
from keyfob.server.errors import Forbidden, TooManyAttempts, Unauthorized
from keyfob.server.permissions import Op
from keyfob.server.store import repo
from keyfob.server.store.records import UserRecord
from keyfob.server.store.vocab import ApiRole
from keyfob.server.web.ratelimit import LoginLimiter


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
        return self.kind == "apikey" and self.role == ApiRole.ADMIN


def _ctx(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx  # set by create_app; Starlette's state is Any
    return ctx


def _refused() -> Unauthorized:
    """The one answer to every refused credential: a wrong password, an unknown user, a
    one-time password, an account with a second factor, a bad API key. One body for all, so
    that no answer tells a right password from a wrong one."""
    return Unauthorized(
        "missing or invalid credentials",
        hint="send 'Authorization: Bearer <API key>'; HTTP Basic user:password works only for "
        "your own methods, until you have one, once your first password is changed",
    )


def _scheme(request: Request) -> tuple[str, str]:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower(), value.strip()


def _basic_credentials(value: str) -> tuple[str, str]:
    try:
        username, _, password = base64.b64decode(value).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return "", ""
    return username, password


def _may_use_basic(conn: Connection, user: UserRecord) -> bool:
    """A password alone may act only while it is the user's own (not one-time: an admin or the
    first start's output has seen it) and there is no second factor it would bypass — not even
    a lost, disabled or retired one: whoever holds the password after the token went missing
    must not enrol their own. Only a user who never had a method, or whose methods were all
    deleted, may add the first with the password."""
    if user.must_change_password:
        return False
    return not repo.has_second_factor(conn, user.id)


def _basic_user(request: Request, username: str, password: str) -> Principal:
    """Rate limit first (no argon2 run for a refused attempt), then the password check."""
    ctx = _ctx(request)
    limiter: LoginLimiter = request.app.state.login_limiter
    attempt = limiter.attempt(username, request.client.host if request.client else "?")
    if not attempt.allowed:
        raise TooManyAttempts(attempt.wait)
    user = accounts.authenticate(ctx, username, password, eligible=_may_use_basic)
    if user is None:
        raise _refused()
    limiter.succeeded(attempt)
    return Principal("user", user.username, "user")


def authenticate(request: Request, *, own: str | None = None) -> Principal:
    """The caller. HTTP Basic only when ``own`` names the account the route acts on: a Basic
    user name other than ``own`` is refused (403) before any password is hashed."""
    scheme, value = _scheme(request)
    if scheme == "bearer" and value:
        key = accounts.check_api_key(_ctx(request), value)
        if key is not None:
            return Principal("apikey", key.name, key.role)
    elif scheme == "basic" and value:
        username, password = _basic_credentials(value)
        if not username:
            raise _refused()
        if own is None or repo.user_key(username) != repo.user_key(own):
            raise Forbidden(
                "HTTP Basic acts only on your own methods",
                hint="use /api/v1/users/<your username>/tokens, or an admin API key",
            )
        return _basic_user(request, username, password)
    raise _refused()


async def require_validate(request: Request) -> Principal:
    """Bearer API keys only (no password hashing on the validation path); checking the key is
    one primary-key SELECT, which also sees a revocation made by any other worker."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value:
        key = await run_db(request, accounts.check_api_key, _ctx(request), value.strip())
        if key is not None and permissions.allowed(key.role, Op.VALIDATE):
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
    """Admin API keys only. An HTTP Basic caller is refused without checking its password:
    no password, not even an admin user's, opens the admin API."""
    if _scheme(request)[0] == "basic":
        raise Forbidden(
            "this needs an admin API key: HTTP Basic acts only on your own methods",
            hint="send 'Authorization: Bearer <admin API key>' (keyfob admin apikey create "
            "--role admin)",
        )
    p = authenticate(request)
    if not p.is_admin:
        raise Forbidden("this needs an admin API key")
    return p


def require_self_or_admin(request: Request, username: str) -> Principal:
    p = authenticate(request, own=username)
    if p.is_admin or (p.kind == "user" and repo.user_key(p.name) == repo.user_key(username)):
        return p
    raise Forbidden("you can only manage your own methods")


def require_metrics(request: Request) -> Principal:
    """``/metrics``: a bearer API key with role ``metrics`` (a scraper's key, good for nothing
    else) or ``admin``. Validation counts and timings tell an outsider how busy the server is."""
    scheme, value = _scheme(request)
    key = accounts.check_api_key(_ctx(request), value) if scheme == "bearer" and value else None
    if key is None:
        raise Unauthorized(
            "missing or invalid API key",
            hint="send 'Authorization: Bearer <API key>' with role metrics or admin "
            "(keyfob admin apikey create --role metrics)",
        )
    if not permissions.allowed(key.role, Op.METRICS):
        raise Forbidden("this needs an API key with role metrics or admin")
    return Principal("apikey", key.name, key.role)


require_validate.operation = Op.VALIDATE  # type: ignore[attr-defined]
require_metrics.operation = Op.METRICS  # type: ignore[attr-defined]


def authorize(request: Request, op: Op) -> Principal:
    """The caller, if the permission table allows it ``op`` (else 403). A user's own password
    (HTTP Basic) works only for the operations a user may do on their own account
    (permissions.SELF_OPS), on the account named by the path's ``{username}``; no password,
    not even an admin user's, opens anything else."""
    own = request.path_params.get("username") if op in permissions.SELF_OPS else None
    if _scheme(request)[0] == "basic" and own is None:
        raise Forbidden(
            "this needs an API key: HTTP Basic acts only on your own methods",
            hint="send 'Authorization: Bearer <API key>' with a role the operation allows "
            f"({' or '.join(sorted(permissions.PERMISSIONS[op]))})",
        )
    p = authenticate(request, own=own)
    if p.kind == "user":  # authenticate let a Basic user through for their own account only
        return p
    permissions.require(p.role, op)
    return p


def allow(op: Op) -> Any:
    """The dependency of a route that does ``op``: ``who: Annotated[Principal, allow(Op.X)]``.
    It carries its operation, so the role matrix test reads every route's from the app."""

    def dependency(request: Request) -> Principal:
        return authorize(request, op)

    dependency.operation = op  # type: ignore[attr-defined]
    return Depends(dependency)
