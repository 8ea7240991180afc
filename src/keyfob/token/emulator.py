"""The card side of Token2 programmable tokens: a faithful emulator (token-protocol.md §6).

Single-profile tokens follow Token2's published firmware core (OT2) row by row; the Molto2
follows the vendor tool and the hardware notes (§6.2). State that survives power-off (seed,
config, serial, flags, clock) lives in a JSON state file; the challenge and the authenticated
flag are volatile. The real-time clock ticks from the value last written, with an optional
offset and a drift in parts per million, against an injectable host clock so that a month of
drift can be simulated in a test.

Faults for tests of the clients: drop the link on the Nth APDU (the command is not received,
as with a token pulled out of the field), or delay every answer.
"""

from __future__ import annotations

import json
import os
import secrets
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from keyfob.otp import Algorithm, hotp
from keyfob.token import protocol as p
from keyfob.token.crypto import (
    MOLTO2_DEFAULT_CUSTOMER_KEY,
    SINGLE_PROFILE_KEY,
    ecb_decrypt,
    molto2_key,
    payload_unpad,
)
from keyfob.token.models import Family, Model, by_name

SW_OK = p.Sw.OK.to_bytes(2, "big")
_STEPS = {0x1E: 30, 0x3C: 60}
_ALGS = {1: Algorithm.SHA1, 2: Algorithm.SHA256}
MOLTO2_AUTH_TRIES = 10  # the real start value is undocumented (§6.2); 10 is our choice


class LinkDropped(Exception):
    """The emulated token left the reader's field: the APDU was not received."""


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")


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


def split_apdu(apdu: bytes) -> tuple[bytes, bytes, int] | None:
    """(header, body, extra trailing bytes) or None when shorter than its Lc says."""
    if len(apdu) < 4:
        return None
    if len(apdu) == 4:
        return apdu[:4], b"", 0
    lc = apdu[4]
    if len(apdu) < 5 + lc:
        return None
    return apdu[:4], apdu[5 : 5 + lc], len(apdu) - 5 - lc


class Card:
    """What both families share: APDU counting, faults, power, the lock, the state file."""

    family: Family

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
        self.log: list[bytes] = []  # INS bytes seen, for tests (never payloads)
        self.lock = threading.RLock()
        self.challenge: bytes | None = None
        self.authenticated = False

    # -- transport-facing --
    def transmit(self, apdu: bytes) -> bytes:
        with self.lock:
            self.apdu_count += 1
            if self.faults.drop_on is not None:
                self.faults.drop_on -= 1
                if self.faults.drop_on <= 0:
                    self.faults.drop_on = None
                    self.power_off()
                    raise LinkDropped(f"link dropped on APDU {self.apdu_count}")
            if (
                self.faults.drop_ins is not None
                and len(apdu) > 1
                and apdu[1] == self.faults.drop_ins
            ):
                self.power_off()
                raise LinkDropped(f"link dropped on INS {apdu[1]:02X}")
            delay = self.faults.delay
        if delay:
            time.sleep(delay)
        with self.lock:
            self.log.append(apdu[:2])
            response = self.process(apdu)
            self.save()
            return response

    def command_counts(self) -> dict[str, int]:
        """How many commands of each INS the token received (hex INS -> count)."""
        counts: dict[str, int] = {}
        for head in self.log:
            if len(head) > 1:
                key = f"{head[1]:02X}"
                counts[key] = counts.get(key, 0) + 1
        return counts

    def power_off(self) -> None:
        """Leaving the field: volatile state is gone."""
        self.challenge = None
        self.authenticated = False

    def device_time(self) -> float:
        return self.rtc.now(self.host_clock())

    # -- to implement --
    def process(self, apdu: bytes) -> bytes:
        raise NotImplementedError

    def press(self, profile: int = 0) -> str:
        raise NotImplementedError

    def to_state(self) -> dict[str, Any]:
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

    def _rtc_state(self) -> dict[str, float]:
        return {
            "rtc_value": self.rtc.value,
            "rtc_set_at": self.rtc.set_at,
            "drift_ppm": self.rtc.drift_ppm,
        }


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
        self.algorithm = 1
        self.step = 0x1E
        self.display_timeout = 1
        self.key_locked = False
        self.restricted_sync = model.restricted_sync

    def process(self, apdu: bytes) -> bytes:
        parts = split_apdu(apdu)
        if parts is None:
            return _sw(p.Sw.WRONG_LENGTH)
        header, body, _extra = parts  # trailing bytes (Le) are ignored
        cla, ins, p1 = header[0], header[1], header[2]
        if cla == p.Cla.PLAIN:
            if ins == p.Ins.GET_INFO:
                return p.build_info(self.serial, int(self.device_time())) + SW_OK
            if ins == p.Ins.GET_CHALLENGE:
                if p1 != 0x08:
                    return _sw(p.Sw.WRONG_P1P2)
                self.challenge = secrets.token_bytes(8)
                self.authenticated = False
                return self.challenge + SW_OK
            if ins == p.Ins.ANSWER_CHALLENGE:
                return self._answer(body)
            return _sw(p.Sw.INS_NOT_SUPPORTED)
        if cla == p.Cla.SECURE:
            if len(body) < 4:
                return _sw(p.Sw.WRONG_LENGTH)
            if not p.check_mac(header, body, self.key):
                return _sw(p.Sw.AUTH_FAILED)
            data = body[:-4]
            if ins == p.Ins.WRITE_SEED and p1 == 0x01:
                if not self.authenticated:
                    return _sw(p.Sw.AUTH_FAILED)
                return self._write_seed(data)
            if ins == p.Ins.WRITE_CONFIG:
                if not self.authenticated:
                    return _sw(p.Sw.AUTH_FAILED)
                return self._write_config(data)
            return _sw(p.Sw.INS_NOT_SUPPORTED)
        return _sw(p.Sw.CLA_NOT_SUPPORTED)

    def _answer(self, body: bytes) -> bytes:
        if self.key_locked:
            return _sw(p.Sw.AUTH_FAILED)
        if self.challenge is None or len(body) != 16:
            return _sw(p.Sw.WRONG_DATA)
        expected = p.auth_answer(self.challenge, self.key)
        self.challenge = None  # consumed either way
        if body != expected:
            return _sw(p.Sw.AUTH_FAILED)
        self.authenticated = True
        return SW_OK

    def _write_seed(self, data: bytes) -> bytes:
        if not 16 <= len(data) <= 64 or len(data) % 16:
            return _sw(p.Sw.WRONG_DATA)
        seed = payload_unpad(ecb_decrypt(self.key, data))
        if not seed or len(seed) > p.MAX_SEED:
            return _sw(p.Sw.WRONG_DATA)
        self.seed = seed
        return SW_OK

    def _write_config(self, data: bytes) -> bytes:
        if (
            len(data) != 19
            or data[:5] != bytes([0x81, 0x11, 0x1F, 0x01, data[4]])
            or data[5:7] != b"\x0f\x04"
            or data[11:15] != bytes([0x86, 0x06, 0x0A, 0x01])
            or data[16:18] != bytes([0x0D, 0x01])
        ):
            return _sw(p.Sw.WRONG_DATA)
        display, algorithm, step = data[4], data[15], data[18]
        if display > 3 or algorithm not in _ALGS or step not in _STEPS:
            return _sw(p.Sw.WRONG_DATA)
        (clock,) = struct.unpack(">I", data[7:11])
        self.display_timeout, self.algorithm, self.step = display, algorithm, step
        self.rtc.set(clock, self.host_clock())
        if self.restricted_sync:
            self.seed = None
        return SW_OK

    def press(self, profile: int = 0) -> str:
        with self.lock:
            if not self.seed:
                return "no seed"
            return _code(self.seed, self.device_time(), _ALGS[self.algorithm], _STEPS[self.step], 6)

    def status(self) -> dict[str, Any]:
        data = super().status()
        data.update(
            seed_present=self.seed is not None,
            algorithm=_ALGS[self.algorithm].value,
            period=_STEPS[self.step],
            display_timeout=self.display_timeout,
            key_locked=self.key_locked,
        )
        return data

    def to_state(self) -> dict[str, Any]:
        return {
            "family": self.family.value,
            "model": self.model.name,
            "serial": self.serial,
            "seed": self.seed.hex() if self.seed else None,
            "algorithm": self.algorithm,
            "step": self.step,
            "display_timeout": self.display_timeout,
            "key_locked": self.key_locked,
            "restricted_sync": self.restricted_sync,
            **self._rtc_state(),
        }

    def load_state(self, data: dict[str, Any]) -> None:
        self.seed = bytes.fromhex(data["seed"]) if data.get("seed") else None
        self.algorithm, self.step = data["algorithm"], data["step"]
        self.display_timeout = data["display_timeout"]
        self.key_locked, self.restricted_sync = data["key_locked"], data["restricted_sync"]


# --- Molto2 --------------------------------------------------------------------------------


@dataclass
class Profile:
    seed: bytes | None = None
    title: str = ""
    algorithm: int = 1
    digits: int = 6
    step: int = 0x1E
    display_timeout: int = 2
    clock_offset: float = 0.0  # per-profile time sync: device RTC + this
    time_config: int = 0
    written: bool = False

    def to_state(self) -> dict[str, Any]:
        data = asdict(self)
        data["seed"] = self.seed.hex() if self.seed else None
        return data

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Profile:
        data = dict(data)
        data["seed"] = bytes.fromhex(data["seed"]) if data.get("seed") else None
        return cls(**data)


@dataclass
class _Pending:
    """A Molto2 command answered with 9060: it commits when the ▲ button is pressed."""

    kind: str  # set_key | factory_reset
    key: bytes = field(default=b"", repr=False)


class Molto2Token(Card):
    """The USB multi-profile Molto2 (§5, §6.2)."""

    family = Family.MOLTO2

    def __init__(self, model: Model, serial: str, **kw: Any) -> None:
        super().__init__(model, serial, **kw)
        self.key = molto2_key(MOLTO2_DEFAULT_CUSTOMER_KEY)
        self.tries_left = MOLTO2_AUTH_TRIES
        self.profiles = [Profile() for _ in range(model.profiles)]
        self.pending: _Pending | None = None

    def _profile(self, index: int) -> Profile | None:
        return self.profiles[index] if 0 <= index < len(self.profiles) else None

    def process(self, apdu: bytes) -> bytes:
        parts = split_apdu(apdu)
        if parts is None:
            return _sw(p.Sw.WRONG_LENGTH)
        header, body, extra = parts
        cla, ins, p1, p2 = header
        if cla == p.Cla.PLAIN:
            if ins == p.Ins.GET_INFO:
                if body == bytes([p.Tag.SEED_INFO]):
                    if extra:
                        return _sw(p.Sw.CASE4_NOT_ALLOWED)
                    prof = self._profile(p2)
                    if prof is None:
                        return _sw(p.Sw.WRONG_P1P2)
                    return p.build_public_block(self._public(prof)) + SW_OK
                return p.build_info(self.serial, int(self.device_time())) + SW_OK
            if ins == p.Ins.GET_CHALLENGE:
                self.challenge = secrets.token_bytes(8)
                self.authenticated = False
                return self.challenge + SW_OK
            if ins == p.Ins.ANSWER_CHALLENGE:
                return self._answer(body)
            if ins == p.Ins.DELETE_SEED:  # no authentication needed (KR, hardware)
                prof = self._profile(p2)
                if prof is None:
                    return _sw(p.Sw.WRONG_P1P2)
                if prof.seed is None:
                    return _sw(p.Sw.NOT_FOUND)
                prof.seed = None
                return SW_OK
            if ins == p.Ins.FACTORY_RESET:  # no key needed; commits on ▲
                self.pending = _Pending("factory_reset")
                return _sw(p.Sw.WAIT_FOR_BUTTON)
            return _sw(p.Sw.INS_NOT_SUPPORTED)
        if cla == p.Cla.SECURE:
            if len(body) < 4:
                return _sw(p.Sw.WRONG_LENGTH)
            if not p.check_mac(header, body, self.key):
                return _sw(p.Sw.AUTH_FAILED)
            if not self.authenticated:
                return _sw(p.Sw.AUTH_FAILED)
            data = body[:-4]
            if ins == p.Ins.SET_CUSTOMER_KEY:
                return self._set_key(data)
            prof = self._profile(p2)
            if prof is None:
                return _sw(p.Sw.WRONG_P1P2)
            if ins == p.Ins.WRITE_SEED and p1 == 0x01:
                return self._write_seed(prof, data)
            if ins == p.Ins.WRITE_TITLE:
                return self._write_title(prof, data)
            if ins == p.Ins.WRITE_CONFIG and p1 == 0x01:
                return self._write_config(prof, data)
            return _sw(p.Sw.INS_NOT_SUPPORTED)
        return _sw(p.Sw.CLA_NOT_SUPPORTED)

    def _answer(self, body: bytes) -> bytes:
        if self.tries_left <= 0:
            return _sw(0x6300)
        if self.challenge is None or len(body) != 16:
            return _sw(p.Sw.WRONG_DATA)
        expected = p.auth_answer(self.challenge, self.key)
        self.challenge = None
        if body != expected:
            self.tries_left -= 1
            return _sw(0x6300 | self.tries_left)
        self.tries_left = MOLTO2_AUTH_TRIES
        self.authenticated = True
        return SW_OK

    def _write_seed(self, prof: Profile, data: bytes) -> bytes:
        if not data or len(data) % 16 or len(data) > 64:
            return _sw(p.Sw.WRONG_DATA)
        plain = ecb_decrypt(self.key, data)
        if not any(plain):  # the all-zero clear sentinel (§5.4)
            prof.seed = None
            return SW_OK
        seed = payload_unpad(plain)
        if not seed or len(seed) > p.MAX_SEED:
            return _sw(p.Sw.WRONG_DATA)
        prof.seed, prof.written = seed, True
        return SW_OK

    def _write_title(self, prof: Profile, data: bytes) -> bytes:
        if len(data) != 16:
            return _sw(p.Sw.WRONG_DATA)
        raw = payload_unpad(ecb_decrypt(self.key, data))
        if not raw or len(raw) > 12:
            return _sw(p.Sw.WRONG_DATA)
        try:
            prof.title = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _sw(p.Sw.WRONG_DATA)
        prof.written = True
        return SW_OK

    def _write_config(self, prof: Profile, data: bytes) -> bytes:
        if len(data) == 8 and data[:4] == bytes([0x81, 0x06, 0x0F, 0x04]):  # time sync
            (clock,) = struct.unpack(">I", data[4:8])
            prof.clock_offset = clock - self.rtc.now(self.host_clock())
            prof.time_config = clock
            return SW_OK
        if (
            len(data) != 22
            or data[:4] != bytes([0x81, 0x14, 0x1F, 0x01])
            or data[5:7] != b"\x0f\x04"
            or data[11:15] != bytes([0x86, 0x09, 0x0A, 0x01])
            or data[16:18] != bytes([0x0B, 0x01])
            or data[19:21] != bytes([0x0D, 0x01])
        ):
            return _sw(p.Sw.WRONG_DATA)
        display, algorithm, digits, step = data[4], data[15], data[18], data[21]
        if (
            display > 3
            or algorithm not in _ALGS
            or digits not in p.DIGIT_VALUES
            or step not in _STEPS
        ):
            return _sw(p.Sw.WRONG_DATA)
        (clock,) = struct.unpack(">I", data[7:11])
        prof.display_timeout, prof.algorithm, prof.digits, prof.step = (
            display,
            algorithm,
            digits,
            step,
        )
        prof.clock_offset = clock - self.rtc.now(self.host_clock())
        prof.time_config = clock
        prof.written = True
        return SW_OK

    def _set_key(self, data: bytes) -> bytes:
        if len(data) != 32:
            return _sw(p.Sw.WRONG_DATA)
        plain = ecb_decrypt(self.key, data)
        if plain[0] != 0 or plain[17] != 0x80 or any(plain[18:]):
            return _sw(p.Sw.WRONG_DATA)
        self.pending = _Pending("set_key", plain[1:17])
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
            self.authenticated = False
            self.save()
            return pending.kind

    def _public(self, prof: Profile) -> p.PublicBlock:
        return p.PublicBlock(
            flag=0x20 if prof.written else 0x00,
            title=prof.title,
            time_a=int(self.device_time() + prof.clock_offset) & 0xFFFFFFFF,
            time_b=prof.time_config & 0xFFFFFFFF,
            algorithm=prof.algorithm,
            step=_STEPS[prof.step],
            digits=prof.digits,
            seed_present=prof.seed is not None,
        )

    def press(self, profile: int = 0) -> str:
        with self.lock:
            prof = self._profile(profile)
            if prof is None or not prof.seed:
                return "no seed"
            return _code(
                prof.seed,
                self.device_time() + prof.clock_offset,
                _ALGS[prof.algorithm],
                _STEPS[prof.step],
                prof.digits,
            )

    def status(self) -> dict[str, Any]:
        data = super().status()
        data["occupied_profiles"] = [i for i, pr in enumerate(self.profiles) if pr.seed]
        data["tries_left"] = self.tries_left
        data["pending_confirmation"] = self.pending.kind if self.pending else None
        return data

    def to_state(self) -> dict[str, Any]:
        return {
            "family": self.family.value,
            "model": self.model.name,
            "serial": self.serial,
            "key": self.key.hex(),
            "tries_left": self.tries_left,
            "profiles": [pr.to_state() for pr in self.profiles],
            **self._rtc_state(),
        }

    def load_state(self, data: dict[str, Any]) -> None:
        self.key = bytes.fromhex(data["key"])
        self.tries_left = data["tries_left"]
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
        card.load_state(data)  # type: ignore[attr-defined]
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
