"""``keyfob serve``: start the MFA server (first start creates the admin and prints its
one-time password)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import uvicorn

from keyfob.server import accounts
from keyfob.server.api.app import create_app
from keyfob.server.api.asgi import uvicorn_proxy_options
from keyfob.server.context import ServerContext, open_context
from keyfob.server.settings import DEFAULT_DB, Settings
from keyfob.server.tls import tls_options

if TYPE_CHECKING:
    from fastapi import FastAPI

    from keyfob.server.radius.server import RadiusThread

DbOption = typer.Option(
    "--db", envvar="KEYFOB_DB", help="Database URL: sqlite:///path.db or postgresql+psycopg://…"
)
ProxiesOption = typer.Option(
    "--forwarded-allow-ips",
    envvar="KEYFOB_FORWARDED_ALLOW_IPS",
    help="Reverse proxies (comma-separated addresses or networks) whose X-Forwarded-For and "
    "X-Forwarded-Proto are believed. Default: none, so the address a connection comes from is "
    "what the sign-in limit and the audit see.",
)

TlsCertOption = typer.Option(
    "--tls-cert",
    envvar="KEYFOB_TLS_CERT",
    help="Serve HTTPS with this PEM certificate chain (with --tls-key); cookies are then "
    "Secure and answers carry HSTS.",
)
TlsKeyOption = typer.Option(
    "--tls-key", envvar="KEYFOB_TLS_KEY", help="The PEM private key of --tls-cert."
)

RadiusPortOption = typer.Option(
    "--radius-port",
    envvar="KEYFOB_RADIUS_PORT",
    help="Also answer RADIUS (UDP) on this port, e.g. 1812; 0 (the default) turns it off. "
    "Clients: keyfob admin radius-client add.",
)
RadiusHostOption = typer.Option(
    "--radius-host",
    help="Addresses RADIUS listens on, comma-separated ('::' is IPv6 and IPv4); default: --host.",
)


def serve(
    db: Annotated[str, DbOption] = DEFAULT_DB,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8400,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    forwarded_allow_ips: Annotated[str, ProxiesOption] = "",
    radius_port: Annotated[int, RadiusPortOption] = 0,
    radius_host: Annotated[str, RadiusHostOption] = "",
    tls_cert: Annotated[Path | None, TlsCertOption] = None,
    tls_key: Annotated[Path | None, TlsKeyOption] = None,
) -> None:
    """Run the MFA server: REST API under /api/v1, OpenAPI docs at /docs."""
    settings = Settings(db=db, host=host, port=port, forwarded_allow_ips=forwarded_allow_ips)
    proxy = uvicorn_proxy_options(settings)  # checked before anything starts
    proxy.update(tls_options(tls_cert, tls_key))  # so are the TLS files (server/tls.py)
    ctx = open_context(settings)
    url = f"{'https' if tls_cert else 'http'}://{host}:{port}"
    if ctx.key_created:
        typer.echo(
            f"created master key file {settings.resolved_key_file()} (mode 0600): "
            "back it up; without it the stored secrets cannot be read",
            err=True,
        )
    first = accounts.ensure_first_admin(ctx)
    if first:
        typer.echo(f"first start: admin user {first[0]!r}, one-time password: {first[1]}")
    typer.echo(f"keyfob serving on {url}/  (sign in there; REST API {url}/api/v1, docs {url}/docs)")
    app = create_app(ctx) if workers == 1 else None  # several workers: each builds its own
    radius = _start_radius(ctx, radius_host or host, radius_port, app) if radius_port else None
    try:
        _run_http(settings, app, workers, log_level, proxy)
    finally:
        if radius is not None:
            radius.stop()


def _start_radius(ctx: ServerContext, hosts: str, port: int, app: FastAPI | None) -> RadiusThread:
    """RADIUS in a thread of this process, beside the HTTP server. With one worker its
    counters go into the app's /metrics; with several, this process serves no /metrics."""
    from keyfob.server.radius.server import RadiusServer, RadiusThread

    registry = app.state.metrics.registry if app is not None else None
    listen = [h.strip() for h in hosts.split(",") if h.strip()]
    thread = RadiusThread(RadiusServer(ctx, registry), listen, port)
    thread.start()
    typer.echo(f"keyfob RADIUS on {hosts} port {port}/udp")
    return thread


def _run_http(
    settings: Settings, app: FastAPI | None, workers: int, log_level: str, proxy: dict[str, Any]
) -> None:
    host, port, db = settings.host, settings.port, settings.db
    if app is None:
        os.environ["KEYFOB_DB"] = db
        os.environ.setdefault("KEYFOB_KEY_FILE", str(settings.resolved_key_file()))
        os.environ["KEYFOB_FORWARDED_ALLOW_IPS"] = settings.forwarded_allow_ips
        uvicorn.run(
            "keyfob.server.api.asgi:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            **proxy,
        )
        return
    uvicorn.run(app, host=host, port=port, log_level=log_level, **proxy)
