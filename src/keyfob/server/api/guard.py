"""The first look at every request, before routing, authentication or SQL: text that cannot be
stored (a NUL, another control character) in the path, the query string or the HTTP Basic user
name is refused with a 400 that names the part; and the client address — whatever
``X-Forwarded-For`` said, behind a trusted proxy — is cut down to something storable.

One check here instead of one per route: a new route or query parameter is covered the day it
is added, and nothing downstream (users, tokens, audit, rate limits) ever sees such a value.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from keyfob.server.api.middleware import HttpMiddleware
from keyfob.server.api.problems import respond
from keyfob.server.inputs import USERNAME_MAX, clean_client, describe, forbidden_at


def basic_user(scope: Scope) -> str:
    """The user name of an HTTP Basic ``Authorization`` header (first header, as Starlette
    reads it), decoded as leniently as any authentication code could; "" when there is none or
    it does not decode at all, which the authentication code refuses on its own."""
    for name, value in scope.get("headers") or []:
        if name != b"authorization":
            continue
        scheme, _, token = value.decode("latin-1").partition(" ")
        if scheme.lower() != "basic":
            return ""
        try:
            raw = base64.b64decode(token.strip())
        except (binascii.Error, ValueError):
            return ""
        return raw.decode("utf-8", errors="replace").partition(":")[0]
    return ""


def refusal(scope: Scope) -> tuple[str, str] | None:
    """(what is wrong, what to do) for the first part of the request that cannot be stored."""
    user = basic_user(scope)
    checks = (
        ("path", scope.get("path", ""), "use the name, serial or id without control characters"),
        (
            "query string",
            unquote_plus(scope.get("query_string", b"").decode("latin-1")),
            "remove the control character from the query parameters",
        ),
        (
            "user name in the Authorization header",
            user,
            "send the user name (e.g. alice@example.com) without control characters",
        ),
    )
    for part, text, hint in checks:
        at = forbidden_at(text)
        if at is not None:
            return f"the request {part} contains {describe(text, at)}", hint
    if len(user) > USERNAME_MAX:
        return (
            f"the user name in the Authorization header is longer than {USERNAME_MAX} characters",
            "send the user's principal name, e.g. alice@example.com",
        )
    return None


class InputGuard(HttpMiddleware):
    """ASGI middleware: refuse unstorable text in the path, query and Basic user name (400), and
    clamp the client address to a storable one."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if client:  # what every consumer (audit, rate limits) then sees
            scope["client"] = (clean_client(client[0]), client[1])
        problem = refusal(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        message, hint = problem
        response = respond(Request(scope), 400, "bad_request", message, hint)
        await response(scope, receive, send)
