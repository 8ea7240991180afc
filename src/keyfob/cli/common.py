"""Helpers every command group shares: reading inputs, parsing times, printing data."""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from keyfob.errors import KeyfobError

JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


def parse_time(text: str) -> float:
    """Unix seconds (``1700000000``, ``@1700000000``) or ISO 8601 (UTC unless offset given)."""
    raw = text.strip()
    num = raw.removeprefix("@")
    try:
        return float(num)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(raw.replace(" UTC", "+00:00"))
    except ValueError:
        raise KeyfobError(
            f"cannot read the time {text!r}",
            hint="give Unix seconds (1700000000) or ISO 8601 (2026-11-28T12:00:00Z)",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def read_argument(value: str) -> str:
    """``-`` means stdin, so a secret need not appear in the shell history or process list."""
    if value == "-":
        return sys.stdin.read().strip()
    return value


def first_line(path: Path, what: str) -> str:
    """The first line of a file that holds a secret (``what``: which one, for the error)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyfobError(
            f"cannot read the {what} file {path}: {exc.strerror}",
            hint=f"give a file holding the {what} on its first line",
        ) from None
    lines = text.splitlines()
    return lines[0] if lines else ""


def read_secret(what: str, path: Path | None, env: str, *, confirm: bool = False) -> str:
    """A secret from a file (its first line), else the environment variable ``env``, else a
    hidden prompt: never from a command-line argument, which other users can read in the process
    list."""
    if path is not None:
        return first_line(path, what)
    if os.environ.get(env):
        return os.environ[env]
    text: str = typer.prompt(what.capitalize(), hide_input=True, confirmation_prompt=confirm)
    return text


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_json_rows(head: dict[str, Any], key: str, rows: Iterable[dict[str, Any]]) -> None:
    """What ``print_json({**head, key: list(rows)})`` prints, written 1 000 rows at a time.
    With an indent, ``json.dumps`` holds its output as millions of small pieces before it joins
    them: 120 MiB for the report of a 100 000-row import, more than the import itself."""
    encoder = json.JSONEncoder(indent=2, ensure_ascii=False)
    opening = encoder.encode({**head, key: []})  # ends '"<key>": []\n}': the rows go in there
    typer.echo(opening.removesuffix("]\n}"), nl=False)
    written = False
    rows = iter(rows)
    while batch := list(itertools.islice(rows, 1000)):
        items = ("\n    " + encoder.encode(row).replace("\n", "\n    ") for row in batch)
        typer.echo(("," if written else "") + ",".join(items), nl=False)
        written = True
    typer.echo("\n  ]\n}" if written else "]\n}")


def warn(message: str) -> None:
    typer.echo(f"keyfob: warning: {message}", err=True)
