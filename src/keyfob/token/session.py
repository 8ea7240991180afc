"""Client sessions: what a burner does with a token, over any :class:`Connection`.

``SingleProfileSession`` for the NFC single-profile family, ``Molto2Session`` for the USB
multi-profile Molto2; both are a :class:`TokenSession`, which owns the one way a command is sent
(logged, then checked) and the one table that turns a status word into a typed error with
advice (:data:`SW_RULES`, after yubikit's ``SmartCardProtocol.send_apdu``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from keyfob.otp import Algorithm
from keyfob.token import protocol as p
from keyfob.token import trace
from keyfob.token.connection import Connection
from keyfob.token.crypto import MOLTO2_DEFAULT_CUSTOMER_KEY, SINGLE_PROFILE_KEY, molto2_key
from keyfob.token.errors import (
    AuthenticationFailed,
    BadData,
    CommandRejected,
    NeedsButton,
    NoSuchProfile,
    NotAuthenticated,
    NotFound,
    NotSupported,
    TokenError,
    TransportLost,
)
from keyfob.token.models import Model, by_name, by_serial

_FRAMING_HINT = (
    "the token does not take the command as keyfob framed it — is it the family keyfob "
    "thinks (keyfob token info)? `keyfob token -v …` logs every APDU"
)


@dataclass(frozen=True)
class SwRule:
    """What a status word means to the caller: the error raised, its message after
    ``"<what>: "`` (``{sw}`` is the described status, ``{tries}`` the tries left), the hint;
    ``by_ins``: what the same word means to one command, where it says more than usual."""

    error: type[TokenError]
    message: str
    hint: str | None = None
    by_ins: Mapping[int, SwRule] = field(default_factory=dict)

    def for_ins(self, ins: int | None) -> SwRule:
        return self.by_ins.get(ins, self) if ins is not None else self

    def make(self, what: str, sw: int | None = None) -> TokenError:
        """The error for ``what``; ``sw`` is None when the client refuses before asking."""
        message = self.message
        if sw is not None:
            message = message.format(sw=p.describe_sw(sw), tries=p.tries_left(sw))
        return self.error(f"{what}: {message}", hint=self.hint, sw=sw)


NO_SCREEN_LOCK = SwRule(
    NotSupported,
    "this token's firmware has no screen lock (Molto2 v2.1 or later needed)",
    "nothing was changed; keyfob token info shows which token is on the reader",
)
"""6D00 to the screen lock (§5.5) means older firmware, not a framing fault; the same refusal,
before anything is sent, answers a lock asked of a token of another family."""

SW_RULES: dict[p.Sw, SwRule] = {
    p.Sw.WAIT_FOR_BUTTON: SwRule(
        NeedsButton, "waiting for confirmation", "press the ▲ button on the token to confirm"
    ),
    p.Sw.WRONG_KEY: SwRule(
        AuthenticationFailed,
        "wrong customer key, {tries} tries left",
        "check the Molto2 customer key",
    ),
    p.Sw.AUTH_FAILED: SwRule(
        AuthenticationFailed,
        "the token refused the key",
        "it is not a factory-programmable token, or an administrator sealed it",
    ),
    p.Sw.WRONG_DATA: SwRule(BadData, "the token rejected the data ({sw})"),
    p.Sw.NOT_FOUND: SwRule(NotFound, "{sw}"),
    p.Sw.WRONG_P1P2: SwRule(NoSuchProfile, "{sw}", "keyfob token info lists the profiles"),
    p.Sw.WRONG_LENGTH: SwRule(CommandRejected, "{sw}", _FRAMING_HINT),
    p.Sw.CASE4_NOT_ALLOWED: SwRule(CommandRejected, "{sw}", _FRAMING_HINT),
    p.Sw.INS_NOT_SUPPORTED: SwRule(
        CommandRejected, "{sw}", _FRAMING_HINT, by_ins={p.Ins.SCREEN_LOCK: NO_SCREEN_LOCK}
    ),
    p.Sw.CLA_NOT_SUPPORTED: SwRule(CommandRejected, "{sw}", _FRAMING_HINT),
}
"""Every status word but OK → one error class (``tests/tokens/test_status_words.py``)."""

SESSION_EXPIRED = SwRule(
    NotAuthenticated,
    "the token refused it ({sw})",
    "the session expired; authenticate again",
)
"""6983 to a session that had authenticated: a :class:`NotAuthenticated`, which is an
:class:`AuthenticationFailed` — the same status word, told apart by what the client believed."""


def error_for(
    sw: int, what: str, *, authenticated: bool = False, ins: int | None = None
) -> TokenError | None:
    """The exception a status word stands for, or None for success; ``ins``, the command's,
    picks a command's own meaning of the word where the table has one."""
    code = p.Sw.of(sw)
    if code is p.Sw.OK:
        return None
    if code is None:
        return TokenError(f"{what}: {p.describe_sw(sw)}", sw=sw)
    expired = code is p.Sw.AUTH_FAILED and authenticated
    rule = SESSION_EXPIRED if expired else SW_RULES[code].for_ins(ins)
    error = rule.make(what, sw)
    if code is p.Sw.WRONG_KEY and isinstance(error, AuthenticationFailed):
        error.tries_left = p.tries_left(sw)
    return error


@dataclass(frozen=True)
class TokenInfo:
    serial: str
    model: Model | None
    clock: int

    @property
    def restricted_sync(self) -> bool | None:
        return self.model.restricted_sync if self.model else None


class TokenSession:
    """What every family shares: send a command, authenticate, check the status word."""

    short_challenge: ClassVar[bool] = False  # which get-challenge framing the family uses

    def __init__(self, connection: Connection, key: bytes) -> None:
        self.connection = connection
        self.key = key
        self.authenticated = False

    def _send(self, apdu: p.Apdu, what: str) -> bytes:
        """The one place a command goes out: logged (what the builder allows), sent, its
        status word turned into an error."""
        trace.command(trace.client, apdu, what)
        try:
            data, sw = self.connection.transmit(apdu.to_bytes())
        except TransportLost:
            trace.lost(trace.client, what)
            raise
        trace.response(trace.client, sw, len(data), what)
        error = error_for(sw, what, authenticated=self.authenticated, ins=apdu.ins)
        if error is not None:
            raise error
        return data

    def authenticate(self) -> None:
        """Challenge, answer (docs/token-protocol.md §3.3); a failure leaves it unauthenticated."""
        self.authenticated = False
        challenge = self._send(p.get_challenge(short=self.short_challenge), "get challenge")
        if len(challenge) != p.CHALLENGE_LEN:
            raise TokenError(
                f"get challenge: expected {p.CHALLENGE_LEN} bytes, got {len(challenge)}",
                hint="is it a programmable token? keyfob token info tells",
            )
        self._send(p.answer_challenge(challenge, self.key), "authenticate")
        self.authenticated = True

    def _read_info(self, molto2: bool) -> p.InfoBlock:
        return p.parse_info(self._send(p.get_info(molto2=molto2), "get info"))


def _now(clock: int | None) -> int:
    return int(time.time()) if clock is None else clock


class SingleProfileSession(TokenSession):
    """Token2 single-profile NFC tokens: info, authenticate, write config (clock), write seed."""

    def __init__(self, connection: Connection, key: bytes = SINGLE_PROFILE_KEY) -> None:
        super().__init__(connection, key)

    def get_info(self) -> TokenInfo:
        block = self._read_info(molto2=False)
        return TokenInfo(block.serial, by_serial(block.serial), block.clock)

    def write_config(
        self,
        *,
        clock: int | None = None,
        algorithm: Algorithm = Algorithm.SHA1,
        period: int = 30,
        display: p.DisplayTimeout = p.DisplayTimeout.S30,
    ) -> int:
        """Set algorithm, step, display timeout and the clock (default: this machine's UTC)."""
        hmac_alg = p.HmacAlgorithm.of(algorithm)  # both refuse before anything is sent
        p.TimeStep.of_seconds(period)
        clock = _now(clock)
        self._send(
            p.write_single_config(clock, hmac_alg, period, display, self.key), "write config"
        )
        return clock

    def write_seed(self, seed: bytes) -> None:
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


class Molto2Session(TokenSession):
    """Token2 Molto2 (USB, 50 or 100 profiles)."""

    short_challenge = True

    def __init__(
        self, connection: Connection, customer_key: bytes = MOLTO2_DEFAULT_CUSTOMER_KEY
    ) -> None:
        super().__init__(connection, molto2_key(customer_key))

    def get_info(self) -> TokenInfo:
        block = self._read_info(molto2=True)
        return TokenInfo(block.serial, by_name("Molto2"), block.clock)

    def read_profile(self, index: int) -> ProfileInfo:
        pub = p.parse_public_block(self._send(p.read_public_block(index), f"read profile {index}"))
        return ProfileInfo(
            index, pub.title, pub.seed_present, pub.algorithm, pub.digits, pub.step, pub.time_a
        )

    def profiles(self, count: int = 50) -> list[ProfileInfo]:
        """Profiles 0.. until the token says there is no such profile (or ``count``)."""
        found = []
        for index in range(count):
            try:
                found.append(self.read_profile(index))
            except NoSuchProfile:
                break
        return found

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
        clock = _now(clock)
        apdu = p.write_molto2_config(
            index, clock, p.HmacAlgorithm.of(algorithm), digits, period, display, self.key
        )
        self._send(apdu, f"write config (profile {index})")
        return clock

    def sync_time(self, index: int, clock: int | None = None) -> int:
        clock = _now(clock)
        self._send(p.sync_molto2_time(index, clock, self.key), f"sync time (profile {index})")
        return clock

    def delete_seed(self, index: int) -> None:
        self._send(p.delete_seed(index), f"delete seed (profile {index})")

    def set_customer_key(self, new_key: bytes) -> None:
        """Answers 9060: raises :class:`NeedsButton`; the key changes after ▲."""
        self._send(p.set_customer_key(new_key, self.key), "set customer key")

    def factory_reset(self) -> None:
        self._send(p.factory_reset(), "factory reset")

    def lock_screen(self) -> None:
        """Firmware 2.1 and later, on an authenticated session; older firmware answers 6D00,
        raised as :class:`NotSupported` (:data:`NO_SCREEN_LOCK`)."""
        self._send(p.screen_lock(True), "lock screen")

    def unlock_screen(self) -> None:
        self._send(p.screen_lock(False), "unlock screen")
