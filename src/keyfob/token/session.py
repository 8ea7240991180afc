"""Client sessions: what a burner does with a token, over any :class:`Connection`.

``SingleProfileSession`` for the NFC single-profile family, ``Molto2Session`` for the USB
multi-profile Molto2. Every non-success status word becomes a typed error with advice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from keyfob.otp import Algorithm
from keyfob.token import protocol as p
from keyfob.token.connection import Connection
from keyfob.token.crypto import MOLTO2_DEFAULT_CUSTOMER_KEY, SINGLE_PROFILE_KEY, molto2_key
from keyfob.token.errors import (
    AuthenticationFailed,
    BadData,
    NeedsButton,
    NotAuthenticated,
    TokenError,
)
from keyfob.token.models import Model, by_serial

_HMAC = {Algorithm.SHA1: p.HmacAlgorithm.SHA1, Algorithm.SHA256: p.HmacAlgorithm.SHA256}


@dataclass(frozen=True)
class TokenInfo:
    serial: str
    model: Model | None
    clock: int

    @property
    def restricted_sync(self) -> bool | None:
        return self.model.restricted_sync if self.model else None


def _check(sw: int, what: str, *, authenticated: bool) -> None:
    if sw == p.Sw.OK:
        return
    if sw == p.Sw.WAIT_FOR_BUTTON:
        raise NeedsButton(
            f"{what}: waiting for confirmation",
            hint="press the ▲ button on the token to confirm",
            sw=sw,
        )
    if sw & 0xFF00 == 0x6300:
        tries = sw & 0xFF
        raise AuthenticationFailed(
            f"{what}: wrong customer key, {tries} tries left",
            tries_left=tries,
            sw=sw,
            hint="check the Molto2 customer key",
        )
    if sw == p.Sw.AUTH_FAILED:
        if authenticated:
            raise NotAuthenticated(
                f"{what}: the token refused it ({p.describe_sw(sw)})",
                hint="the session expired; authenticate again",
                sw=sw,
            )
        raise AuthenticationFailed(
            f"{what}: the token refused the key",
            hint="it is not a factory-programmable token, or an administrator sealed it",
            sw=sw,
        )
    if sw == p.Sw.WRONG_DATA:
        raise BadData(f"{what}: the token rejected the data ({p.describe_sw(sw)})", sw=sw)
    raise TokenError(f"{what}: {p.describe_sw(sw)}", sw=sw)


class SingleProfileSession:
    """Token2 single-profile NFC tokens: info, authenticate, write config (clock), write seed."""

    def __init__(self, connection: Connection, key: bytes = SINGLE_PROFILE_KEY) -> None:
        self.connection = connection
        self.key = key
        self.authenticated = False

    def _send(self, apdu: p.Apdu, what: str) -> bytes:
        data, sw = self.connection.transmit(apdu.to_bytes())
        _check(sw, what, authenticated=self.authenticated)
        return data

    def get_info(self) -> TokenInfo:
        block = p.parse_info(self._send(p.get_info(), "get info"))
        return TokenInfo(block.serial, by_serial(block.serial), block.clock)

    def authenticate(self) -> None:
        self.authenticated = False
        challenge = self._send(p.get_challenge(), "get challenge")
        if len(challenge) != 8:
            raise TokenError(f"get challenge: expected 8 bytes, got {len(challenge)}")
        self._send(p.answer_challenge(challenge, self.key), "authenticate")
        self.authenticated = True

    def write_config(
        self,
        *,
        clock: int | None = None,
        algorithm: Algorithm = Algorithm.SHA1,
        period: int = 30,
        display: p.DisplayTimeout = p.DisplayTimeout.S30,
    ) -> int:
        """Set algorithm, step, display timeout and the clock (default: this machine's UTC)."""
        if algorithm not in _HMAC:
            raise BadData(f"{algorithm.value} is not supported by this token (SHA1 or SHA256)")
        if period not in p.STEP_BYTES:
            raise BadData(f"a {period} s period is not supported by this token (30 or 60)")
        clock = int(time.time()) if clock is None else clock
        self._send(
            p.write_single_config(clock, _HMAC[algorithm], period, display, self.key),
            "write config",
        )
        return clock

    def write_seed(self, seed: bytes) -> None:
        if not 1 <= len(seed) <= p.MAX_SEED:
            raise BadData(f"the seed is {len(seed)} bytes; the token holds 1 to {p.MAX_SEED}")
        self._send(p.write_seed(seed, self.key), "write seed")


@dataclass(frozen=True)
class ProfileInfo:
    index: int
    title: str
    occupied: bool
    algorithm: int
    digits: int
    period: int
    clock: int


class Molto2Session:
    """Token2 Molto2 (USB, 50 or 100 profiles)."""

    def __init__(
        self, connection: Connection, customer_key: bytes = MOLTO2_DEFAULT_CUSTOMER_KEY
    ) -> None:
        self.connection = connection
        self.key = molto2_key(customer_key)
        self.authenticated = False

    def _send(self, apdu: p.Apdu, what: str) -> bytes:
        data, sw = self.connection.transmit(apdu.to_bytes())
        _check(sw, what, authenticated=self.authenticated)
        return data

    def get_info(self) -> TokenInfo:
        from keyfob.token.models import by_name

        block = p.parse_info(self._send(p.get_info(molto2=True), "get info"))
        return TokenInfo(block.serial, by_name("Molto2"), block.clock)

    def read_profile(self, index: int) -> ProfileInfo:
        pub = p.parse_public_block(self._send(p.read_public_block(index), f"read profile {index}"))
        return ProfileInfo(
            index, pub.title, pub.seed_present, pub.algorithm, pub.digits, pub.step, pub.time_a
        )

    def profiles(self, count: int = 50) -> list[ProfileInfo]:
        found = []
        for index in range(count):
            try:
                found.append(self.read_profile(index))
            except TokenError as exc:
                if exc.sw == p.Sw.WRONG_P1P2:
                    break
                raise
        return found

    def authenticate(self) -> None:
        self.authenticated = False
        challenge = self._send(p.get_challenge(short=True), "get challenge")
        self._send(p.answer_challenge(challenge, self.key), "authenticate")
        self.authenticated = True

    def write_seed(self, index: int, seed: bytes) -> None:
        self._send(p.write_seed(seed, self.key, profile=index), f"write seed (profile {index})")

    def write_title(self, index: int, title: str) -> None:
        self._send(p.write_title(index, title, self.key), f"write title (profile {index})")

    def write_config(
        self,
        index: int,
        *,
        clock: int | None = None,
        algorithm: Algorithm = Algorithm.SHA1,
        digits: int = 6,
        period: int = 30,
        display: p.DisplayTimeout = p.DisplayTimeout.S60,
    ) -> int:
        clock = int(time.time()) if clock is None else clock
        if algorithm not in _HMAC:
            raise BadData(f"{algorithm.value} is not supported by the Molto2 (SHA1 or SHA256)")
        self._send(
            p.write_molto2_config(
                index, clock, _HMAC[algorithm], digits, period, display, self.key
            ),
            f"write config (profile {index})",
        )
        return clock

    def sync_time(self, index: int, clock: int | None = None) -> int:
        clock = int(time.time()) if clock is None else clock
        self._send(p.sync_molto2_time(index, clock, self.key), f"sync time (profile {index})")
        return clock

    def delete_seed(self, index: int) -> None:
        self._send(p.delete_seed(index), f"delete seed (profile {index})")

    def set_customer_key(self, new_key: bytes) -> None:
        """Answers 9060: raises :class:`NeedsButton`; the key changes after ▲."""
        self._send(p.set_customer_key(new_key, self.key), "set customer key")

    def factory_reset(self) -> None:
        self._send(p.factory_reset(), "factory reset")
