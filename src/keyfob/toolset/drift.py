"""How far off is a token's clock? From codes read off it, or from its clock over a reader.

From codes: every time step within ±1 day of now (Entra's activation window: a token further
off cannot be enrolled anywhere) is checked for the code. One code can match a wrong step by
chance — about one step in 10^digits, so 0.6 % for 6 digits over two days of 30 s steps — and
that chance is reported; a second code from the next press (the next time step) leaves a chance
of about 10^-10, so two codes make the answer unique.

From a reader: the token's clock from get-info against this machine's UTC clock. The token
counts whole seconds, so its true time lies in [clock, clock + 1): the midpoint is compared with
the middle of the exchange, which measures to the second.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keyfob.errors import KeyfobError
from keyfob.otp import Credential, OtpType, hotp, match_counter
from keyfob.token.connection import Connection
from keyfob.token.models import Model
from keyfob.token.session import SingleProfileSession

SEARCH_SECONDS = 86_400
"""±1 day: Entra's activation window, the widest skew any verifier accepts at enrolment."""


@dataclass(frozen=True)
class Drift:
    """A measured clock offset: positive = the token's clock is ahead."""

    offset_steps: float
    offset_seconds: int
    unique: bool
    period: int
    matches: int = 1
    chance: float = 0.0  # that a code matched some other step of the search by chance
    search_steps: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "offset_steps": self.offset_steps,
            "offset_seconds": self.offset_seconds,
            "unique": self.unique,
        }


def chance_of_collision(steps: int, digits: int, codes: int = 1) -> float:
    """The chance that ``codes`` consecutive codes match at least one of ``steps`` wrong steps
    (each step's codes are uniform over 10^digits values, independently)."""
    return 1.0 - (1.0 - 10.0 ** (-digits * codes)) ** steps


def drift_from_codes(
    cred: Credential, codes: list[str], now: float, search_seconds: int = SEARCH_SECONDS
) -> Drift:
    """The step within ±``search_seconds`` whose code is ``codes[0]`` and whose next steps show
    the following codes; the one closest to now when several do."""
    if cred.type is not OtpType.TOTP:
        raise KeyfobError("a HOTP token has no clock", hint="drift is measured on TOTP tokens")
    codes = [c.strip().replace(" ", "") for c in codes]
    if not codes:
        raise KeyfobError("no code given", hint="give the code the token shows with --code")
    if any(a == b for a, b in itertools.pairwise(codes)):
        raise KeyfobError(
            "two consecutive codes are the same (pressed twice in one time step)",
            hint="wait until the token shows a new code, then press again",
        )
    width = search_seconds // cred.period
    now_step = int(now // cred.period)
    hits = match_counter(
        cred.secret, codes[0], now_step - width, now_step + width, cred.digits, cred.algorithm
    )
    found = [
        s
        for s in hits
        if all(
            hotp(cred.secret, s + i, cred.digits, cred.algorithm) == code
            for i, code in enumerate(codes[1:], 1)
        )
    ]
    if not found:
        raise KeyfobError(
            f"no time step within ±{search_seconds // 3600} h gives "
            + ("this code" if len(codes) == 1 else "these consecutive codes"),
            hint="check the secret and the codes (the second from the next time step), or "
            "the token's clock is more than a day off",
        )
    step = min(found, key=lambda s: (abs(s - now_step), s))
    return Drift(
        offset_steps=step - now_step,
        offset_seconds=(step - now_step) * cred.period,
        unique=len(found) == 1,
        period=cred.period,
        matches=len(found),
        chance=chance_of_collision(2 * width, cred.digits, len(codes)),
        search_steps=width,
    )


@dataclass(frozen=True)
class ClockReading:
    """A token's identity and its clock against this machine's."""

    serial: str
    model: Model | None
    clock: int
    offset_seconds: int


def read_clock(conn: Connection, clock: Callable[[], float] = time.time) -> ClockReading:
    """Get-info once; the offset of the token's clock to the second (see the module doc)."""
    before = clock()
    info = SingleProfileSession(conn).get_info()
    after = clock()
    offset = info.clock + 0.5 - (before + after) / 2
    return ClockReading(info.serial, info.model, info.clock, round(offset))


def drift_from_reader(reading: ClockReading, period: int = 30) -> Drift:
    """A reader's measurement in the shape of :class:`Drift`: steps = seconds / period."""
    return Drift(
        offset_steps=round(reading.offset_seconds / period, 2),
        offset_seconds=reading.offset_seconds,
        unique=True,
        period=period,
    )
