"""``keyfob radius`` (the RADIUS server on its own) and ``keyfob admin radius-client …``.

The client commands work on the database directly, like the rest of ``keyfob admin``; a
running server sees a change within seconds (it re-reads its clients). A secret keyfob
generates is printed once, here, and never again.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated, Any

import typer

from keyfob.cli.admin_common import ACTOR, DbOpt, JsonOpt, KeyFileOpt, admin_context
from keyfob.cli.common import print_json
from keyfob.server.context import open_context
from keyfob.server.radius import clients as radius_clients
from keyfob.server.radius.clients import ClientSettings
from keyfob.server.radius.store import ClientRecord
from keyfob.server.settings import DEFAULT_DB, Settings

client_app = typer.Typer(help="RADIUS clients (VPN gateways, Wi-Fi, NPS).", no_args_is_help=True)

ModeOpt = Annotated[
    str | None,
    typer.Option(
        "--mode",
        help="otp: User-Password is the code; password+otp: the keyfob password then the "
        "code; challenge: the password, then Access-Challenge asks for the code.",
    ),
]
OtpFirstOpt = Annotated[
    bool | None,
    typer.Option(
        "--otp-first/--otp-last", help="password+otp: the code comes before the password."
    ),
]
RequireMaOpt = Annotated[
    bool | None,
    typer.Option(
        "--require-message-authenticator/--no-require-message-authenticator",
        help="Drop Access-Requests without Message-Authenticator (default: required; relax "
        "only for old equipment, which stays open to Blast-RADIUS).",
    ),
]
SecretOpt = Annotated[
    str | None,
    typer.Option(help="Shared secret (16+ characters); default: generate one and print it once."),
]


def client_view(record: ClientRecord) -> dict[str, Any]:
    """A client as the CLI and the admin page show it: never the secret."""
    return {
        "name": record.name,
        "address": record.address,
        "mode": record.mode,
        "otp_first": record.otp_first,
        "require_message_authenticator": record.require_message_authenticator,
        "created_at": record.created_at.isoformat(),
    }


def _show(record: ClientRecord, secret: str | None, as_json: bool, verb: str) -> None:
    if as_json:
        print_json({**client_view(record), **({"secret": secret} if secret else {})})
        return
    typer.echo(f"{verb} RADIUS client {record.name!r} ({record.address}, mode {record.mode})")
    if secret:
        typer.echo("shared secret, shown once (enter it on the device now):")
        typer.echo(secret)


@client_app.command("add")
def client_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the device, e.g. fortigate-hq.")],
    address: Annotated[str, typer.Argument(metavar="ADDRESS_OR_CIDR", help="Where it sends from.")],
    secret: SecretOpt = None,
    mode: ModeOpt = None,
    otp_first: OtpFirstOpt = None,
    require_ma: RequireMaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a RADIUS client; without --secret a strong one is generated and shown once."""
    record, generated = radius_clients.add_client(
        admin_context(ctx),
        name,
        address,
        secret=secret,
        settings=ClientSettings(None, mode, otp_first, require_ma),
        actor=ACTOR,
    )
    _show(record, generated, as_json, "added")


@client_app.command("list")
def client_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List RADIUS clients (never their secrets)."""
    records = radius_clients.list_clients(admin_context(ctx))
    if as_json:
        print_json([client_view(r) for r in records])
        return
    typer.echo(f"{'NAME':<24}  {'ADDRESS':<24}  {'MODE':<12}  MESSAGE-AUTHENTICATOR")
    for r in records:
        mode = r.mode + (" (otp first)" if r.otp_first else "")
        ma = "required" if r.require_message_authenticator else "NOT required"
        typer.echo(f"{r.name:<24}  {r.address:<24}  {mode:<12}  {ma}")


@client_app.command("remove")
def client_remove(ctx: typer.Context, name: str) -> None:
    """Remove a RADIUS client: its requests are dropped from then on."""
    radius_clients.remove_client(admin_context(ctx), name, actor=ACTOR)
    typer.echo(f"removed RADIUS client {name!r}")


@client_app.command("set")
def client_set(
    ctx: typer.Context,
    name: str,
    address: Annotated[str | None, typer.Option(help="New address or network.")] = None,
    secret: Annotated[str | None, typer.Option(help="New shared secret.")] = None,
    new_secret: Annotated[
        bool, typer.Option("--new-secret", help="Generate a new secret (shown once).")
    ] = False,
    mode: ModeOpt = None,
    otp_first: OtpFirstOpt = None,
    require_ma: RequireMaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a RADIUS client's address, secret, mode or Message-Authenticator rule."""
    record, generated = radius_clients.set_client(
        admin_context(ctx),
        name,
        ClientSettings(address, mode, otp_first, require_ma),
        secret=secret,
        new_secret=new_secret,
        actor=ACTOR,
    )
    _show(record, generated, as_json, "changed")


def radius(
    db: DbOpt = DEFAULT_DB,
    host: Annotated[
        str,
        typer.Option(help="Addresses to listen on, comma-separated; '::' is IPv6 and IPv4."),
    ] = "::",
    port: Annotated[int, typer.Option(help="UDP port.")] = 1812,
    key_file: KeyFileOpt = None,
) -> None:
    """Run the RADIUS server alone (clients: keyfob admin radius-client add)."""
    from keyfob.server.nodes import NodeHeartbeat
    from keyfob.server.radius.server import RadiusServer

    ctx = open_context(Settings(db=db, key_file=key_file))
    server = RadiusServer(ctx)
    server.warn_relaxed()
    hosts = [h.strip() for h in host.split(",") if h.strip()]
    heartbeat = NodeHeartbeat(ctx)  # rotate-key waits for this process to hold a new key
    heartbeat.start()
    typer.echo(f"keyfob RADIUS on {', '.join(hosts)} port {port}/udp", err=True)
    try:
        asyncio.run(_until_signal(server, hosts, port))
    finally:
        heartbeat.stop()
        server.close()


async def _until_signal(server: Any, hosts: list[str], port: int) -> None:
    """Serve until SIGTERM or SIGINT: a clean stop signs this process off the node list."""
    from keyfob.server.radius.server import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(server, hosts, port, stop=stop)
