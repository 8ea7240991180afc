"""``keyfob serve``: start the MFA server (first start creates the admin and prints its
one-time password)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import uvicorn

from keyfob.server import accounts
from keyfob.server.api.app import create_app
from keyfob.server.api.asgi import uvicorn_proxy_options
from keyfob.server.api.one_write import HTTP_PROTOCOL
from keyfob.server.configfile import (
    CONFIG_ENV,
    Config,
    find_config,
    read_config,
    sqlite_path,
    user_config,
    write_config,
)
from keyfob.server.context import ServerContext, open_context
from keyfob.server.settings import Settings, SettingsError
from keyfob.server.tls import tls_options

if TYPE_CHECKING:
    from fastapi import FastAPI

    from keyfob.server.radius.server import RadiusThread

DbOption = typer.Option(
    "--db",
    envvar="KEYFOB_DB",
    help="Database URL: sqlite:///path.db or postgresql+psycopg://… (default: db in the config "
    "file, else ./keyfob.db).",
)
ConfigOption = typer.Option(
    "--config",
    envvar=CONFIG_ENV,
    help="keyfob.toml to read (default: ~/.config/keyfob/keyfob.toml, else "
    "/etc/keyfob/keyfob.toml); an option or KEYFOB_* variable wins over it.",
)
SaveConfigOption = typer.Option(
    "--save-config",
    help="When there is no config file yet, write one (--config, else "
    "~/.config/keyfob/keyfob.toml) naming this database by its absolute path, so that "
    "`keyfob admin` finds this server from any folder (make run does).",
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
    db: Annotated[str | None, DbOption] = None,
    config_file: Annotated[Path | None, ConfigOption] = None,
    save_config: Annotated[bool, SaveConfigOption] = False,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default: 8400).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    forwarded_allow_ips: Annotated[str, ProxiesOption] = "",
    radius_port: Annotated[int, RadiusPortOption] = 0,
    radius_host: Annotated[str, RadiusHostOption] = "",
    tls_cert: Annotated[Path | None, TlsCertOption] = None,
    tls_key: Annotated[Path | None, TlsKeyOption] = None,
) -> None:
    """Run the MFA server: REST API under /api/v1, OpenAPI docs at /docs."""
    config, target = _config(config_file, save_config)
    settings = config.settings(
        db=db, host=host, port=port, forwarded_allow_ips=forwarded_allow_ips or None
    )
    host, port = settings.host, settings.port
    proxy = uvicorn_proxy_options(settings)  # checked before anything starts
    proxy.update(tls_options(tls_cert, tls_key))  # so are the TLS files (server/tls.py)
    check_port_free(host, port)  # before a database is made or "serving on" is said
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
    issuer_given = "issuer" in config.values or "KEYFOB_ISSUER" in os.environ
    asked = None
    if first and not issuer_given and target is not None and _interactive():
        asked = _ask_issuer()
        ctx.settings = settings = settings.model_copy(update={"issuer": asked})
    if target is not None:
        _save_config(target, settings, issuer=asked)
        config = read_config(target)
    if config.path is not None:
        os.environ[CONFIG_ENV] = str(config.path)  # for --workers: each reads it again
    typer.echo(f"database {settings.db} ({config.describe()})")
    if not issuer_given and settings.issuer == "keyfob":
        where = config.path or user_config()
        typer.echo(
            "authenticator apps will show the issuer 'keyfob': set issuer = \"Your "
            f'Organisation" in {where} (or KEYFOB_ISSUER) and restart',
            err=True,
        )
    typer.echo(f"keyfob serving on {url}/  (sign in there; REST API {url}/api/v1, docs {url}/docs)")
    app = create_app(ctx) if workers == 1 else None  # several workers: each builds its own
    radius = _start_radius(ctx, radius_host or host, radius_port, app) if radius_port else None
    try:
        _run_http(settings, app, workers, log_level, proxy)
    finally:
        if radius is not None:
            radius.stop()


def _config(explicit: Path | None, save: bool) -> tuple[Config, Path | None]:
    """The config file to read, and where to write a new one (``--save-config`` and none
    exists yet), else None."""
    if save and explicit is not None and not explicit.exists():
        return Config(), explicit
    config = find_config(explicit)
    if save and config.path is None:
        return config, user_config()
    return config, None


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _ask_issuer() -> str:
    """At the first start: the name authenticator apps show above the codes."""
    name: str = typer.prompt(
        "Your organisation's name, shown in authenticator apps above the codes",
        default="keyfob",
    )
    return name.strip() or "keyfob"


def _save_config(path: Path, settings: Settings, *, issuer: str | None) -> None:
    """A new config file naming this server's database (and key file) by absolute paths."""
    db = settings.db
    file = sqlite_path(db)
    if file is not None:
        db = f"sqlite:///{file.absolute()}"
    values = {"db": db}
    if settings.key_file is not None:
        values["key_file"] = str(settings.key_file.absolute())
    if issuer is not None:
        values["issuer"] = issuer
    write_config(path, values)
    typer.echo(f"wrote {path}: `keyfob admin` now finds this database from any folder")


def check_port_free(host: str, port: int) -> None:
    """Refuse at once when something already listens on ``host:port`` (uvicorn would say so
    only after "serving on" was printed)."""
    if port == 0:
        return
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SettingsError(
            f"--host {host!r}: cannot resolve it ({exc.strerror})",
            hint="give an address such as 127.0.0.1, 0.0.0.0 or ::",
        ) from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            try:
                probe.bind(address)
            except OSError as exc:
                raise SettingsError(
                    f"cannot listen on {host} port {port}: {exc.strerror}",
                    hint="another keyfob serve (or another program) uses it: stop it, or give "
                    "--port N",
                ) from None


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
            http=HTTP_PROTOCOL,
            ws="none",  # no WebSocket routes: no upgrade hands the one-write transport on
            **proxy,
        )
        return
    uvicorn.run(
        app, host=host, port=port, log_level=log_level, http=HTTP_PROTOCOL, ws="none", **proxy
    )
