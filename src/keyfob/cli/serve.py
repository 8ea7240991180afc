"""``keyfob serve``: start the MFA server (first start creates the admin and prints its
one-time password)."""

from __future__ import annotations

import os
from typing import Annotated

import typer
import uvicorn

from keyfob.server import accounts
from keyfob.server.api.app import create_app
from keyfob.server.api.asgi import uvicorn_proxy_options
from keyfob.server.context import open_context
from keyfob.server.settings import DEFAULT_DB, Settings

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


def serve(
    db: Annotated[str, DbOption] = DEFAULT_DB,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8400,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    forwarded_allow_ips: Annotated[str, ProxiesOption] = "",
) -> None:
    """Run the MFA server: REST API under /api/v1, OpenAPI docs at /docs."""
    settings = Settings(db=db, host=host, port=port, forwarded_allow_ips=forwarded_allow_ips)
    proxy = uvicorn_proxy_options(settings)  # checked before anything starts
    ctx = open_context(settings)
    url = f"http://{host}:{port}"
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
    if workers > 1:
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
    uvicorn.run(create_app(ctx), host=host, port=port, log_level=log_level, **proxy)
