"""HOTP (RFC 4226) and TOTP (RFC 6238) code generation and window matching.

Kept deliberately tiny and allocation-light: the verification engine and the benchmarks call
these in tight loops. ``hmac.digest`` is the one-shot C path of the standard library, which is
several times faster than building an ``hmac.HMAC`` object per code.
"""

from __future__ import annotations

import hmac
import struct
from enum import StrEnum

from keyfob.errors import KeyfobError

MIN_DIGITS = 6
MAX_DIGITS = 10
_POW10 = tuple(10**n for n in range(MAX_DIGITS + 1))
_PACK_COUNTER = struct.Struct(">Q").pack


class Algorithm(StrEnum):
    """The HMAC hash of an OATH credential, named as in ``otpauth://`` URIs."""

    SHA1 = "SHA1"
    SHA256 = "SHA256"
    SHA512 = "SHA512"

    @property
    def digest_name(self) -> str:
        """The name ``hashlib``/``hmac.digest`` knows the hash by."""
        return self.value.lower()

    @property
    def default_secret_length(self) -> int:
        """Bytes of a generated secret: the hash's output size, as RFC 4226/6238 recommend."""
        return {"SHA1": 20, "SHA256": 32, "SHA512": 64}[self.value]

    @classmethod
    def parse(cls, text: str) -> Algorithm:
        """Accept ``sha1``, ``SHA-256``, ``HMAC-SHA512`` and the like; refuse anything else."""
        norm = text.strip().upper().replace("-", "").replace("_", "")
        norm = norm.removeprefix("HMAC")
        try:
            return cls(norm)
        except ValueError:
            raise KeyfobError(
                f"unsupported algorithm {text!r}",
                hint="use SHA1, SHA256 or SHA512",
            ) from None


def check_digits(digits: int) -> int:
    """Validate a code length; RFC 4226 allows 6-8, and 9-10 are used by some verifiers."""
    if not MIN_DIGITS <= digits <= MAX_DIGITS:
        raise KeyfobError(
            f"unsupported number of digits {digits}",
            hint=f"use {MIN_DIGITS} to {MAX_DIGITS} digits (6 or 8 almost everywhere)",
        )
    return digits


def check_period(period: int) -> int:
    """Validate a TOTP time step length in seconds."""
    if period <= 0:
        raise KeyfobError(
            f"unsupported period {period}",
            hint="the time step is a positive number of seconds, usually 30 or 60",
        )
    return period


def hotp_int(secret: bytes, counter: int, algorithm: Algorithm = Algorithm.SHA1) -> int:
    """The 31-bit dynamically truncated value of RFC 4226 §5.3 (before the modulo)."""
    mac = hmac.digest(secret, _PACK_COUNTER(counter), algorithm.digest_name)
    offset = mac[-1] & 0x0F
    return int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF


def hotp(
    secret: bytes, counter: int, digits: int = 6, algorithm: Algorithm = Algorithm.SHA1
) -> str:
    """The HOTP code for ``counter``, zero-padded to ``digits`` (leading zeros matter)."""
    if counter < 0 or counter >= 1 << 64:
        raise KeyfobError(f"counter {counter} is outside 0..2^64-1")
    value = hotp_int(secret, counter, algorithm) % _POW10[check_digits(digits)]
    return str(value).zfill(digits)


def time_step(t: float, period: int = 30, t0: int = 0) -> int:
    """RFC 6238's T: whole periods elapsed since ``t0`` (floor, also for fractional ``t``)."""
    step = int((t - t0) // check_period(period))
    if step < 0:
        raise KeyfobError(f"time {t} is before the start time T0 = {t0}")
    return step


def totp(
    secret: bytes,
    t: float,
    digits: int = 6,
    algorithm: Algorithm = Algorithm.SHA1,
    period: int = 30,
    t0: int = 0,
) -> str:
    """The TOTP code at Unix time ``t``: HOTP with the time step as counter."""
    return hotp(secret, time_step(t, period, t0), digits, algorithm)


def match_counter(
    secret: bytes,
    code: str,
    first: int,
    last: int,
    digits: int = 6,
    algorithm: Algorithm = Algorithm.SHA1,
) -> list[int]:
    """Every counter (or time step) in ``first..last`` whose code equals ``code``.

    All candidates are computed and compared in constant time, so the work done does not
    depend on where (or whether) the code matched. Several matches are possible (a 6-digit
    code collides once in a million steps); the caller's rules pick among them.
    """
    check_digits(digits)
    if len(code) != digits or not code.isdigit():
        return []
    want = code.encode("ascii")
    mod = _POW10[digits]
    name = algorithm.digest_name
    found: list[int] = []
    for counter in range(max(first, 0), last + 1):
        mac = hmac.digest(secret, _PACK_COUNTER(counter), name)
        offset = mac[-1] & 0x0F
        value = (int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF) % mod
        if hmac.compare_digest(str(value).zfill(digits).encode("ascii"), want):
            found.append(counter)
    return found
