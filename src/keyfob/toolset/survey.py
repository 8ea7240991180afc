"""``keyfob token survey``: a box of new tokens, one after the other on the reader — serial, model,
clock offset and whether each holds a seed — the check an admin makes before handing them out.

Whether a token holds a seed can be read only from a Molto2 (each profile's public block says
so); single-profile tokens have no command that tells, so their answer is ``unknown`` rather
than a guess.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from keyfob.token.connection import Connection
from keyfob.token.errors import NoReader, TransportLost
from keyfob.token.models import Family
from keyfob.token.probe import probe
from keyfob.toolset.drift import ClockReading, read_clock

FIELDS = ["serial", "model", "family", "clock_offset_seconds", "seed", "checked_at"]


@dataclass(frozen=True)
class SurveyRow:
    serial: str
    model: str
    family: str
    clock_offset_seconds: int
    seed: str  # "yes", "no" or "unknown" (single-profile tokens cannot say)
    checked_at: str

    def as_list(self) -> list[str]:
        return [
            self.serial,
            self.model,
            self.family,
            str(self.clock_offset_seconds),
            self.seed,
            self.checked_at,
        ]


def survey_token(conn: Connection, reading: ClockReading) -> SurveyRow:
    """One token, its clock read already: what family it is and whether it holds a seed."""
    found = probe(conn)
    if found.family is Family.MOLTO2:
        seed = "yes" if any(p.occupied for p in found.profiles) else "no"
    else:
        seed = "unknown"
    model = found.info.model.name if found.info.model else "unknown"
    return SurveyRow(
        serial=reading.serial,
        model=model,
        family=found.family.value,
        clock_offset_seconds=reading.offset_seconds,
        seed=seed,
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def next_tokens(
    connect: Callable[[], Connection],
    *,
    poll: float = 0.4,
    wait: float = 600.0,
    say: Callable[[str], None] = lambda _: None,
) -> Iterator[SurveyRow]:
    """Each token that comes to the reader and was not seen before in this survey; the end
    when none comes for ``wait`` seconds. Only "no token (yet)" is waited out: a missing PC/SC
    stack raises from ``connect`` at once."""
    seen: set[str] = set()
    told: str | None = None
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            conn = connect()
        except (NoReader, TransportLost):
            time.sleep(poll)
            continue
        try:
            reading = read_clock(conn)
            row = None if reading.serial in seen else survey_token(conn, reading)
        except TransportLost:
            time.sleep(poll)
            continue
        finally:
            conn.close()
        if row is None:
            if told != reading.serial:
                say(f"token {reading.serial} is done: put the next token on the reader")
                told = reading.serial
            time.sleep(poll)
            continue
        seen.add(row.serial)
        deadline = time.monotonic() + wait
        yield row


def csv_writer(fh: IO[str]) -> Callable[[SurveyRow], None]:
    """A writer that puts each row on disk as soon as it is measured (Ctrl-C keeps them)."""
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(FIELDS)
    fh.flush()

    def write(row: SurveyRow) -> None:
        writer.writerow(row.as_list())
        fh.flush()

    return write
