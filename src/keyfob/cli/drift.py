"""``keyfob drift``: how far a token's clock is off — from codes read off it, or over a reader."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from keyfob.cli.common import print_json, read_argument
from keyfob.errors import KeyfobError
from keyfob.formats.scan import credentials_from, is_image_path
from keyfob.otp import Credential, parse_secret, pick_credential
from keyfob.toolset.drift import SEARCH_SECONDS, Drift, drift_from_codes, drift_from_reader


def _from_server(serial: str, db: str | None) -> Credential:
    """The secret of an inventory token, opened with the server's master key (admin only)."""
    from keyfob.server.context import open_context
    from keyfob.server.settings import Settings
    from keyfob.server.store import repo

    settings = Settings(db=db) if db else Settings()
    ctx = open_context(settings)
    try:
        with ctx.engine.connect() as conn:
            token = repo.get_token_by_serial(conn, serial)
        if token is None:
            raise KeyfobError(f"no token with serial {serial!r} in the server's inventory")
        secret = ctx.ring.open(token.secret_enc, token.id)
    finally:
        ctx.engine.dispose()
    return Credential(
        secret=secret, algorithm=token.algorithm, digits=token.digits, period=token.period
    )


def _credential(
    source: str | None, account: str | None, serial: str | None, db: str | None
) -> Credential:
    if serial:
        return _from_server(serial, db)
    if not source:
        raise KeyfobError(
            "give the token's secret or URI, --serial of a token in the server, or --reader",
            hint="keyfob drift SECRET_OR_URI --code 123456 [--code 654321]",
        )
    text = read_argument(source)
    if "://" in text or is_image_path(text):
        return pick_credential(credentials_from(text), account)
    return Credential(secret=parse_secret(text))


def _print(drift: Drift, codes: int) -> None:
    ahead = (
        "ahead of" if drift.offset_seconds > 0 else "behind" if drift.offset_seconds < 0 else "at"
    )
    typer.echo(
        f"offset: {drift.offset_steps:+g} steps = {drift.offset_seconds:+d} s "
        f"(the token's clock is {ahead} this machine's)"
    )
    if drift.search_steps:
        which = "a code matches" if codes == 1 else f"{codes} consecutive codes match"
        typer.echo(
            f"searched ±{drift.search_steps} steps: {drift.matches} match(es); chance that "
            f"{which} another step by chance: {drift.chance:.2%}"
        )
        if not drift.unique:
            typer.echo("not unique: give the next code too (--code twice) to tell them apart")


def drift(
    source: Annotated[
        str | None,
        typer.Argument(metavar="[SECRET_OR_URI]", help="Secret, otpauth:// URI, QR image, or -."),
    ] = None,
    code: Annotated[
        list[str] | None,
        typer.Option(
            "--code",
            help="A code read off the token; give it twice (two consecutive presses, the "
            "second in the next time step) for a unique answer.",
        ),
    ] = None,
    serial: Annotated[
        str | None, typer.Option(help="A token in the server's inventory (reads its database).")
    ] = None,
    db: Annotated[
        str | None, typer.Option(envvar="KEYFOB_DB", help="With --serial: the database URL.")
    ] = None,
    account: Annotated[str | None, typer.Option(help="Account of a multi-account export.")] = None,
    reader: Annotated[
        bool, typer.Option("--reader", help="Read a programmable token's clock on a PC/SC reader.")
    ] = False,
    reader_name: Annotated[
        str | None, typer.Option(help="With --reader: reader name substring or index.")
    ] = None,
    period: Annotated[int, typer.Option(help="With --reader: the step, to count steps.")] = 30,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print {"offset_steps", "offset_seconds", "unique"}; from a reader '
            "offset_steps is the offset divided by the period and unique is true.",
        ),
    ] = False,
) -> None:
    """How far a token's clock is off this machine's UTC clock (+ = ahead).

    From codes: every time step within ±1 day (Entra's activation window) is searched; the
    chance that one code matches a wrong step is shown, and two consecutive codes make the
    answer unique. From --reader: the clock from get-info, to the second.
    """
    if reader:
        from keyfob.token.pcsc import PcscConnection
        from keyfob.toolset.drift import read_clock

        with PcscConnection(reader_name) as conn:
            reading = read_clock(conn)
        result = drift_from_reader(reading, period)
        codes = 0
    else:
        if not code:
            raise KeyfobError("give at least one --code read off the token", hint="or use --reader")
        cred = _credential(source, account, serial, db)
        result = drift_from_codes(cred, code, time.time(), SEARCH_SECONDS)
        codes = len(code)
    if as_json:
        print_json(result.as_json())
    else:
        _print(result, codes)
