"""Helpers every command group shares: reading inputs, parsing times, printing data."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
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


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def warn(message: str) -> None:
    typer.echo(f"keyfob: warning: {message}", err=True)
