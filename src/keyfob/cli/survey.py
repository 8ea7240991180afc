"""``keyfob token survey``: record every new token that comes to the reader (registered on the
``keyfob token`` group)."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from keyfob.cli.common import print_json
from keyfob.token.connection import Connection
from keyfob.token.pcsc import PcscConnection, list_readers
from keyfob.toolset.survey import SurveyRow, csv_writer, next_tokens


def survey(
    reader: Annotated[
        str | None,
        typer.Option(
            "--reader", help="Reader name substring or index (default: first with a token)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the rows to this CSV as they come (kept on Ctrl-C)."),
    ] = None,
    count: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many tokens (default: Ctrl-C).")
    ] = None,
    wait: Annotated[
        float, typer.Option(min=1, help="Stop when no new token comes for this many seconds.")
    ] = 600.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the rows as JSON at the end.")
    ] = False,
) -> None:
    """Wait for each next token on the reader and record its serial, model, clock offset from
    this machine (seconds, + = ahead) and whether it holds a seed (yes/no for a Molto2;
    unknown for single-profile tokens, which have no command that tells)."""
    list_readers()  # a missing pcscd or pyscard ends it at once: no token could ever come

    def connect() -> Connection:
        return PcscConnection(reader)

    rows: list[SurveyRow] = []
    with contextlib.ExitStack() as stack:
        write = None
        if out is not None:
            write = csv_writer(stack.enter_context(out.open("w", newline="", encoding="utf-8")))
        typer.echo("put the first token on the reader (Ctrl-C ends the survey)", err=True)
        with contextlib.suppress(KeyboardInterrupt):
            for row in next_tokens(connect, wait=wait, say=lambda t: typer.echo(t, err=True)):
                rows.append(row)
                if write is not None:
                    write(row)
                typer.echo(
                    f"{len(rows):>4}  {row.serial}  {row.model}  "
                    f"clock {row.clock_offset_seconds:+d} s  seed {row.seed}",
                    err=True,
                )
                if count is not None and len(rows) >= count:
                    break
    typer.echo(f"surveyed {len(rows)} token(s)" + (f" into {out}" if out else ""), err=True)
    if as_json:
        print_json([dataclasses.asdict(r) for r in rows])
