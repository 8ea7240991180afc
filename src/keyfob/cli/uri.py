"""``keyfob uri inspect``: what is inside a QR code or URI, with the secret masked."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from keyfob.cli.common import JsonOption, print_json, read_argument, warn
from keyfob.formats.scan import credentials_from
from keyfob.otp import Credential, OtpType, to_base32

app = typer.Typer(help="Inspect otpauth:// and otpauth-migration:// URIs.", no_args_is_help=True)


def _masked(secret: bytes) -> str:
    key = to_base32(secret)
    return f"{key[:4]}{'•' * 8} ({len(secret)} bytes, {len(secret) * 8} bits)"


def describe(cred: Credential, *, show_secret: bool) -> dict[str, Any]:
    """The JSON shape of one account (``secret`` only when asked for)."""
    data: dict[str, Any] = {
        "type": cred.type.value,
        "issuer": cred.issuer,
        "account": cred.account,
        "algorithm": cred.algorithm.value,
        "digits": cred.digits,
        "period": cred.period if cred.type is OtpType.TOTP else None,
        "counter": cred.counter if cred.type is OtpType.HOTP else None,
    }
    if show_secret:
        data["secret"] = to_base32(cred.secret)
    return data


@app.command("inspect")
def inspect(
    source: Annotated[
        str,
        typer.Argument(
            metavar="URI_OR_IMAGE", help="otpauth:// or otpauth-migration:// URI, QR image, or -."
        ),
    ],
    show_secret: Annotated[
        bool,
        typer.Option("--show-secret", help="Print the secret in base32 (it is masked otherwise)."),
    ] = False,
    as_json: bool = JsonOption,
) -> None:
    """Show every account in a URI or QR image: type, issuer, account, parameters."""
    creds = credentials_from(read_argument(source))
    for cred in creds:
        for message in cred.warnings:
            warn(f"{cred.label}: {message}")
        for message in cred.notes:
            typer.echo(f"keyfob: note: {cred.label}: {message}", err=True)
    if as_json:
        print_json([describe(c, show_secret=show_secret) for c in creds])
        return
    for n, cred in enumerate(creds, 1):
        if len(creds) > 1:
            typer.echo(f"[{n}/{len(creds)}]")
        rows = [
            ("type", cred.type.value),
            ("issuer", cred.issuer or "-"),
            ("account", cred.account or "-"),
            ("algorithm", cred.algorithm.value),
            ("digits", str(cred.digits)),
        ]
        if cred.type is OtpType.TOTP:
            rows.append(("period", f"{cred.period} s"))
        else:
            rows.append(("counter", str(cred.counter)))
        rows.append(("secret", to_base32(cred.secret) if show_secret else _masked(cred.secret)))
        rows += [(f"extra {k}", v) for k, v in cred.extra]
        for key, value in rows:
            typer.echo(f"{key:<10} {value}")
