"""``keyfob convert``: seed files between PSKC, Entra CSV, OATH CSV, otpauth URI lists and Google
Authenticator export QR codes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keyfob.cli.common import print_json, warn
from keyfob.toolset.convert import ConvertJob, Format, RowsRefused, convert

FORMATS = "pskc, azure-csv, oath-csv, otpauth, migration"


def convert_cmd(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="IN... OUT",
            help="The input file (several PNG images for a multi-QR export), then the output. "
            "Export QR output splits into OUT-1.png, OUT-2.png … when it needs several codes.",
        ),
    ],
    source: Annotated[
        Format | None,
        typer.Option("--from", help=f"Input format ({FORMATS}); default: read from the content."),
    ] = None,
    target: Annotated[
        Format | None,
        typer.Option(
            "--to",
            help="Output format; default: from OUT's suffix (.xml/.pskc → pskc, .png → "
            "migration, .txt → otpauth; a .csv needs --to azure-csv or oath-csv).",
        ),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            envvar="KEYFOB_PSKC_PASSWORD",
            help="Password of an encrypted input PSKC (also read from KEYFOB_PSKC_PASSWORD).",
        ),
    ] = None,
    out_password: Annotated[
        str | None,
        typer.Option(
            envvar="KEYFOB_OUT_PASSWORD",
            help="Encrypt an output PSKC with this password (at least 8 characters). An "
            "encrypted input is re-encrypted with its own password when this is absent.",
        ),
    ] = None,
    skip_unsupported: Annotated[
        bool,
        typer.Option(
            "--skip-unsupported",
            help="Leave out (and list) rows the output format cannot hold, instead of refusing.",
        ),
    ] = False,
    plaintext: Annotated[
        bool,
        typer.Option(
            "--plaintext",
            help="Allow writing the seeds of an encrypted input into a plaintext format.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Convert a seed file; nothing is written unless every row converts (or is skipped).

    A row the output cannot hold (HOTP or SHA256 into an Entra CSV, a 60 s period into an
    export QR code…) is refused with its row and reason. The output is written atomically,
    readable by its owner only, and never less protected than the input.
    """
    if len(paths) < 2:
        raise typer.BadParameter("give an input file and an output file", param_hint="IN... OUT")
    job = ConvertJob(
        inputs=paths[:-1],
        output=paths[-1],
        source_format=source,
        target=target,
        password=password,
        out_password=out_password,
        skip_unsupported=skip_unsupported,
        plaintext=plaintext,
    )
    try:
        outcome = convert(job)
    except RowsRefused as exc:
        for row in exc.rows:
            typer.echo(f"keyfob: {row.where}: {row.message}", err=True)
        raise
    for row in outcome.skipped:
        warn(f"{row.where}: skipped: {row.message}")
    for row in outcome.warnings:
        warn(f"{row.where}: {row.message}")
    if as_json:
        print_json(
            {
                "written": [str(p) for p in outcome.written],
                "rows": outcome.rows,
                "skipped": [{"where": r.where, "reason": r.message} for r in outcome.skipped],
            }
        )
        return
    names = ", ".join(str(p) for p in outcome.written)
    typer.echo(f"wrote {outcome.rows} token(s) to {names}", err=True)
