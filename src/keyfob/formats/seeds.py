"""The common shape of one token read from any seed file, the per-row result of a load, and the
limits a row is held to before it may reach the inventory.

The limits are checked by every reader, row by row, so that a value no column can hold (a
65-bit counter, a period past a 32-bit integer, a 300-character serial) is reported with its
line or key like any other bad row, instead of failing the import's transaction on one database
and being stored on the other.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from keyfob.errors import KeyfobError
from keyfob.otp import Algorithm, OtpType
from keyfob.otp.hotp import MAX_DIGITS, MIN_DIGITS

USERNAME_MAX = 255  # users.username
TEXT_MAX = 128  # tokens.serial, tokens.manufacturer, tokens.model
MAX_PERIOD = 86_400
"""One day: no OATH token steps slower (30 and 60 s are what exists); tokens.period is a 32-bit
integer, so without a bound a file could make the import's INSERT fail."""
MAX_COUNTER = 2**63 - 2**32
"""The next HOTP counter is stored as ``last_step = counter - 1`` in a signed 64-bit column and
verification looks ahead of it; 2**32 of headroom keeps every step it can reach storable. A token
pressed once a second for a century reaches 3.2e9, so no real counter comes near."""
MAX_DRIFT = 2_880
"""Time steps (24 h at 30 s) — the widest resync window a policy allows: a token that much off
cannot be matched anyway, and tokens.drift is a 32-bit integer."""


USERNAME_HINT = "use the user principal name, e.g. alice@example.com"


def check_username(name: str, what: str = "username") -> str:
    """The one rule for a user name (a UPN), wherever it comes from: the API, the web pages or a
    seed file's ``upn`` column. NFC-normalised and stripped; 1 to 255 characters; no space,
    control or format character (they make look-alike accounts and break CSV and log lines)."""
    text = unicodedata.normalize("NFC", name.strip())
    if not text:
        raise KeyfobError(f"{what} is empty", hint=USERNAME_HINT)
    if len(text) > USERNAME_MAX:
        raise KeyfobError(f"{what} is longer than {USERNAME_MAX} characters", hint=USERNAME_HINT)
    bad = next((ch for ch in text if unicodedata.category(ch)[0] in "CZ" and ch != " "), None)
    if bad is not None or " " in text:
        raise KeyfobError(f"{what} contains a space or control character", hint=USERNAME_HINT)
    return text


def _check_text(value: str | None, name: str) -> None:
    if value is None:
        return
    if len(value) > TEXT_MAX:
        raise KeyfobError(f"{name} is longer than {TEXT_MAX} characters")
    at = next((i for i, ch in enumerate(value) if unicodedata.category(ch) in ("Cc", "Cs")), None)
    if at is not None:
        raise KeyfobError(
            f"{name} contains a control character (U+{ord(value[at]):04X}) at position {at + 1}"
        )


def _check_range(value: int, low: int, high: int, name: str, unit: str = "") -> None:
    if not low <= value <= high:
        raise KeyfobError(f"{name} {value}{unit} is out of range ({low} to {high}{unit})")


@dataclass(frozen=True)
class SeedRecord:
    """One factory-seeded (or exported) token: what the inventory stores about it.

    ``where`` says where in the file it came from ("line 7", "key 3") for error reports.
    ``drift`` is in time steps, as PSKC's TimeDrift; ``counter`` is the next HOTP counter.
    """

    serial: str
    secret: bytes = field(repr=False)
    type: OtpType = OtpType.TOTP
    algorithm: Algorithm = Algorithm.SHA1
    digits: int = 6
    period: int = 30
    counter: int = 0
    drift: int = 0
    upn: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    label: str | None = None
    where: str = ""

    def checked(self) -> SeedRecord:
        """This record, if every value fits the inventory's columns and the OTP limits; else a
        KeyfobError naming the field (never the secret). Readers call it on every row."""
        _check_text(self.serial, "serial")
        _check_text(self.manufacturer, "manufacturer")
        _check_text(self.model, "model")
        _check_range(self.digits, MIN_DIGITS, MAX_DIGITS, "digits")
        _check_range(self.period, 1, MAX_PERIOD, "time interval", " s")
        _check_range(self.counter, 0, MAX_COUNTER, "counter")
        _check_range(self.drift, -MAX_DRIFT, MAX_DRIFT, "time drift", " steps")
        upn = None if self.upn is None else check_username(self.upn, "upn")
        return self if upn == self.upn else dataclasses.replace(self, upn=upn)


@dataclass(frozen=True)
class RowError:
    """One refused row: where, why, and what to do (never the secret)."""

    where: str
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class RowWarning(RowError):
    """A row that was read, with something the importer should hear about."""


SeedItem = SeedRecord | RowError
"""What a reader yields, in file order: a good record, a refused row, or a warning."""

Row = TypeVar("Row")


def numbered_rows(
    rows: Iterable[tuple[int, Row]], read: Callable[[Row, str], SeedRecord]
) -> Iterator[SeedItem]:
    """The line-numbered rows of a text format (CSV, URI list) as a reader yields them: each
    ``read(row, "line N")`` record, or a :class:`RowError` at ``line N`` with what ``read``
    refused, or the serial that an earlier line already gave."""
    seen: dict[str, int] = {}
    for number, row in rows:
        where = f"line {number}"
        try:
            record = read(row, where)
            if record.serial in seen:
                raise KeyfobError(
                    f"serial {record.serial!r} already appears on line {seen[record.serial]}"
                )
        except KeyfobError as exc:
            yield RowError(where, exc.message, exc.hint)
            continue
        seen[record.serial] = number
        yield record


@dataclass(frozen=True)
class SeedFile:
    """The outcome of reading a file: good records and per-row errors (all-or-nothing is the
    importer's job: a file with any error imports nothing)."""

    format: str
    records: tuple[SeedRecord, ...]
    errors: tuple[RowError, ...] = ()
    warnings: tuple[RowError, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    @classmethod
    def collect(cls, fmt: str, items: Iterable[SeedItem]) -> SeedFile:
        """A whole file from a reader's stream (for callers that want everything at once)."""
        records: list[SeedRecord] = []
        errors: list[RowError] = []
        warnings: list[RowError] = []
        for item in items:
            if isinstance(item, SeedRecord):
                records.append(item)
            else:
                (warnings if isinstance(item, RowWarning) else errors).append(item)
        return cls(fmt, tuple(records), tuple(errors), tuple(warnings))


@dataclass
class SeedStream:
    """A seed file being read: its format, known at once, and its rows, read as consumed, so
    that a large file never needs to be in memory whole (bytes, text and records together)."""

    format: str
    items: Iterator[SeedItem]

    def collect(self) -> SeedFile:
        return SeedFile.collect(self.format, self.items)
