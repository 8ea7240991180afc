"""``keyfob code``: compute a code like ``oathtool``, from a secret, a URI or a QR image."""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

import typer

from keyfob.cli.common import JsonOption, parse_time, print_json, read_argument
from keyfob.errors import KeyfobError
from keyfob.formats.scan import credentials_from, is_image_path
from keyfob.otp import Credential, OtpType, parse_secret, pick_credential, time_step


def _credential(text: str, account: str | None, allow_short: bool) -> Credential:
    if "://" in text or is_image_path(text):
        return pick_credential(credentials_from(text, allow_short=allow_short), account)
    return Credential(secret=parse_secret(text, allow_short=allow_short))


def code(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SECRET_OR_URI",
            help="Base32 or hex secret, otpauth:// URI, QR image file, or - to read it from stdin.",
        ),
    ],
    at: Annotated[
        str | None, typer.Option("--at", help="Time as Unix seconds or ISO 8601 (default: now).")
    ] = None,
    counter: Annotated[
        int | None,
        typer.Option("--counter", "-c", help="HOTP counter (makes the code event-based)."),
    ] = None,
    digits: Annotated[int | None, typer.Option("--digits", "-d", help="6 to 10.")] = None,
    algorithm: Annotated[
        str | None, typer.Option("--algorithm", "-a", help="SHA1, SHA256 or SHA512.")
    ] = None,
    period: Annotated[
        int | None, typer.Option("--period", "-p", help="TOTP time step in seconds.")
    ] = None,
    account: Annotated[
        str | None, typer.Option("--account", help="Pick an account of a multi-account export.")
    ] = None,
    allow_short: Annotated[
        bool, typer.Option("--allow-short", help="Accept secrets under 80 bits.")
    ] = False,
    as_json: bool = JsonOption,
) -> None:
    """Print the OTP code of a secret or URI (the code alone on stdout).

    Options override what a URI says. A secret is read as base32 unless it can only be hex
    (prefix it with hex: or base32: to choose).
    """
    cred = _credential(read_argument(source), account, allow_short).with_overrides(
        algorithm=algorithm, digits=digits, period=period
    )
    if counter is not None:
        if counter < 0:
            raise KeyfobError(f"counter {counter} is negative", hint="counters start at 0")
        cred = dataclasses.replace(cred, type=OtpType.HOTP, counter=counter)
    if cred.type is OtpType.HOTP:
        value = cred.code()
        if as_json:
            print_json(
                {
                    "code": value,
                    "type": "hotp",
                    "counter": cred.counter,
                    "digits": cred.digits,
                    "algorithm": cred.algorithm.value,
                }
            )
        else:
            typer.echo(value)
        return
    when = time.time() if at is None else parse_time(at)
    value = cred.code(at=when)
    if not as_json:
        typer.echo(value)
        return
    step = time_step(when, cred.period)
    print_json(
        {
            "code": value,
            "type": "totp",
            "time": when,
            "step": step,
            "valid_for": int((step + 1) * cred.period - when),
            "digits": cred.digits,
            "algorithm": cred.algorithm.value,
            "period": cred.period,
        }
    )
