"""The card side of Token2 programmable tokens: a faithful emulator (docs/token-protocol.md §6).

Single-profile tokens follow Token2's published firmware core (OT2) row by row; the Molto2
follows the vendor tool and the hardware notes (§6.2). State that survives power-off (seed,
config, serial, flags, clock) lives in a JSON state file; the challenge and the authenticated
flag are volatile. The real-time clock ticks from the value last written, with an optional
offset and a drift in parts per million, against an injectable host clock so that a month of
drift can be simulated in a test.

Every command is read with the client's own codecs (``protocol``: ``Apdu.parse``,
``unwrap_secure``, ``WireConfig.parse``, ``open_payload``), so the two sides cannot drift
apart; a parse error becomes the status word the reference firmware answers (6700 for framing,
6A80 for data).

Faults for tests of the clients: drop the link on the Nth APDU (the command is not received,
as with a token pulled out of the field), or delay every answer.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from keyfob.otp import Algorithm, hotp
from keyfob.token import protocol as p
from keyfob.token import trace
from keyfob.token.crypto import MOLTO2_DEFAULT_CUSTOMER_KEY, SINGLE_PROFILE_KEY, molto2_key
from keyfob.token.errors import BadData, MalformedApdu
from keyfob.token.models import Family, Model, by_name

MOLTO2_AUTH_TRIES = 10  # the real start value is undocumented (§6.2); 10 is our choice
SINGLE_PROFILE_DIGITS = 6  # no digits field on single-profile tokens (§4.3)


class LinkDropped(Exception):
    """The emulated token left the reader's field: the APDU was not received."""


def _sw(sw: int) -> bytes:
    return p.response(sw)


def _ok(data: bytes = b"") -> bytes:
    return p.response(p.Sw.OK, data)


# --- the clock ---------------------------------------------------------------------------


@dataclass
class Rtc:
    """Device time = value set + elapsed host time * (1 + drift_ppm / 10**6)."""

    value: float  # device seconds at the moment it was set
    set_at: float  # host seconds at that moment
    drift_ppm: float = 0.0

    def now(self, host_now: float) -> float:
        return self.value + (host_now - self.set_at) * (1 + self.drift_ppm / 1e6)

    def set(self, device_time: float, host_now: float) -> None:
        self.value, self.set_at = device_time, host_now


@dataclass
class Faults:
    """Fault injection for client tests."""

    drop_on: int | None = None  # drop the link on this APDU number (1-based, counted from now)
    drop_ins: int | None = None  # drop the link on EVERY command with this INS (until cleared)
    delay: float = 0.0  # seconds before every answer

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- common card plumbing ----------------------------------------------------------------


class Card:
    """What both families share: APDU counting, faults, power, the lock, the state file, and
    the first steps of the dispatcher (framing, class, the MAC of a secure command)."""

    family: Family
    key: bytes

    def __init__(
        self,
        model: Model,
        serial: str,
        *,
        host_clock: Callable[[], float] = time.time,
        clock_offset: float = 0.0,
        drift_ppm: float = 0.0,
        state_file: Path | None = None,
    ) -> None:
        self.model = model
        self.serial = serial
        self.host_clock = host_clock
        self.rtc = Rtc(host_clock() + clock_offset, host_clock(), drift_ppm)
        self.state_file = state_file
        self.faults = Faults()
        self.apdu_count = 0  # since power-up of this process: tests assert "saw none"
        self.seen_ins: list[int] = []  # INS bytes seen, for tests (never payloads)
        self.lock = threading.RLock()
        self.challenge: bytes | None = None
        self.authenticated = False

    # -- transport-facing --
    def transmit(self, apdu: bytes) -> bytes:
        ins = p.peek_ins(apdu)
        with self.lock:
            self.apdu_count += 1
            self._maybe_drop(ins)
            delay = self.faults.delay
        if delay:
            time.sleep(delay)
        with self.lock:
            if ins is not None:
                self.seen_ins.append(ins)
            response = self.process(apdu)
            data, sw = p.split_response(response)
            trace.response(trace.card, sw, len(data), "card")
            self.save()
            return response

    def _maybe_drop(self, ins: int | None) -> None:
        if self.faults.drop_on is not None:
            self.faults.drop_on -= 1
            if self.faults.drop_on <= 0:
                self.faults.drop_on = None
                self.power_off()
                raise LinkDropped(f"link dropped on APDU {self.apdu_count}")
        if self.faults.drop_ins is not None and ins == self.faults.drop_ins:
            self.power_off()
            raise LinkDropped(f"link dropped on INS {ins:02X}")

    def command_counts(self) -> dict[str, int]:
        """How many commands of each INS the token received (hex INS -> count)."""
        counts: dict[str, int] = {}
        for ins in self.seen_ins:
            key = f"{ins:02X}"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def power_off(self) -> None:
        """Leaving the field: volatile state is gone."""
        self.challenge = None
        self.authenticated = False

    def device_time(self) -> float:
        return self.rtc.now(self.host_clock())

    # -- the dispatcher --
    def process(self, raw: bytes) -> bytes:
        """One command in, one response out (§6): framing and class here, the rest in the
        family's :meth:`_plain` and :meth:`_secure`."""
        try:
            apdu = p.Apdu.parse(raw)
        except MalformedApdu:
            return _sw(p.Sw.WRONG_LENGTH)
        trace.command(trace.card, apdu, "card")
        if apdu.cla == p.Cla.PLAIN:
            return self._plain(apdu)
        if apdu.cla == p.Cla.SECURE:
            return self._secure_command(apdu)
        return _sw(p.Sw.CLA_NOT_SUPPORTED)

    def _secure_command(self, apdu: p.Apdu) -> bytes:
        """The MAC is checked before anything else, the authenticated state included (§6.1);
        a body the codecs refuse is 6A80."""
        try:
            body = p.unwrap_secure(apdu, self.key)
        except MalformedApdu:
            return _sw(p.Sw.WRONG_LENGTH)
        if body is None:
            return _sw(p.Sw.AUTH_FAILED)
        try:
            return self._secure(apdu, body)
        except BadData:
            return _sw(p.Sw.WRONG_DATA)

    def _new_challenge(self) -> bytes:
        self.challenge = secrets.token_bytes(p.CHALLENGE_LEN)
        self.authenticated = False
        return _ok(self.challenge)

    def _expected_answer(self, body: bytes) -> bytes | None:
        """The answer to the pending challenge, which this consumes; None when there is no
        challenge or the body is not an answer's length (both 6A80)."""
        if self.challenge is None or len(body) != p.ANSWER_LEN:
            return None
        expected = p.auth_answer(self.challenge, self.key)
        self.challenge = None  # consumed either way
        return expected

    def _info(self) -> bytes:
        return _ok(p.build_info(self.serial, int(self.device_time())))

    # -- to implement --
    def _plain(self, apdu: p.Apdu) -> bytes:
        raise NotImplementedError

    def _secure(self, apdu: p.Apdu, body: bytes) -> bytes:
        raise NotImplementedError

    def press(self, profile: int = 0) -> str:
        raise NotImplementedError

    def _own_status(self) -> dict[str, Any]:
        """The family's part of :meth:`status`."""
        raise NotImplementedError

    def _own_state(self) -> dict[str, Any]:
        """The family's part of :meth:`to_state`: what survives power-off."""
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        """What ``keyfob emulator status`` shows: never a seed or key."""
        t = self.device_time()
        return {
            "serial": self.serial,
            "model": self.model.name,
            "family": self.family.value,
            "restricted_sync": self.model.restricted_sync,
            "clock": int(t),
            "clock_offset": round(t - self.host_clock(), 3),
            "drift_ppm": self.rtc.drift_ppm,
            "apdus": self.apdu_count,
            "commands": self.command_counts(),
            "faults": self.faults.as_dict(),
            **self._own_status(),
        }

    def to_state(self) -> dict[str, Any]:
        """The state file: which token this is, its family's state, its clock."""
        return {
            "family": self.family.value,
            "model": self.model.name,
            "serial": self.serial,
            **self._own_state(),
            "rtc_value": self.rtc.value,
            "rtc_set_at": self.rtc.set_at,
            "drift_ppm": self.rtc.drift_ppm,
        }

    def save(self) -> None:
        if self.state_file is None:
            return
        data = json.dumps(self.to_state(), indent=2)
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the seed
        with os.fdopen(fd, "w") as fh:
            fh.write(data)
        os.replace(tmp, self.state_file)


def _code(seed: bytes, device_time: float, algorithm: Algorithm, step: int, digits: int) -> str:
    return hotp(seed, int(device_time // step), digits, algorithm)


# --- single-profile ------------------------------------------------------------------------


class SingleProfileToken(Card):
    """OTPC-P1/P2, miniOTP-2/3, C301/C302: one TOTP slot, the fixed public key (§6.1)."""

    family = Family.SINGLE

    def __init__(self, model: Model, serial: str, **kw: Any) -> None:
        super().__init__(model, serial, **kw)
        self.key = SINGLE_PROFILE_KEY
        self.seed: bytes | None = None
        self.algorithm = p.HmacAlgorithm.SHA1
        self.step = p.TimeStep.S30
        self.display_timeout = p.DisplayTimeout.S30
        self.key_locked = False
        self.restricted_sync = model.restricted_sync

    def _plain(self, apdu: p.Apdu) -> bytes:
        if apdu.ins == p.Ins.GET_INFO:  # any P1, P2 and body
            return self._info()
        if apdu.ins == p.Ins.GET_CHALLENGE:
            if apdu.p1 != p.P1_CHALLENGE:
                return _sw(p.Sw.WRONG_P1P2)
            return self._new_challenge()
        if apdu.ins == p.Ins.ANSWER_CHALLENGE:
            return self._answer(apdu.data)
        return _sw(p.Sw.INS_NOT_SUPPORTED)

    def _secure(self, apdu: p.Apdu, body: bytes) -> bytes:
        if apdu.ins == p.Ins.WRITE_SEED and apdu.p1 == p.P1_SEED:
            handler = self._write_seed
        elif apdu.ins == p.Ins.WRITE_CONFIG:
            handler = self._write_config
        else:
            return _sw(p.Sw.INS_NOT_SUPPORTED)
        if not self.authenticated:
            return _sw(p.Sw.AUTH_FAILED)
        return handler(body)

    def _answer(self, body: bytes) -> bytes:
        if self.key_locked:
            return _sw(p.Sw.AUTH_FAILED)
        expected = self._expected_answer(body)
        if expected is None:
            return _sw(p.Sw.WRONG_DATA)
        if body != expected:  # no retry counter since 2025 (§6.1)
            return _sw(p.Sw.AUTH_FAILED)
        self.authenticated = True
        return _ok()

    def _write_seed(self, body: bytes) -> bytes:
        self.seed = p.open_seed(body, self.key)
        return _ok()

    def _write_config(self, body: bytes) -> bytes:
        config = p.WireConfig.parse(body)
        if config.layout is not p.ConfigLayout.SINGLE:
            return _sw(p.Sw.WRONG_DATA)
        assert config.display is not None and config.algorithm is not None  # the layout
        assert config.step is not None
        self.display_timeout, self.algorithm, self.step = (
            config.display,
            config.algorithm,
            config.step,
        )
        self.rtc.set(config.clock, self.host_clock())
        if self.restricted_sync:
            self.seed = None
        return _ok()

    def press(self, profile: int = 0) -> str:
        with self.lock:
            if not self.seed:
                return "no seed"
            return _code(
                self.seed,
                self.device_time(),
                self.algorithm.algorithm,
                self.step.seconds,
                SINGLE_PROFILE_DIGITS,
            )

    def _own_status(self) -> dict[str, Any]:
        return dict(
            seed_present=self.seed is not None,
            algorithm=self.algorithm.algorithm.value,
            period=self.step.seconds,
            display_timeout=int(self.display_timeout),
            key_locked=self.key_locked,
        )

    def _own_state(self) -> dict[str, Any]:
        return {
            "seed": self.seed.hex() if self.seed else None,
            "algorithm": int(self.algorithm),
            "step": int(self.step),
            "display_timeout": int(self.display_timeout),
            "key_locked": self.key_locked,
            "restricted_sync": self.restricted_sync,
        }

    def load_state(self, data: dict[str, Any]) -> None:
        self.seed = bytes.fromhex(data["seed"]) if data.get("seed") else None
        self.algorithm = p.HmacAlgorithm(data["algorithm"])
        self.step = p.TimeStep(data["step"])
        self.display_timeout = p.DisplayTimeout(data["display_timeout"])
        self.key_locked, self.restricted_sync = data["key_locked"], data["restricted_sync"]


# --- Molto2 --------------------------------------------------------------------------------


@dataclass
class Profile:
    seed: bytes | None = None
    title: str = ""
    algorithm: p.HmacAlgorithm = p.HmacAlgorithm.SHA1
    digits: int = 6
    step: p.TimeStep = p.TimeStep.S30
    display_timeout: p.DisplayTimeout = p.DisplayTimeout.S60
    clock_offset: float = 0.0  # per-profile time sync: device RTC + this
    time_config: int = 0
    written: bool = False

    def to_state(self) -> dict[str, Any]:
        data = asdict(self)
        data["seed"] = self.seed.hex() if self.seed else None
        for name in ("algorithm", "step", "display_timeout"):
            data[name] = int(data[name])
        return data

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Profile:
        data = dict(data)
        data["seed"] = bytes.fromhex(data["seed"]) if data.get("seed") else None
        data["algorithm"] = p.HmacAlgorithm(data["algorithm"])
        data["step"] = p.TimeStep(data["step"])
        data["display_timeout"] = p.DisplayTimeout(data["display_timeout"])
        return cls(**data)


@dataclass
class _Pending:
    """A Molto2 command answered with 9060: it commits when the ▲ button is pressed."""

    kind: str  # set_key | factory_reset
    key: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class LockedScreen:
    """What a locked screen shows and refuses. Token2's notes give the lock and unlock commands
    and nothing more (docs/token-protocol.md §5.5, LOW); the smallest assumption is that the lock
    is a flag the token keeps and nothing else changes. This is the one place to change when a
    real token shows otherwise."""

    display: str | None = None  # what a press shows while locked; None: the code, as unlocked
    refused: frozenset[int] = frozenset()  # INS a locked token refuses …
    refusal: p.Sw = p.Sw.AUTH_FAILED  # … with this status word (a guess, like the rest)


LOCKED_SCREEN = LockedScreen()


class Molto2Token(Card):
    """The USB multi-profile Molto2 (§5, §6.2); the Molto2v2 model is firmware 2.1, with the
    screen lock (§5.5)."""

    family = Family.MOLTO2

    def __init__(self, model: Model, serial: str, **kw: Any) -> None:
        super().__init__(model, serial, **kw)
        self.key = molto2_key(MOLTO2_DEFAULT_CUSTOMER_KEY)
        self.tries_left = MOLTO2_AUTH_TRIES
        self.profiles = [Profile() for _ in range(model.profiles)]
        self.pending: _Pending | None = None
        self.screen_locked = False  # persistent, like the key (§5.5)
        self.locked_screen = LOCKED_SCREEN

    def process(self, raw: bytes) -> bytes:
        """What a locked screen refuses is refused before anything else (:class:`LockedScreen`)."""
        if self.screen_locked and p.peek_ins(raw) in self.locked_screen.refused:
            return _sw(self.locked_screen.refusal)
        return super().process(raw)

    def _profile(self, index: int) -> Profile | None:
        return self.profiles[index] if 0 <= index < len(self.profiles) else None

    def _plain(self, apdu: p.Apdu) -> bytes:
        if apdu.ins == p.Ins.GET_INFO:
            if apdu.data == bytes([p.Tag.SEED_INFO]):
                return self._read_public(apdu)
            return self._info()
        if apdu.ins == p.Ins.GET_CHALLENGE:
            return self._new_challenge()
        if apdu.ins == p.Ins.ANSWER_CHALLENGE:
            return self._answer(apdu.data)
        if apdu.ins == p.Ins.DELETE_SEED:  # no authentication needed (KR, hardware)
            return self._delete_seed(apdu.p2)
        if apdu.ins == p.Ins.FACTORY_RESET:  # no key needed; commits on ▲
            self.pending = _Pending("factory_reset")
            return _sw(p.Sw.WAIT_FOR_BUTTON)
        if apdu.ins == p.Ins.SCREEN_LOCK and self.model.screen_lock:  # else 6D00, as before 2.1
            return self._screen_lock(apdu)
        return _sw(p.Sw.INS_NOT_SUPPORTED)

    def _screen_lock(self, apdu: p.Apdu) -> bytes:
        """Plain, but only on an authenticated session (M2T §3); the two bodies of §5.5 only."""
        if (apdu.p1, apdu.p2) != (p.P1_SCREEN, p.P2_SCREEN_LOCK):
            return _sw(p.Sw.WRONG_P1P2)
        if not self.authenticated:
            return _sw(p.Sw.AUTH_FAILED)
        locked = p.SCREEN_LOCK_REQUEST.get(apdu.data)
        if locked is None:
            return _sw(p.Sw.WRONG_DATA)
        self.screen_locked = locked
        return _ok()

    def _read_public(self, apdu: p.Apdu) -> bytes:
        if apdu.le is not None:  # case 4 (§5.3)
            return _sw(p.Sw.CASE4_NOT_ALLOWED)
        prof = self._profile(apdu.p2)
        if prof is None:
            return _sw(p.Sw.WRONG_P1P2)
        return _ok(p.build_public_block(self._public(prof)))

    def _delete_seed(self, index: int) -> bytes:
        prof = self._profile(index)
        if prof is None:
            return _sw(p.Sw.WRONG_P1P2)
        if prof.seed is None:
            return _sw(p.Sw.NOT_FOUND)
        prof.seed = None
        return _ok()

    def _secure(self, apdu: p.Apdu, body: bytes) -> bytes:
        if not self.authenticated:
            return _sw(p.Sw.AUTH_FAILED)
        if apdu.ins == p.Ins.SET_CUSTOMER_KEY:
            return self._set_key(body)
        prof = self._profile(apdu.p2)
        if prof is None:
            return _sw(p.Sw.WRONG_P1P2)
        if apdu.ins == p.Ins.WRITE_SEED and apdu.p1 == p.P1_SEED:
            return self._write_seed(prof, body)
        if apdu.ins == p.Ins.WRITE_TITLE:
            prof.title, prof.written = p.open_title(body, self.key), True
            return _ok()
        if apdu.ins == p.Ins.WRITE_CONFIG and apdu.p1 == p.P1_PROFILE_CONFIG:
            return self._write_config(prof, body)
        return _sw(p.Sw.INS_NOT_SUPPORTED)

    def _answer(self, body: bytes) -> bytes:
        if self.tries_left <= 0:
            return _sw(p.Sw.WRONG_KEY)
        expected = self._expected_answer(body)
        if expected is None:
            return _sw(p.Sw.WRONG_DATA)
        if body != expected:
            self.tries_left -= 1
            return _sw(p.Sw.WRONG_KEY | self.tries_left)
        self.tries_left = MOLTO2_AUTH_TRIES
        self.authenticated = True
        return _ok()

    def _write_seed(self, prof: Profile, body: bytes) -> bytes:
        if p.is_clear_seed(body, self.key):  # the all-zero clear sentinel (§5.4)
            prof.seed = None
            return _ok()
        prof.seed, prof.written = p.open_seed(body, self.key), True
        return _ok()

    def _write_config(self, prof: Profile, body: bytes) -> bytes:
        config = p.WireConfig.parse(body)
        if config.layout is p.ConfigLayout.MOLTO2:
            assert config.display is not None and config.algorithm is not None  # the layout
            assert config.digits is not None and config.step is not None
            prof.display_timeout, prof.algorithm = config.display, config.algorithm
            prof.digits, prof.step, prof.written = config.digits, config.step, True
        elif config.layout is not p.ConfigLayout.SYNC:
            return _sw(p.Sw.WRONG_DATA)
        prof.clock_offset = config.clock - self.rtc.now(self.host_clock())
        prof.time_config = config.clock
        return _ok()

    def _set_key(self, body: bytes) -> bytes:
        self.pending = _Pending("set_key", p.open_new_key(body, self.key))
        return _sw(p.Sw.WAIT_FOR_BUTTON)

    def confirm(self) -> str | None:
        """The ▲ button: commits a pending set-key or factory reset; says what it did."""
        with self.lock:
            pending, self.pending = self.pending, None
            if pending is None:
                return None
            if pending.kind == "set_key":
                self.key = pending.key
            else:
                self.key = molto2_key(MOLTO2_DEFAULT_CUSTOMER_KEY)
                self.profiles = [Profile() for _ in range(self.model.profiles)]
                self.tries_left = MOLTO2_AUTH_TRIES
                self.screen_locked = False  # factory state (§5.5)
            self.authenticated = False
            self.save()
            return pending.kind

    def _public(self, prof: Profile) -> p.PublicBlock:
        return p.PublicBlock(
            flag=p.PUBLIC_FLAG_WRITTEN if prof.written else 0,
            title=prof.title,
            time_a=int(self.device_time() + prof.clock_offset) & 0xFFFFFFFF,
            time_b=prof.time_config & 0xFFFFFFFF,
            algorithm=prof.algorithm,
            step=prof.step.seconds,
            digits=prof.digits,
            seed_present=prof.seed is not None,
        )

    def press(self, profile: int = 0) -> str:
        with self.lock:
            if self.screen_locked and self.locked_screen.display is not None:
                return self.locked_screen.display
            prof = self._profile(profile)
            if prof is None or not prof.seed:
                return "no seed"
            return _code(
                prof.seed,
                self.device_time() + prof.clock_offset,
                prof.algorithm.algorithm,
                prof.step.seconds,
                prof.digits,
            )

    def _own_status(self) -> dict[str, Any]:
        return dict(
            occupied_profiles=[i for i, pr in enumerate(self.profiles) if pr.seed],
            tries_left=self.tries_left,
            pending_confirmation=self.pending.kind if self.pending else None,
            screen_locked=self.screen_locked if self.model.screen_lock else None,  # None: no lock
        )

    def _own_state(self) -> dict[str, Any]:
        return {
            "key": self.key.hex(),
            "tries_left": self.tries_left,
            "screen_locked": self.screen_locked,
            "profiles": [pr.to_state() for pr in self.profiles],
        }

    def load_state(self, data: dict[str, Any]) -> None:
        self.key = bytes.fromhex(data["key"])
        self.tries_left = data["tries_left"]
        self.screen_locked = bool(data.get("screen_locked", False))  # older files have none
        self.profiles = [Profile.from_state(x) for x in data["profiles"]]


# --- construction ------------------------------------------------------------------------


def default_serial(model: Model) -> str:
    tail = f"{secrets.randbelow(10**6):06d}"
    return (model.serial_prefix + tail) if model.serial_prefix else "M2" + tail + "00"


def create(
    model: Model,
    *,
    serial: str | None = None,
    state_file: Path | None = None,
    clock_offset: float = 0.0,
    drift_ppm: float = 0.0,
    host_clock: Callable[[], float] = time.time,
) -> Card:
    """A token from its state file when there is one, else factory-fresh.

    ``clock_offset`` and ``drift_ppm`` given on the command line apply to the clock as it is
    now (a loaded token keeps its seed and config).
    """
    cls = Molto2Token if model.family is Family.MOLTO2 else SingleProfileToken
    if state_file is not None and state_file.exists():
        data = json.loads(state_file.read_text())
        stored = by_name(data["model"])
        cls = Molto2Token if stored.family is Family.MOLTO2 else SingleProfileToken
        card = cls(stored, serial or data["serial"], host_clock=host_clock, state_file=state_file)
        card.load_state(data)
        card.rtc = Rtc(data["rtc_value"], data["rtc_set_at"], drift_ppm or data["drift_ppm"])
        if clock_offset:
            card.rtc.set(card.device_time() + clock_offset, host_clock())
        return card
    card = cls(
        model,
        serial or default_serial(model),
        host_clock=host_clock,
        clock_offset=clock_offset,
        drift_ppm=drift_ppm,
        state_file=state_file,
    )
    card.save()
    return card
