"""The one value object every part of keyfob passes around: an OATH credential."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from enum import StrEnum

from keyfob.otp.hotp import Algorithm, check_digits, check_period, hotp, totp


class OtpType(StrEnum):
    """Event-based (HOTP, RFC 4226) or time-based (TOTP, RFC 6238)."""

    HOTP = "hotp"
    TOTP = "totp"


@dataclass(frozen=True)
class Credential:
    """A secret plus everything needed to compute its codes and to label it.

    ``issuer`` and ``account`` are the two halves of an ``otpauth://`` label; ``extra`` keeps
    parameters keyfob does not interpret (``image``, ``color``…) so that a round trip loses
    nothing; ``warnings`` records tolerated deviations (an issuer mismatch, a missing counter),
    ``notes`` what is unusual but as its writer meant it.
    """

    secret: bytes = field(repr=False)
    type: OtpType = OtpType.TOTP
    issuer: str = ""
    account: str = ""
    algorithm: Algorithm = Algorithm.SHA1
    digits: int = 6
    period: int = 30
    counter: int = 0
    extra: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # worth knowing, nothing wrong (Microsoft's label prefix)

    def __post_init__(self) -> None:
        check_digits(self.digits)
        check_period(self.period)

    def with_overrides(
        self,
        *,
        algorithm: str | None = None,
        digits: int | None = None,
        period: int | None = None,
    ) -> Credential:
        """The same credential with what the user typed on the command line winning over what
        the URI said (checked like any other value)."""
        if algorithm is None and digits is None and period is None:
            return self
        return dataclasses.replace(
            self,
            algorithm=self.algorithm if algorithm is None else Algorithm.parse(algorithm),
            digits=self.digits if digits is None else check_digits(digits),
            period=self.period if period is None else check_period(period),
        )

    @property
    def label(self) -> str:
        """``Issuer:account`` as apps display it, or just the account."""
        if self.issuer and self.account:
            return f"{self.issuer}:{self.account}"
        return self.account or self.issuer

    def code(self, at: float | None = None, counter: int | None = None) -> str:
        """The code at Unix time ``at`` (TOTP, default now) or at ``counter`` (HOTP)."""
        if self.type is OtpType.HOTP:
            return hotp(
                self.secret,
                self.counter if counter is None else counter,
                self.digits,
                self.algorithm,
            )
        if counter is not None:
            return hotp(self.secret, counter, self.digits, self.algorithm)
        return totp(
            self.secret, time.time() if at is None else at, self.digits, self.algorithm, self.period
        )
