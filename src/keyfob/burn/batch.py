"""``keyfob burn batch``: burn, check and enrol a token for every row of a users file — 200 new
staff in one sitting — resumable, and never one serial for two users."""

from __future__ import annotations

import csv
import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyfob.burn.burner import BurnFailed, BurnOptions, ask_and_check, burn
from keyfob.burn.enroll import EnrollClient
from keyfob.burn.journal import Journal
from keyfob.burn.ui import Ui
from keyfob.errors import KeyfobError
from keyfob.formats.csvseeds import write_entra_csv
from keyfob.formats.pskc import write_pskc
from keyfob.formats.seeds import SeedRecord
from keyfob.otp import Algorithm, Credential, generate_secret, parse_secret
from keyfob.token.connection import Connection
from keyfob.token.errors import TransportLost
from keyfob.token.session import SingleProfileSession


class BatchError(KeyfobError):
    code = "batch"


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
                raise BatchError(
                    f"{path.name} line {number}: {user} already appears on line "
                    f"{seen[user.casefold()]}"
                )
            seen[user.casefold()] = number
            rows.append(
                Row(user, cols[1] if len(cols) > 1 and cols[1] else "Hardware token", number)
            )
    if not rows:
        raise BatchError(f"{path.name} names no users")
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
    """Wait for a token whose serial is new (not the one just burned, not one in the journal)."""
    deadline = time.monotonic() + opts.wait_timeout
    told: str | None = None
    while time.monotonic() < deadline:
        try:
            conn = connect()
        except (TransportLost, KeyfobError):
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
    raise BatchError(
        "no new token came to the reader in time",
        hint="re-run the same command to continue where it stopped",
    )


def run_batch(
    rows: list[Row],
    journal: Journal,
    connect: Callable[[], Connection],
    ui: Ui,
    opts: BatchOptions,
    *,
    enroll: EnrollClient | None = None,
    on_row: Callable[[Row, dict[str, Any]], None] | None = None,
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
            entry = _one(row, conn, serial, journal, ui, opts, enroll)
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
) -> dict[str, Any]:
    token_id = None
    if enroll is not None:
        begun = enroll.begin(
            row.user, row.label, period=opts.period, algorithm=opts.algorithm.value
        )
        token_id = begun["id"]
        secret = parse_secret(begun["secret"], "base32")
    else:
        secret = generate_secret(opts.algorithm)
    cred = Credential(
        secret=secret,
        issuer="keyfob",
        account=row.user,
        algorithm=opts.algorithm,
        period=opts.period,
    )
    try:
        result = burn(conn, cred, BurnOptions(), ui)
        if result.serial != serial:
            raise BurnFailed("the token changed during the burn", hint="burn again")
        if opts.check:
            check, code = ask_and_check(cred, ui)
            if not check.ok:
                raise BurnFailed(
                    f"{row.user}: the code typed does not match the token",
                    hint="check the token and re-run; this row is not done",
                )
        else:
            code = cred.code(at=time.time())
        if enroll is not None and token_id is not None:
            enroll.verify(row.user, token_id, code, serial)
    except BaseException:
        if enroll is not None and token_id is not None:
            enroll.cancel(row.user, token_id)
        raise
    entry = {
        "user": row.user,
        "serial": serial,
        "model": result.model,
        "status": "done",
        "period": opts.period,
        "algorithm": opts.algorithm.value,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "clock_offset_before": result.clock_offset_before,
        "enrolled": enroll is not None,
    }
    journal.record(entry, secret)
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
