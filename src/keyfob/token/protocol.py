"""Wire protocol of Token2 programmable tokens (docs/token-protocol.md §4, §5, §7), pure: no I/O.

Every wire fact is defined once here and used by both sides — the client's command builders and
the emulator's parsers: the constants (``Cla``, ``Ins``, ``Tag``, ``Sw``), the encodings of
algorithm and time step (``HmacAlgorithm``, ``TimeStep``), APDU framing (``Apdu.to_bytes`` /
``Apdu.parse``), the command MAC (``secure`` / ``unwrap_secure``), the config TLV
(``WireConfig``, built and parsed through the one codec in :mod:`keyfob.token.tlv`), the
encrypted payloads (``seal_payload`` / ``open_payload``) and the two response blocks.

Builders decide what a debug log may show of their command (``Apdu.log_data``): only commands
that carry no seed, key, auth answer or MAC.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import TypeVar

from keyfob.otp import Algorithm
from keyfob.token.crypto import (
    BLOCK,
    cbc_mac,
    ecb_decrypt,
    ecb_encrypt,
    molto2_key,
    payload_pad,
    payload_unpad,
)
from keyfob.token.errors import BadData, MalformedApdu, TlvError
from keyfob.token.tlv import Tlv

T = TypeVar("T")


def _member(find: Callable[[], T], message: str, hint: str) -> T:
    """The enum member ``find`` looks up; a value no token takes is a :class:`BadData` that
    says what to do instead, raised before anything is sent."""
    try:
        return find()
    except (KeyError, ValueError):
        raise BadData(message, hint=hint) from None


class Cla(IntEnum):
    PLAIN = 0x80
    SECURE = 0x84  # MAC-protected


class Ins(IntEnum):
    GET_INFO = 0x41  # also: read a Molto2 profile's public block
    GET_CHALLENGE = 0x4B
    ANSWER_CHALLENGE = 0xCE
    WRITE_SEED = 0xC5
    WRITE_CONFIG = 0xD4  # also: Molto2 per-profile time sync
    WRITE_TITLE = 0xD5
    SET_CUSTOMER_KEY = 0xD7
    SCREEN_LOCK = 0xD8  # lock / unlock the screen (Molto2 firmware 2.1 and later)
    DELETE_SEED = 0xE6
    FACTORY_RESET = 0x56


P1_CHALLENGE = 0x08  # 80 4B 08 00: an 8-byte challenge
P1_SEED = 0x01  # 84 C5 01 pp
P1_PROFILE_CONFIG = 0x01  # 84 D4 01 pp (Molto2; the single-profile config has P1 = 00)
P1_SCREEN = 0x0C  # 80 D8 0C 02: the screen lock of Molto2 firmware 2.1 and later (§5.5)
P2_SCREEN_LOCK = 0x02
SCREEN_LOCK_BODY = {True: b"", False: b"\x01"}  # lock: no data (P3 = 00); unlock: 01 (§5.5)
SCREEN_LOCK_REQUEST = {body: locked for locked, body in SCREEN_LOCK_BODY.items()}  # card side


class Tag(IntEnum):
    SYS_CONFIG = 0x81
    DISPLAY_TIMEOUT = 0x1F
    UTC_TIME = 0x0F
    TOTP_PARAM = 0x86
    TOTP_HMAC = 0x0A
    DIGITS = 0x0B
    TIME_STEP = 0x0D
    PUBLIC_DATA = 0x95
    SEED_INFO = 0x70


class HmacAlgorithm(IntEnum):
    """The algorithm byte of the config TLV and the public block."""

    SHA1 = 1
    SHA256 = 2

    @property
    def algorithm(self) -> Algorithm:
        return Algorithm[self.name]

    @classmethod
    def of(cls, algorithm: Algorithm) -> HmacAlgorithm:
        """The wire code of an OATH algorithm; a typed refusal for one no token computes."""
        return _member(
            lambda: cls[algorithm.name],
            f"{algorithm.value} is not supported by these tokens (SHA1 or SHA256)",
            "enrol the account with SHA1 or SHA256, or use a software authenticator",
        )


class TimeStep(IntEnum):
    """The step byte of the config TLV (§4.3). KR reads the top two bits as the unit and the
    rest as the count, which makes the byte equal the seconds for the two steps in use."""

    S30 = 0x1E
    S60 = 0x3C

    @property
    def seconds(self) -> int:
        """The byte itself: its unit bits are 00 (seconds) for both steps in use."""
        return int(self)

    @classmethod
    def of_seconds(cls, seconds: int) -> TimeStep:
        return _member(
            lambda: cls(seconds),
            f"a {seconds} s period is not supported by these tokens (30 or 60)",
            "enrol the account with a 30 or 60 second period",
        )


class DisplayTimeout(IntEnum):
    S15 = 0
    S30 = 1
    S60 = 2
    S120 = 3


class Sw(IntEnum):
    """Status words, with what they mean to a person holding the token."""

    OK = 0x9000
    WAIT_FOR_BUTTON = 0x9060
    WRONG_KEY = 0x6300  # 63 NN: NN = tries left (Molto2)
    WRONG_LENGTH = 0x6700
    AUTH_FAILED = 0x6983
    WRONG_DATA = 0x6A80
    NOT_FOUND = 0x6A83
    WRONG_P1P2 = 0x6A86
    CASE4_NOT_ALLOWED = 0x6FFB
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]

    @classmethod
    def of(cls, sw: int) -> Sw | None:
        """The status word a raw value is: any ``63 NN`` is :attr:`WRONG_KEY`."""
        if sw & 0xFF00 == cls.WRONG_KEY:
            return cls.WRONG_KEY
        try:
            return cls(sw)
        except ValueError:
            return None


_MEANINGS = {
    Sw.OK: "success",
    Sw.WAIT_FOR_BUTTON: "accepted; press the ▲ button on the token to confirm",
    Sw.WRONG_KEY: "wrong key; the low byte counts the tries left",
    Sw.WRONG_LENGTH: "wrong length",
    Sw.AUTH_FAILED: "authentication failed, not authenticated, or the token is sealed",
    Sw.WRONG_DATA: "the token rejected the data",
    Sw.NOT_FOUND: "nothing stored there (empty profile)",
    Sw.WRONG_P1P2: "no such profile",
    Sw.CASE4_NOT_ALLOWED: "command must not carry an expected length",
    Sw.INS_NOT_SUPPORTED: "command not supported",
    Sw.CLA_NOT_SUPPORTED: "command class not supported",
}


def tries_left(sw: int) -> int:
    """The count a ``63 NN`` carries."""
    return sw & 0xFF


def describe_sw(sw: int) -> str:
    code = Sw.of(sw)
    if code is Sw.WRONG_KEY:
        return f"authentication failed, {tries_left(sw)} tries left"
    if code is None:
        return f"unknown status {sw:04X}"
    return f"{code.meaning} ({sw:04X})"


DIGIT_VALUES = (4, 6, 8, 10)
MAX_SEED = 63
MAX_TITLE = 12
CHALLENGE_LEN = 8
ANSWER_LEN = 16  # SM4-ECB of challenge ‖ 8 zero bytes (§3.3)
MAC_LEN = 4
SW_LEN = 2
HEADER_LEN = 4  # CLA INS P1 P2


# --- APDU framing --------------------------------------------------------------------------


@dataclass(frozen=True)
class Apdu:
    """A short command APDU: header, body, and an optional expected length.

    ``log_data`` is the builder's word that the body holds nothing secret, so a debug log may
    show it; it is off unless a builder turns it on (the transport cannot know).
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = field(default=b"", repr=False)
    le: int | None = None
    log_data: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if self.log_data and self.cla == Cla.SECURE:
            raise ValueError("a command that carries a MAC is never loggable")

    def to_bytes(self) -> bytes:
        out = bytes([self.cla, self.ins, self.p1, self.p2])
        if self.data:
            if len(self.data) > 255:
                raise BadData("short APDUs carry at most 255 bytes")
            out += bytes([len(self.data)]) + self.data
        elif self.le is None:
            out += b"\x00"  # P3 = 0: these devices always expect a fifth byte
        if self.le is not None:
            out += bytes([self.le & 0xFF])
        return out

    @classmethod
    def parse(cls, raw: bytes) -> Apdu:
        """As the card reads a command (§6.1): the header; a fifth byte is Lc and that many
        bytes must follow; one byte after them is the Le, and anything beyond it is ignored."""
        if len(raw) < HEADER_LEN:
            raise MalformedApdu(f"{len(raw)} bytes are shorter than an APDU header")
        cla, ins, p1, p2 = raw[:HEADER_LEN]
        if len(raw) == HEADER_LEN:
            return cls(cla, ins, p1, p2)
        lc, start = raw[HEADER_LEN], HEADER_LEN + 1
        end = start + lc
        if len(raw) < end:
            raise MalformedApdu(f"Lc says {lc} bytes, {len(raw) - start} follow")
        le = raw[end] if len(raw) > end else None
        return cls(cla, ins, p1, p2, bytes(raw[start:end]), le)


SW1_MORE_DATA = 0x61  # T=0 (contact readers): 61 XX, fetch XX bytes with GET RESPONSE (§2.1)
SW1_WRONG_LE = 0x6C  # T=0: 6C XX, send the command again with Le = XX


def get_response(length: int) -> Apdu:
    """``00 C0 00 00 XX``: the rest of a T=0 answer (ISO 7816-4), not a token command."""
    return Apdu(0x00, 0xC0, 0, 0, le=length, log_data=True)


def peek_ins(raw: bytes) -> int | None:
    """The INS byte of a raw command, even a malformed one: fault injection and the
    emulator's command counts look at it before (and whether or not) the command parses."""
    return raw[1] if len(raw) > 1 else None


def response(sw: int, data: bytes = b"") -> bytes:
    """A response APDU: data, then the status word."""
    return data + sw.to_bytes(SW_LEN, "big")


def split_response(raw: bytes) -> tuple[bytes, int]:
    if len(raw) < SW_LEN:
        raise BadData(f"a {len(raw)}-byte response has no status word")
    return raw[:-SW_LEN], int.from_bytes(raw[-SW_LEN:], "big")


def _mac_input(ins: int, p1: int, p2: int, body: bytes) -> bytes:
    return bytes([Cla.PLAIN, ins, p1, p2, len(body)]) + body


def secure(ins: int, p1: int, p2: int, body: bytes, key: bytes) -> Apdu:
    """A CLA 84 command: MAC over ``80 INS P1 P2 len(body)`` ‖ body, appended (§3.4)."""
    mac = cbc_mac(key, _mac_input(ins, p1, p2, body))
    return Apdu(Cla.SECURE, ins, p1, p2, body + mac)


def unwrap_secure(apdu: Apdu, key: bytes) -> bytes | None:
    """The body of a CLA 84 command, or None when its MAC is wrong."""
    if len(apdu.data) < MAC_LEN:
        raise MalformedApdu(f"a secure command of {len(apdu.data)} bytes has no room for a MAC")
    body, mac = apdu.data[:-MAC_LEN], apdu.data[-MAC_LEN:]
    expected = cbc_mac(key, _mac_input(apdu.ins, apdu.p1, apdu.p2, body))
    return body if hmac.compare_digest(expected, mac) else None


# --- commands ------------------------------------------------------------------------------

INFO_REQUEST = bytes([0x02, 0x11])  # single-profile get-info body; read as tags 02, 11 (§12)


def get_info(molto2: bool = False) -> Apdu:
    """Single-profile tokens ask for tags 02 and 11; the Molto2 sends no body."""
    body = b"" if molto2 else INFO_REQUEST
    return Apdu(Cla.PLAIN, Ins.GET_INFO, 0, 0, body, log_data=True)


def get_challenge(short: bool = False) -> Apdu:
    """``80 4B 08 00 01 00`` (token2_config.py form) or ``80 4B 08 00 00`` (short form)."""
    body = b"" if short else b"\x00"
    return Apdu(Cla.PLAIN, Ins.GET_CHALLENGE, P1_CHALLENGE, 0, body, log_data=True)


def auth_answer(challenge: bytes, key: bytes) -> bytes:
    if len(challenge) != CHALLENGE_LEN:
        raise BadData(f"challenges are {CHALLENGE_LEN} bytes, not {len(challenge)}")
    return ecb_encrypt(key, challenge + b"\x00" * CHALLENGE_LEN)


def answer_challenge(challenge: bytes, key: bytes) -> Apdu:
    """Not loggable: the answer is a function of the key, as good as a MAC."""
    return Apdu(Cla.PLAIN, Ins.ANSWER_CHALLENGE, 0, 0, auth_answer(challenge, key))


def write_single_config(
    clock: int, algorithm: HmacAlgorithm, step: int, display: DisplayTimeout, key: bytes
) -> Apdu:
    return secure(Ins.WRITE_CONFIG, 0, 0, single_config_tlv(clock, algorithm, step, display), key)


def write_molto2_config(
    profile: int,
    clock: int,
    algorithm: HmacAlgorithm,
    digits: int,
    step: int,
    display: DisplayTimeout,
    key: bytes,
) -> Apdu:
    tlv = molto2_config_tlv(clock, algorithm, digits, step, display)
    return secure(Ins.WRITE_CONFIG, P1_PROFILE_CONFIG, profile, tlv, key)


def sync_molto2_time(profile: int, clock: int, key: bytes) -> Apdu:
    return secure(Ins.WRITE_CONFIG, P1_PROFILE_CONFIG, profile, molto2_sync_tlv(clock), key)


def write_seed(seed: bytes, key: bytes, profile: int = 0) -> Apdu:
    return secure(Ins.WRITE_SEED, P1_SEED, profile, seed_ciphertext(seed, key), key)


def write_title(profile: int, title: str, key: bytes) -> Apdu:
    raw = title.encode("utf-8")
    if not 1 <= len(raw) <= MAX_TITLE:
        raise BadData(f"titles are 1 to {MAX_TITLE} bytes of UTF-8, not {len(raw)}")
    return secure(Ins.WRITE_TITLE, 0, profile, seal_payload(raw, key), key)


def set_customer_key(new_customer_key: bytes, current_key: bytes) -> Apdu:
    body = seal_payload(NEW_KEY_PREFIX + molto2_key(new_customer_key), current_key)
    return secure(Ins.SET_CUSTOMER_KEY, 0, 0, body, current_key)


def read_public_block(profile: int) -> Apdu:
    """Case 3 only: an appended Le makes the Molto2 answer 6FFB."""
    return Apdu(Cla.PLAIN, Ins.GET_INFO, 0, profile, bytes([Tag.SEED_INFO]), log_data=True)


def delete_seed(profile: int) -> Apdu:
    return Apdu(Cla.PLAIN, Ins.DELETE_SEED, 0, profile, log_data=True)


def factory_reset() -> Apdu:
    return Apdu(Cla.PLAIN, Ins.FACTORY_RESET, 0, 0, log_data=True)


def screen_lock(locked: bool) -> Apdu:
    """``80 D8 0C 02 00`` locks, ``80 D8 0C 02 01 01`` unlocks (§5.5): plain, with no MAC,
    though the token wants an authenticated session; nothing secret in it, so loggable."""
    body = SCREEN_LOCK_BODY[locked]
    return Apdu(Cla.PLAIN, Ins.SCREEN_LOCK, P1_SCREEN, P2_SCREEN_LOCK, body, log_data=True)


# --- the config TLV --------------------------------------------------------------------------


def _u32(value: int) -> bytes:
    return struct.pack(">I", value & 0xFFFFFFFF)


class ConfigLayout(Enum):
    """The three config TLVs the tools send; which fields are present tells them apart."""

    SINGLE = "single-profile config"  # §4.3: display, clock, algorithm, step
    MOLTO2 = "Molto2 config"  # §5.2: display, clock, algorithm, digits, step
    SYNC = "Molto2 time sync"  # §5.2: clock only


_LAYOUTS: dict[tuple[bool, ...], ConfigLayout] = {  # (display, algorithm, digits, step) present
    (True, True, False, True): ConfigLayout.SINGLE,
    (True, True, True, True): ConfigLayout.MOLTO2,
    (False, False, False, False): ConfigLayout.SYNC,
}


@dataclass(frozen=True)
class WireConfig:
    """``81 { 1F display, 0F clock, 86 { 0A algorithm, 0B digits, 0D step } }`` (§4.3, §5.2)."""

    clock: int
    display: DisplayTimeout | None = None
    algorithm: HmacAlgorithm | None = None
    digits: int | None = None
    step: TimeStep | None = None

    @property
    def layout(self) -> ConfigLayout | None:
        present = (self.display, self.algorithm, self.digits, self.step)
        return _LAYOUTS.get(tuple(x is not None for x in present))

    def to_tlv(self) -> Tlv:
        fields = [] if self.display is None else [Tlv(Tag.DISPLAY_TIMEOUT, bytes([self.display]))]
        fields.append(Tlv(Tag.UTC_TIME, _u32(self.clock)))
        params = [
            Tlv(tag, bytes([value]))
            for tag, value in (
                (Tag.TOTP_HMAC, self.algorithm),
                (Tag.DIGITS, self.digits),
                (Tag.TIME_STEP, self.step),
            )
            if value is not None
        ]
        if params:
            fields.append(Tlv.nest(Tag.TOTP_PARAM, *params))
        return Tlv.nest(Tag.SYS_CONFIG, *fields)

    def encode(self) -> bytes:
        return bytes(self.to_tlv())

    @classmethod
    def parse(cls, data: bytes) -> WireConfig:
        """Exactly one of the three layouts, byte for byte as :meth:`encode` writes it: the
        reference firmware takes nothing else (§4.3), so neither does the emulator."""
        fields = Tlv.parse_dict(Tlv.unpack(Tag.SYS_CONFIG, data))
        params = Tlv.parse_dict(fields.get(Tag.TOTP_PARAM, b""))
        if Tag.UTC_TIME not in fields:
            raise TlvError("the config has no clock (tag 0F)")
        config = cls(
            clock=_decode_u32(Tag.UTC_TIME, fields[Tag.UTC_TIME]),
            display=_decode_byte(fields, Tag.DISPLAY_TIMEOUT, DisplayTimeout),
            algorithm=_decode_byte(params, Tag.TOTP_HMAC, HmacAlgorithm),
            digits=_decode_byte(params, Tag.DIGITS, _digits),
            step=_decode_byte(params, Tag.TIME_STEP, TimeStep),
        )
        if config.layout is None or config.encode() != data:
            raise TlvError("the config is not one of the layouts of §4.3 and §5.2, byte for byte")
        return config


def _digits(value: int) -> int:
    if value not in DIGIT_VALUES:
        raise ValueError(value)
    return value


def _decode_u32(tag: int, value: bytes) -> int:
    if len(value) != 4:
        raise TlvError(f"tag {tag:02X} holds {len(value)} bytes, a u32 is 4")
    return int.from_bytes(value, "big")


def _decode_byte(fields: dict[int, bytes], tag: int, kind: Callable[[int], T]) -> T | None:
    if tag not in fields:
        return None
    value = fields[tag]
    if len(value) != 1:
        raise TlvError(f"tag {tag:02X} holds {len(value)} bytes, expected 1")
    try:
        return kind(value[0])
    except ValueError:
        raise TlvError(f"tag {tag:02X}: {value[0]} is not a value the tokens know") from None


def single_config_tlv(
    clock: int, algorithm: HmacAlgorithm, step: int, display: DisplayTimeout = DisplayTimeout.S30
) -> bytes:
    """The full 19-byte single-profile config TLV (§4.3); there is no digits field."""
    return WireConfig(
        clock, display, HmacAlgorithm(algorithm), step=TimeStep.of_seconds(step)
    ).encode()


def molto2_config_tlv(
    clock: int,
    algorithm: HmacAlgorithm,
    digits: int,
    step: int,
    display: DisplayTimeout = DisplayTimeout.S60,
) -> bytes:
    """The 22-byte Molto2 config TLV (§5.2)."""
    if digits not in DIGIT_VALUES:
        raise BadData(f"the Molto2 shows 4, 6, 8 or 10 digits, not {digits}")
    return WireConfig(
        clock, display, HmacAlgorithm(algorithm), digits, TimeStep.of_seconds(step)
    ).encode()


def molto2_sync_tlv(clock: int) -> bytes:
    return WireConfig(clock).encode()


# --- encrypted payloads: seed, title, new customer key ----------------------------------------

NEW_KEY_PREFIX = b"\x00"  # set-key plaintext starts 00; its meaning is unknown (§5.4)
NEW_KEY_LEN = 16


def _padded_len(length: int) -> int:
    """Bytes of ciphertext for ``length`` bytes of plaintext under the always-pad rule."""
    return (length // BLOCK + 1) * BLOCK


def seal_payload(plain: bytes, key: bytes) -> bytes:
    """``80``-pad (always, §4.4) and SM4-ECB: how seeds, titles and new keys travel."""
    return ecb_encrypt(key, payload_pad(plain))


def open_payload(ciphertext: bytes, key: bytes, *, max_len: int, what: str) -> bytes:
    """The inverse, with the device's checks: whole blocks, no more than ``max_len`` padded
    needs, the ``80``-then-zeros tail, 1 to ``max_len`` bytes inside."""
    size = len(ciphertext)
    if not size or size % BLOCK or size > _padded_len(max_len):
        raise BadData(f"{what}: {size} bytes of ciphertext is not 1 to {max_len} padded bytes")
    plain = payload_unpad(ecb_decrypt(key, ciphertext))
    if not plain or len(plain) > max_len:
        raise BadData(f"{what}: the padding or the length inside is wrong")
    return plain


def seed_ciphertext(seed: bytes, key: bytes) -> bytes:
    if not 1 <= len(seed) <= MAX_SEED:
        raise BadData(f"the seed is {len(seed)} bytes; the token holds 1 to {MAX_SEED}")
    return seal_payload(seed, key)


def open_seed(ciphertext: bytes, key: bytes) -> bytes:
    return open_payload(ciphertext, key, max_len=MAX_SEED, what="seed")


def clear_seed_ciphertext(length: int, key: bytes) -> bytes:
    """Molto2 clear sentinel: an all-zero seed, zero-padded WITHOUT the 80 marker (§5.4)."""
    return ecb_encrypt(key, b"\x00" * (length + (-length % BLOCK)))


def is_clear_seed(ciphertext: bytes, key: bytes) -> bool:
    size = len(ciphertext)
    if not size or size % BLOCK or size > _padded_len(MAX_SEED):
        return False
    return not any(ecb_decrypt(key, ciphertext))


def open_title(ciphertext: bytes, key: bytes) -> str:
    raw = open_payload(ciphertext, key, max_len=MAX_TITLE, what="title")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadData("title: not UTF-8") from None


def open_new_key(ciphertext: bytes, key: bytes) -> bytes:
    """The derived key a set-key command carries: ``00`` ‖ 16 bytes, padded (§5.4)."""
    plain = open_payload(
        ciphertext, key, max_len=len(NEW_KEY_PREFIX) + NEW_KEY_LEN, what="new customer key"
    )
    if len(plain) != len(NEW_KEY_PREFIX) + NEW_KEY_LEN or not plain.startswith(NEW_KEY_PREFIX):
        raise BadData("new customer key: not 00 followed by a 16-byte key")
    return plain.removeprefix(NEW_KEY_PREFIX)


# --- responses -------------------------------------------------------------------------------


class _Reader:
    """Fields of a fixed-layout block, in order, each length checked."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.what, self.offset = data, what, 0

    def take(self, n: int) -> bytes:
        left = len(self.data) - self.offset
        if n > left:
            raise BadData(f"{self.what}: {n} bytes needed at offset {self.offset}, {left} left")
        chunk = self.data[self.offset : self.offset + n]
        self.offset += n
        return chunk


@dataclass(frozen=True)
class InfoBlock:
    serial: str
    clock: int


INFO_HEADER = bytes(3)  # uninterpreted by every tool; OT2 sends zeros (§4.2)
INFO_SEPARATOR = bytes(2)  # likewise


def parse_info(data: bytes) -> InfoBlock:
    """Header, N, serial (ASCII), separator, u32 clock (§4.2). Bytes after the clock are
    ignored, as every tool does: nobody knows whether some firmware sends more."""
    reader = _Reader(data, "info block")
    reader.take(len(INFO_HEADER))
    (length,) = reader.take(1)
    serial = reader.take(length).decode("ascii", errors="replace")
    reader.take(len(INFO_SEPARATOR))
    clock = int.from_bytes(reader.take(4), "big")
    return InfoBlock(serial, clock)


def build_info(serial: str, clock: int) -> bytes:
    raw = serial.encode("ascii")
    return INFO_HEADER + bytes([len(raw)]) + raw + INFO_SEPARATOR + _u32(clock)


@dataclass(frozen=True)
class PublicBlock:
    """A Molto2 profile's public data (§5.3)."""

    flag: int
    title: str
    time_a: int
    time_b: int
    algorithm: int
    step: int  # seconds, the same byte as TimeStep's code for 30 and 60
    digits: int
    seed_present: bool


PUBLIC_FLAG_WRITTEN = 0x20  # the flag byte KR saw on a written slot (§5.3)

# flag, title (16, zero-padded), time A, time B, algorithm, step, digits, seed present
_PUBLIC_BODY = struct.Struct(">B16sIIBBBB")
_TITLE_FIELD = 16


def parse_public_block(data: bytes) -> PublicBlock:
    """``95 1F { 70 1D <29 bytes> }``; any other envelope or size is a :class:`TlvError`."""
    body = Tlv.unpack(Tag.SEED_INFO, Tlv.unpack(Tag.PUBLIC_DATA, data))
    if len(body) != _PUBLIC_BODY.size:
        raise TlvError(f"public block: {len(body)} bytes, expected {_PUBLIC_BODY.size}")
    flag, title, time_a, time_b, algorithm, step, digits, present = _PUBLIC_BODY.unpack(body)
    name = title.rstrip(b"\x00").decode("utf-8", errors="replace")
    return PublicBlock(flag, name, time_a, time_b, algorithm, step, digits, present == 1)


def build_public_block(block: PublicBlock) -> bytes:
    body = _PUBLIC_BODY.pack(
        block.flag,
        block.title.encode("utf-8")[:_TITLE_FIELD],
        block.time_a,
        block.time_b,
        block.algorithm,
        block.step,
        block.digits,
        1 if block.seed_present else 0,
    )
    return bytes(Tlv.nest(Tag.PUBLIC_DATA, Tlv(Tag.SEED_INFO, body)))
