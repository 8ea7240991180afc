"""``keyfob qr decode|encode``: QR codes in and out of image files and the terminal."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from keyfob.cli.common import JsonOption, print_json, warn
from keyfob.errors import KeyfobError
from keyfob.formats import qr
from keyfob.otp import PayloadKind, classify, parse_payload
from keyfob.otp.payload import MICROSOFT_ADVICE

app = typer.Typer(help="Make and read QR codes.", no_args_is_help=True)


@app.command("decode")
def decode(
    images: Annotated[
        list[Path], typer.Argument(metavar="IMAGE...", help="PNG or JPEG screenshots or photos.")
    ],
    as_json: bool = JsonOption,
) -> None:
    """Print each QR payload found in the images, one per line."""
    found: list[dict[str, str]] = []
    failed = 0
    for image in images:
        try:
            payloads = qr.decode_image(image)
        except KeyfobError as exc:
            failed += 1
            typer.echo(f"keyfob: error: {exc}", err=True)
            continue
        for payload in payloads:
            kind = classify(payload)
            if kind in (PayloadKind.MICROSOFT_PHONEFACTOR, PayloadKind.MICROSOFT_APP_LINK):
                warn(f"{image}: {MICROSOFT_ADVICE}")
            found.append({"file": str(image), "kind": kind.value, "payload": payload})
            if not as_json:
                typer.echo(payload)
    if as_json:
        print_json(found)
    if failed:
        raise typer.Exit(1)


@app.command("encode")
def encode(
    payload: Annotated[
        str, typer.Argument(metavar="URI", help="The text to encode, usually an otpauth:// URI.")
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write FILE.png or FILE.svg; without it, draw in the terminal."
        ),
    ] = None,
) -> None:
    """Make a QR code of a URI (checked first, so a broken URI is never printed)."""
    if classify(payload) in (PayloadKind.OTPAUTH, PayloadKind.MIGRATION):
        parse_payload(payload, allow_short=True)
    if output is None:
        drawn = qr.encode_terminal(payload, colour=not os.environ.get("NO_COLOR"))
        typer.echo(drawn, nl=False, color=True)  # kept when piped: `| less -R` shows it too
        return
    qr.write_file(payload, output)
    typer.echo(f"wrote {output}", err=True)
