"""The FastAPI application factory: one app per :class:`ServerContext`, no global state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyfob import __version__
from keyfob.errors import KeyfobError
from keyfob.server.api.routes import _ImportFailed, router
from keyfob.server.context import ServerContext
from keyfob.server.errors import ServiceError
from keyfob.server.nodes import NodeHeartbeat
from keyfob.server.web import admin_pages, auth_pages, self_service
from keyfob.server.web.common import HERE as WEB_DIR
from keyfob.server.web.common import CsrfError, Redirect
from keyfob.server.web.ratelimit import LoginLimiter

log = logging.getLogger("keyfob.server")


class Metrics:
    """Prometheus metrics in the app's own registry (several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.validations = Counter(
            "keyfob_validations",
            "Validation requests by result",
            ["result"],
            registry=self.registry,
        )
        self.validate_seconds = Histogram(
            "keyfob_validate_seconds",
            "Time to answer a validation",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )


def _error(
    status: int, code: str, message: str, hint: str | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if hint:
        body["hint"] = hint
    body.update(extra)
    return JSONResponse({"error": body}, status_code=status)


class BodyLimit:
    """Refuse request bodies over the limit before they are read into memory (413)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = _error(413, "too_large", f"request body is larger than {self.limit} bytes")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_big(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await too_big(scope, receive, send)


class _TooLarge(Exception):
    pass


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


class SecurityHeaders:
    """Strict CSP (no inline scripts anywhere), no framing, no sniffing, no caching of pages
    that show secrets. The OpenAPI pages keep their own needs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(("/docs", "/redoc")):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                if not scope["path"].startswith("/static"):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While serving, check in as a live server holding these master keys (nodes.py)."""
    heartbeat = NodeHeartbeat(app.state.ctx)
    await asyncio.to_thread(heartbeat.start)
    try:
        yield
    finally:
        await asyncio.to_thread(heartbeat.stop)


def create_app(ctx: ServerContext) -> FastAPI:
    app = FastAPI(
        lifespan=_lifespan,
        title="keyfob",
        version=__version__,
        description="MFA server for hardware OTP tokens: validation, enrolment, "
        "token inventory and audit.",
    )
    app.state.ctx = ctx
    app.state.metrics = Metrics()
    app.state.login_limiter = LoginLimiter()
    app.include_router(router)
    app.include_router(auth_pages.router)
    app.include_router(self_service.router)
    app.include_router(admin_pages.router)
    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")

    @app.exception_handler(Redirect)
    async def redirect(_: Request, exc: Redirect) -> RedirectResponse:
        return RedirectResponse(exc.url, status_code=303)

    @app.exception_handler(CsrfError)
    async def csrf_refused(request: Request, _: CsrfError) -> Response:
        return Response(
            "This form has expired or did not come from this site: nothing was "
            "done. Go back, reload the page and try again.",
            status_code=403,
            media_type="text/plain",
        )

    @app.exception_handler(_ImportFailed)
    async def import_failed(_: Request, exc: _ImportFailed) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.hint, report=exc.report)

    def _page_error(request: Request, exc: KeyfobError, status: int) -> Response:
        from keyfob.server.web.common import render

        return render(
            request,
            "message.html",
            status,
            title="That did not work",
            message=exc.message,
            hint=exc.hint,
            back="/",
        )

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        if not request.url.path.startswith("/api/"):
            return _page_error(request, exc, exc.status)
        headers = (
            {"WWW-Authenticate": 'Bearer, Basic realm="keyfob"'} if exc.status == 401 else None
        )
        resp = _error(exc.status, exc.code, exc.message, exc.hint)
        if headers:
            resp.headers.update(headers)
        return resp

    @app.exception_handler(KeyfobError)
    async def keyfob_error(request: Request, exc: KeyfobError) -> Response:
        if not request.url.path.startswith("/api/"):
            return _page_error(request, exc, 400)
        return _error(400, exc.code, exc.message, exc.hint)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            problems.append(f"{where}: {err.get('msg')}")
        return _error(422, "invalid_request", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["ops"])
    def metrics() -> Response:
        return Response(generate_latest(app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(BodyLimit, limit=ctx.settings.max_request_bytes)
    app.add_middleware(SecurityHeaders)
    return app
