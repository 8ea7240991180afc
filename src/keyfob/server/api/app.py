"""The FastAPI application factory: one app per :class:`ServerContext`, no global state."""

from __future__ import annotations

import asyncio
import importlib.resources
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyfob import __version__
from keyfob.server.api import problems
from keyfob.server.api.auth import require_metrics
from keyfob.server.api.guard import InputGuard
from keyfob.server.api.middleware import HttpMiddleware
from keyfob.server.api.problems import error_json
from keyfob.server.api.routes import TAGS, _ImportFailed, router
from keyfob.server.context import ServerContext
from keyfob.server.errors import ServiceError
from keyfob.server.metrics import MetricSet
from keyfob.server.nodes import NodeHeartbeat
from keyfob.server.tls import HSTS
from keyfob.server.web import (
    admin_pages,
    auth_pages,
    directory_pages,
    radius_pages,
    self_service,
)
from keyfob.server.web.common import HERE as WEB_DIR
from keyfob.server.web.common import CsrfError, Redirect
from keyfob.server.web.ratelimit import LoginLimiter

log = logging.getLogger("keyfob.server")


class Metrics(MetricSet):
    """Prometheus metrics in the app's own registry (several apps can live in one process)."""

    def __init__(self) -> None:
        super().__init__()
        self.validations = self.counter(
            "keyfob_validations", "Validation requests by result", "result"
        )
        self.validate_seconds = self.latency(
            "keyfob_validate_seconds", "Time to answer a validation"
        )


class BodyLimit(HttpMiddleware):
    """Refuse request bodies over the limit before they are read into memory (413)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        super().__init__(app)
        self.limit = limit

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = error_json(413, "too_large", f"request body is larger than {self.limit} bytes")
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


class SecurityHeaders(HttpMiddleware):
    """Strict CSP (no inline scripts anywhere), no framing, no sniffing, no caching of pages
    that show secrets. The OpenAPI pages keep their own needs."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"].startswith(("/docs", "/redoc")):
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
                if scope.get("scheme") == "https":  # TLS here or at a trusted proxy
                    headers.append((b"strict-transport-security", HSTS))
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


# Swagger UI and ReDoc from a maintained PyPI bundle (fastapi-offline's static files), served by
# this app: /docs works without internet (FastAPI's default loads them from a CDN).
DOCS_ASSETS = Path(str(importlib.resources.files("fastapi_offline") / "static"))


def _offline_docs(app: FastAPI) -> None:
    app.mount("/docs/assets", StaticFiles(directory=str(DOCS_ASSETS)), name="docs-assets")
    # What both pages are given: the description they show, the title, the icon.
    page: dict[str, Any] = {
        "openapi_url": app.openapi_url or "/openapi.json",
        "title": f"{app.title} — API",
    }
    icon = "/docs/assets/favicon.png"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            **page,
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url=icon,
            oauth2_redirect_url=None,
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        js = "/docs/assets/redoc.standalone.js"
        return get_redoc_html(
            **page, redoc_js_url=js, redoc_favicon_url=icon, with_google_fonts=False
        )


def create_app(ctx: ServerContext) -> FastAPI:
    app = FastAPI(
        docs_url=None,  # _offline_docs serves them from the package
        redoc_url=None,
        lifespan=_lifespan,
        title="keyfob",
        version=__version__,
        description="MFA server for hardware OTP tokens: validation, enrolment, "
        "token inventory and audit.",
        openapi_tags=TAGS,
    )
    app.state.ctx = ctx
    app.state.metrics = Metrics()
    app.state.login_limiter = LoginLimiter(ctx)  # counts in the database: shared by workers
    _offline_docs(app)
    app.include_router(router)
    app.include_router(auth_pages.router)
    app.include_router(self_service.router)
    app.include_router(admin_pages.router)
    app.include_router(radius_pages.router)
    app.include_router(directory_pages.router)
    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")

    @app.exception_handler(Redirect)
    async def redirect(_: Request, exc: Redirect) -> RedirectResponse:
        return RedirectResponse(exc.url, status_code=303)

    @app.exception_handler(CsrfError)
    async def csrf_refused(request: Request, _: CsrfError) -> Response:
        return problems.respond(
            request,
            403,
            "csrf",
            "This form has expired or did not come from this site: nothing was done.",
            "Go back, reload the page and try again.",
        )

    @app.exception_handler(_ImportFailed)
    async def import_failed(_: Request, exc: _ImportFailed) -> JSONResponse:
        return error_json(exc.status, exc.code, exc.message, exc.hint, report=exc.report)

    problems.install(app)  # every other error: JSON with a hint, or the message page

    @app.get("/healthz", tags=["ops"], summary="Health check")
    def healthz() -> dict[str, str]:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    @app.get(
        "/metrics",
        tags=["ops"],
        summary="Prometheus metrics",
        description="Validation counts and timings as Prometheus text, for an API key with "
        "role metrics or admin.",
    )
    def metrics(request: Request) -> Response:
        # Refusals are JSON like every other machine path.
        try:
            require_metrics(request)
        except ServiceError as exc:
            bearer = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            return error_json(exc.status, exc.code, exc.message, exc.hint, bearer)
        return Response(generate_latest(app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(BodyLimit, limit=ctx.settings.max_request_bytes)
    app.add_middleware(InputGuard)  # before routing, auth or SQL: no NUL reaches a statement
    app.add_middleware(problems.CatchAll)  # outside BodyLimit, whose 413 travels as an exception
    app.add_middleware(SecurityHeaders)
    return app
