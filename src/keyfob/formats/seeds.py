"""The common shape of one token read from any seed file, and the per-row result of a load."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from keyfob.otp import Algorithm, OtpType


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

    def replace(self, **changes: object) -> SeedRecord:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class RowError:
    """One refused row: where, and why (never the secret)."""

    where: str
    message: str


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
