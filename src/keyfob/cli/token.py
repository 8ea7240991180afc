"""``keyfob token …``: talk to a programmable token on a PC/SC reader."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from keyfob.burn.burner import BurnOptions, burn
from keyfob.burn.screenlock import set_screen_lock
from keyfob.burn.source import credential_from
from keyfob.burn.synctime import sync_time
from keyfob.cli.burn import CliUi
from keyfob.cli.common import print_json
from keyfob.cli.survey import survey
from keyfob.otp import Algorithm
from keyfob.token import trace
from keyfob.token.crypto import MOLTO2_DEFAULT_CUSTOMER_KEY
from keyfob.token.models import Family
from keyfob.token.pcsc import PcscConnection, list_readers
from keyfob.token.probe import probe

app = typer.Typer(help="Programmable tokens on a PC/SC reader.", no_args_is_help=True)
app.command("survey")(survey)

VerboseOpt = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Log every APDU on stderr: header, status word, lengths; data only of commands "
        "that carry no seed or key.",
    ),
]


@app.callback()
def options(verbose: VerboseOpt = False) -> None:
    """Programmable tokens on a PC/SC reader."""
    if verbose:
        trace.enable()


ReaderOpt = Annotated[
    str | None,
    typer.Option("--reader", help="Reader name substring or index (default: first with a token)."),
]


@app.command("readers")
def readers(
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """List PC/SC readers and whether a token is present."""
    names = list_readers()
    present = set(list_readers(with_card=True))
    if as_json:
        print_json([{"reader": n, "token_present": n in present} for n in names])
        return
    for n in names:
        typer.echo(f"{n}{'  (token present)' if n in present else ''}")


@app.command("info")
def info(
    reader: ReaderOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """Serial, model, clock and its offset from this machine's clock, restricted sync, and for
    a Molto2 the occupied profiles."""
    with PcscConnection(reader) as conn:
        before = time.time()
        found = probe(conn)
        here = (before + time.time()) / 2
    tok = found.info
    data: dict[str, Any] = {
        "reader": conn.name,
        "family": found.family.value,
        "serial": tok.serial,
        "model": tok.model.name if tok.model else None,
        "clock": tok.clock,
        "clock_utc": datetime.fromtimestamp(tok.clock, UTC).isoformat(),
        # the token shows whole seconds: the middle of its second against the middle of the
        # exchange, so a clock set right now reads 0 s (not -1 s half of the time)
        "offset_seconds": round(tok.clock + 0.5 - here),
        "restricted_sync": tok.restricted_sync,
    }
    if found.profiles:
        data["profiles"] = len(found.profiles)
        data["occupied_profiles"] = [
            {"index": pr.index, "title": pr.title} for pr in found.profiles if pr.occupied
        ]
    if as_json:
        print_json(data)
        return
    typer.echo(f"reader           {data['reader']}")
    typer.echo(f"model            {data['model'] or 'unknown (serial prefix not in the table)'}")
    typer.echo(f"serial           {tok.serial}")
    typer.echo(
        f"clock            {data['clock_utc']} ({data['offset_seconds']:+d} s from this machine)"
    )
    if tok.restricted_sync is not None:
        typer.echo(
            "restricted sync  "
            + (
                "yes: setting the clock erases the seed"
                if tok.restricted_sync
                else "no: the seed survives a clock write"
            )
        )
    if found.profiles:
        occupied = (
            ", ".join(
                f"{o['index']}" + (f" ({o['title']})" if o["title"] else "")
                for o in data["occupied_profiles"]
            )
            or "none"
        )
        typer.echo(f"profiles         {len(found.profiles)}, occupied: {occupied}")


@app.command("sync-time")
def sync_time_cmd(
    reader: ReaderOpt = None,
    profile: Annotated[
        int | None, typer.Option(help="Molto2 profile (default: every occupied one).")
    ] = None,
    algorithm: Annotated[
        str,
        typer.Option(
            help="Single-profile tokens take the whole config with the clock: give the algorithm "
            "the token was burned with."
        ),
    ] = "SHA1",
    period: Annotated[int, typer.Option(help="…and its period (30 or 60).")] = 30,
    customer_key: Annotated[str | None, typer.Option(help="Molto2 customer key.")] = None,
    reburn: Annotated[
        str | None,
        typer.Option(
            metavar="URI",
            help="On a restricted-sync token, burn this credential again instead "
            "(sets the clock and rewrites the seed).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Set the token's clock to this machine's UTC time, where that keeps the seed."""
    ui = CliUi()
    with PcscConnection(reader, wait=5) as conn:
        if reburn:
            found = probe(conn, read_profiles=False)
            model = found.info.model
            if found.family is Family.SINGLE and model is not None and model.restricted_sync:
                result = burn(conn, credential_from(reburn), BurnOptions(), ui)
                ui.say(
                    f"re-burned {result.model} {result.serial}: clock corrected by "
                    f"{-result.clock_offset_before:+d} s, seed written again"
                )
                if as_json:
                    print_json(
                        {
                            "serial": result.serial,
                            "model": result.model,
                            "reburned": True,
                            "corrected": {"0": -result.clock_offset_before},
                        }
                    )
                return
        synced = sync_time(
            conn,
            ui,
            profile=profile,
            algorithm=Algorithm.parse(algorithm),
            period=period,
            customer_key=customer_key.encode() if customer_key else MOLTO2_DEFAULT_CUSTOMER_KEY,
        )
    if as_json:
        print_json(
            {
                "serial": synced.serial,
                "model": synced.model,
                "reburned": False,
                "corrected": {str(k): v for k, v in synced.corrected.items()},
            }
        )


CustomerKeyOpt = Annotated[
    str | None, typer.Option(help="Molto2 customer key (default: the factory key).")
]


@app.command("lock")
def lock(reader: ReaderOpt = None, customer_key: CustomerKeyOpt = None) -> None:
    """Lock the screen of a Molto2 with firmware 2.1 or later."""
    _screen_lock(reader, customer_key, locked=True)


@app.command("unlock")
def unlock(reader: ReaderOpt = None, customer_key: CustomerKeyOpt = None) -> None:
    """Unlock the screen of a Molto2 with firmware 2.1 or later."""
    _screen_lock(reader, customer_key, locked=False)


def _screen_lock(reader: str | None, customer_key: str | None, *, locked: bool) -> None:
    key = customer_key.encode() if customer_key else MOLTO2_DEFAULT_CUSTOMER_KEY
    with PcscConnection(reader, wait=5) as conn:
        result = set_screen_lock(conn, locked, customer_key=key)
    typer.echo(f"Molto2 {result.serial}: screen {'locked' if result.locked else 'unlocked'}")
