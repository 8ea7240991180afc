"""Every error answer in one shape: ``{"error": {"code", "message", "hint"}}`` for the API, the
HTML message page for the web pages — and always with a hint, because the README promises one and
a bare "forbidden" leaves the caller guessing what to do next.

A raiser that knows better passes its own ``hint``; otherwise the default for the status (and
code) applies. Unexpected exceptions end here too, as a 500 in the same shape, logged without the
exception's text: a database error's text carries the statement's parameters (codes, names).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import DataError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from keyfob.errors import KeyfobError
from keyfob.server.api.middleware import HttpMiddleware
from keyfob.server.errors import http_headers, http_status
from keyfob.server.web.common import message_page

log = logging.getLogger("keyfob.server")

DOCS = "GET /docs (or /openapi.json) describes every route and field"
ROUTE_HINT = f"there is no such route: check the path; {DOCS}"
HINTS_BY_CODE = {
    "invalid_request": f"fix the fields named in the message and send again; {DOCS}",
    "not_found": "check the name, serial or id in the path; GET /api/v1/users and "
    "/api/v1/tokens list what exists",
}
HINTS_BY_STATUS = {
    400: f"check the request against the API description; {DOCS}",
    401: "send 'Authorization: Bearer <API key>' (keyfob admin apikey create) or HTTP Basic "
    "user:password",
    403: "use a credential with the role this route needs: admin for management, validate "
    "(or admin) for /api/v1/validate, metrics (or admin) for /metrics; a user manages only "
    "their own methods",
    404: HINTS_BY_CODE["not_found"],
    405: f"use one of the methods this path allows (see the Allow header); {DOCS}",
    409: "the request conflicts with the current state: read it again (GET) and decide from there",
    410: "it expired and is gone for good: start again",
    413: "send less: the limit is the server's KEYFOB_MAX_REQUEST_BYTES",
    422: HINTS_BY_CODE["invalid_request"],
    429: "wait a little and try again",
    500: "nothing was changed; try again, and if it keeps failing tell the server's admin "
    "(the server log has the details)",
}
FALLBACK_HINT = f"check the request; {DOCS}"


def default_hint(status: int, code: str) -> str:
    return HINTS_BY_CODE.get(code) or HINTS_BY_STATUS.get(status) or FALLBACK_HINT


def error_json(
    status: int,
    code: str,
    message: str,
    hint: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """The API's error body; ``hint`` falls back to the default for the status and code."""
    body: dict[str, Any] = {"code": code, "message": message}
    body["hint"] = hint or default_hint(status, code)
    body.update(extra)
    return JSONResponse({"error": body}, status_code=status, headers=headers)


MACHINE_PATHS = ("/healthz", "/metrics", "/openapi.json")


def is_api(scope: Scope) -> bool:
    """Programs (the API, health checks, Prometheus) get JSON; the rest is a page for a person."""
    path = str(scope.get("path", ""))
    return path.startswith("/api/") or path in MACHINE_PATHS


def respond(
    request: Request,
    status: int,
    code: str,
    message: str,
    hint: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """JSON for the API, the message page for the web — the same words either way (a page
    shows only a hint written for the case: the defaults speak to API clients)."""
    if is_api(request.scope):
        return error_json(status, code, message, hint, headers)
    return message_page(
        request, status, message, hint, headers, title="That did not work", back="/"
    )


async def _keyfob_error(request: Request, exc: Exception) -> Response:
    """A service error's own status and headers (Retry-After, WWW-Authenticate), any other
    bad input's 400: the same mapping as the pages' forms (keyfob.server.errors)."""
    assert isinstance(exc, KeyfobError)
    status, headers = http_status(exc), http_headers(exc) or None
    return respond(request, status, exc.code, exc.message, exc.hint, headers)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        problems.append(f"{where}: {err.get('msg')}")
    fields = ", ".join(
        ".".join(str(p) for p in err.get("loc", ())[1:]) or "the body" for err in exc.errors()
    )
    hint = f"fix {fields or 'the request'} and send again"
    hint += f"; {DOCS}" if is_api(request.scope) else ""
    return respond(request, 422, "invalid_request", "; ".join(problems) or "invalid request", hint)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals: no such route (404), wrong method (405)."""
    assert isinstance(exc, StarletteHTTPException)
    status, allow = exc.status_code, (exc.headers or {}).get("Allow")
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    if status == 405 and allow:
        hint = f"this path takes {allow}; {DOCS}"
    elif status == 404:
        hint = ROUTE_HINT
    else:
        hint = default_hint(status, code)
    return respond(request, status, code, str(exc.detail), hint, dict(exc.headers or {}))


async def _data_error(request: Request, exc: Exception) -> Response:
    """The database refused a value (too long, a NUL, out of range) that slipped past the checks
    at the edge: still the caller's input, so a 400 — and a bug to fix, so a warning."""
    log.warning(
        "the database refused a value on %s %s: %s", request.method, request.url.path, _summary(exc)
    )
    return respond(
        request,
        400,
        "bad_request",
        "a value in the request could not be stored (too long, or a character the database "
        "cannot hold)",
        "shorten the values and remove control characters, then send again",
    )


def _summary(exc: BaseException) -> str:
    """What failed, for the log. A statement error is named by its driver error and SQLSTATE
    only, and a validation error by its type: their text carries the statement's parameters or
    the input (names, codes). Any other exception keeps its message, which is the programmer's
    own words, cut short."""
    orig = getattr(exc, "orig", None)
    if isinstance(exc, StatementError) or orig is not None:
        state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        kind = type(orig).__name__ if orig is not None else type(exc).__name__
        return f"{kind} (SQLSTATE {state})" if state else kind
    if isinstance(exc, ValidationError):
        return type(exc).__name__
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def install(app: FastAPI) -> None:
    """Register the handlers that give every known error its answer."""
    app.add_exception_handler(KeyfobError, _keyfob_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DataError, _data_error)


class CatchAll(HttpMiddleware):
    """The last net: an exception nothing handled becomes a 500 in the usual shape (JSON with a
    hint, or the message page) instead of Starlette's plain text, and is logged as its type and
    stack only — never its message, which may hold request values."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            log.error(
                "unexpected %s on %s %s\n%s",
                _summary(exc),
                scope.get("method"),
                scope.get("path"),
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            if started:
                raise
            message = "the server failed to answer this request"
            response = respond(Request(scope), 500, "internal_error", message)
            await response(scope, receive, send)
