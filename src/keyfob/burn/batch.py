"""``keyfob burn batch``: burn, check and enrol a token for every row of a users file — 200 new
staff in one sitting — resumable, and never one serial for two users."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyfob.burn.enroll import EnrollClient
from keyfob.burn.errors import NoNewToken, UsersFileError
from keyfob.burn.flow import Enrol, TokenJob, burn_token
from keyfob.burn.journal import Journal
from keyfob.burn.ui import Ui
from keyfob.formats.csvseeds import write_entra_csv
from keyfob.formats.pskc import write_pskc
from keyfob.formats.seeds import SeedRecord
from keyfob.otp import Algorithm, Credential, generate_secret
from keyfob.token.connection import Connection
from keyfob.token.errors import NoReader, TransportLost
from keyfob.token.session import SingleProfileSession


@dataclass(frozen=True)
class Row:
    user: str
    label: str
    line: int


def read_users(path: Path) -> list[Row]:
    """One user per line: ``upn[,label]``; a header row naming ``upn``/``user``/``username``
    is skipped; ``#`` comments and blank lines are ignored."""
    rows: list[Row] = []
    seen: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for number, cols in enumerate(csv.reader(fh), 1):
            cols = [c.strip() for c in cols]
            if not cols or not cols[0] or cols[0].startswith("#"):
                continue
            if number == 1 and cols[0].lower() in ("upn", "user", "username", "user name"):
                continue
            user = cols[0]
            if user.casefold() in seen:
                raise UsersFileError(
                    f"{user} already appears on line {seen[user.casefold()]}",
                    file=path.name,
                    line=number,
                )
            seen[user.casefold()] = number
            rows.append(
                Row(user, cols[1] if len(cols) > 1 and cols[1] else "Hardware token", number)
            )
    if not rows:
        raise UsersFileError("it names no users", file=path.name)
    return rows


@dataclass
class BatchOptions:
    algorithm: Algorithm = Algorithm.SHA1
    period: int = 30
    check: bool = True
    force: bool = False
    poll: float = 0.4
    wait_timeout: float = 600.0


def _next_token(
    connect: Callable[[], Connection],
    journal: Journal,
    last: str | None,
    opts: BatchOptions,
    ui: Ui,
) -> tuple[Connection, str]:
    """Wait for a token whose serial is new (not the one just burned, not one in the journal).

    Only "no token (or reader) yet" is waited out; anything else ``connect`` raises — above all
    :class:`~keyfob.burn.errors.ReaderUnavailable` when pcscd or pyscard is missing — ends the
    wait at once, because no token could ever arrive."""
    deadline = time.monotonic() + opts.wait_timeout
    told: str | None = None
    while time.monotonic() < deadline:
        try:
            conn = connect()
        except (TransportLost, NoReader):
            time.sleep(opts.poll)
            continue
        try:
            serial = SingleProfileSession(conn).get_info().serial
        except TransportLost:
            conn.close()
            time.sleep(opts.poll)
            continue
        owner = journal.serial_owner(serial)
        if serial != last and (owner is None or opts.force):
            return conn, serial
        conn.close()
        if told != serial:
            why = f"already burned for {owner}" if owner else "just burned"
            ui.say(f"token {serial} is {why}: put the next token on the reader")
            told = serial
        time.sleep(opts.poll)
    raise NoNewToken(waited=opts.wait_timeout)


def run_batch(
    rows: list[Row],
    journal: Journal,
    connect: Callable[[], Connection],
    ui: Ui,
    opts: BatchOptions,
    *,
    enroll: EnrollClient | None = None,
    on_row: Callable[[Row, dict[str, Any]], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[dict[str, Any]]:
    """Burn every row the journal has not done yet; returns the journal entries of this run."""
    done = journal.done()
    pending = [r for r in rows if r.user not in done]
    ui.say(f"{len(rows)} users: {len(rows) - len(pending)} already done, {len(pending)} to go")
    results: list[dict[str, Any]] = []
    last: str | None = None
    for row in pending:
        ui.say(f"{row.user}: waiting for a token…")
        conn, serial = _next_token(connect, journal, last, opts, ui)
        try:
            entry = _one(row, conn, serial, journal, ui, opts, enroll, clock)
        finally:
            conn.close()
        last = serial
        results.append(entry)
        if on_row:
            on_row(row, entry)
    return results


def _one(
    row: Row,
    conn: Connection,
    serial: str,
    journal: Journal,
    ui: Ui,
    opts: BatchOptions,
    enroll: EnrollClient | None,
    clock: Callable[[], float],
) -> dict[str, Any]:
    """The shared per-token flow (``flow.burn_token``) on the token found, then the journal."""
    source: Credential | Enrol
    if enroll is not None:
        source = Enrol(enroll, row.user, row.label, opts.algorithm, opts.period)
    else:
        source = Credential(
            secret=generate_secret(opts.algorithm),
            issuer="keyfob",
            account=row.user,
            algorithm=opts.algorithm,
            period=opts.period,
        )
    job = TokenJob(source, check=opts.check, expect_serial=serial)
    outcome = burn_token(job, lambda: contextlib.nullcontext(conn), ui, clock)
    entry = {
        "user": row.user,
        "serial": serial,
        "model": outcome.burned.model,
        "status": "done",
        "period": outcome.credential.period,
        "algorithm": outcome.credential.algorithm.value,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "clock_offset_before": outcome.burned.clock_offset_before,
        "enrolled": enroll is not None,
    }
    journal.record(entry, outcome.credential.secret)
    ui.say(f"{row.user}: token {serial} burned" + (" and enrolled" if enroll else ""))
    return entry


def write_outputs(rows: list[Row], journal: Journal, out: Path, password: str) -> tuple[Path, Path]:
    """Entra CSV (for upload to Azure) and an encrypted PSKC of every burned token."""
    done = journal.done()
    records = []
    for row in rows:
        entry = done.get(row.user)
        if entry is None:
            continue
        records.append(
            SeedRecord(
                serial=entry["serial"],
                secret=journal.secret(entry),
                algorithm=Algorithm(entry["algorithm"]),
                period=entry["period"],
                upn=row.user,
                manufacturer="Token2",
                model=entry["model"],
            )
        )
    out.mkdir(parents=True, exist_ok=True)
    entra, pskc = out / "entra.csv", out / "tokens.pskcxml"
    sha1 = [r for r in records if r.algorithm is Algorithm.SHA1]
    for path, data in (
        (entra, write_entra_csv(sha1).encode()),
        (pskc, write_pskc(records, password)),
    ):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    return entra, pskc


def summary(rows: list[Row], journal: Journal) -> list[dict[str, Any]]:
    done = journal.done()
    return [
        dataclasses.asdict(r)
        | {
            "serial": done.get(r.user, {}).get("serial"),
            "status": "done" if r.user in done else "pending",
        }
        for r in rows
    ]
