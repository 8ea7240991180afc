"""Helpers every command group shares: reading inputs, parsing times, printing data."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from keyfob.errors import KeyfobError
from keyfob.formats import qr
from keyfob.otp import Credential, parse_payload

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


def is_image_path(text: str) -> bool:
    """True when the text names an existing file (then it is read as a QR image)."""
    return "://" not in text and len(text) < 4096 and Path(text).is_file()


def payloads_from(text: str) -> list[str]:
    """An existing image file yields its QR payloads; anything else is the payload itself."""
    if is_image_path(text):
        return qr.decode_image(Path(text))
    return [text]


def credentials_from(text: str, *, allow_short: bool = False) -> list[Credential]:
    """All credentials in a URI, a migration URI or a QR image."""
    creds: list[Credential] = []
    for payload in payloads_from(text):
        creds.extend(parse_payload(payload, allow_short=allow_short))
    return creds


def pick_account(creds: list[Credential], account: str | None) -> Credential:
    """One credential: the only one, or the one whose label contains ``account``."""
    if account:
        chosen = [c for c in creds if account.lower() in c.label.lower()]
        if len(chosen) != 1:
            labels = ", ".join(repr(c.label) for c in creds)
            raise KeyfobError(
                f"{len(chosen)} accounts match {account!r}",
                hint=f"the payload holds: {labels}",
            )
        return chosen[0]
    if len(creds) > 1:
        labels = ", ".join(repr(c.label) for c in creds)
        raise KeyfobError(
            f"the payload holds {len(creds)} accounts: {labels}",
            hint="choose one with --account NAME",
        )
    return creds[0]


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def warn(message: str) -> None:
    typer.echo(f"keyfob: warning: {message}", err=True)
