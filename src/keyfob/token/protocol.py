"""The wire protocol of Token2 programmable tokens (token-protocol.md §4, §5, §7): constants,
APDU framing, TLV builders and parsers, status words. Pure: no I/O.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass
from enum import IntEnum

from keyfob.token.crypto import BLOCK, cbc_mac, ecb_encrypt, molto2_key, payload_pad


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
    SCREEN_LOCK = 0xD8
    DELETE_SEED = 0xE6
    FACTORY_RESET = 0x56


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
    SHA1 = 1
    SHA256 = 2


class DisplayTimeout(IntEnum):
    S15 = 0
    S30 = 1
    S60 = 2
    S120 = 3


class Sw(IntEnum):
    """Status words, with what they mean to a person holding the token."""

    OK = 0x9000
    WAIT_FOR_BUTTON = 0x9060
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


_MEANINGS = {
    Sw.OK: "success",
    Sw.WAIT_FOR_BUTTON: "accepted; press the ▲ button on the token to confirm",
    Sw.WRONG_LENGTH: "wrong length",
    Sw.AUTH_FAILED: "authentication failed, not authenticated, or the token is sealed",
    Sw.WRONG_DATA: "the token rejected the data",
    Sw.NOT_FOUND: "nothing stored there (empty profile)",
    Sw.WRONG_P1P2: "no such profile",
    Sw.CASE4_NOT_ALLOWED: "command must not carry an expected length",
    Sw.INS_NOT_SUPPORTED: "command not supported",
    Sw.CLA_NOT_SUPPORTED: "command class not supported",
}


def describe_sw(sw: int) -> str:
    if sw & 0xFF00 == 0x6300:
        return f"authentication failed, {sw & 0xFF} tries left"
    try:
        return f"{Sw(sw).meaning} ({sw:04X})"
    except ValueError:
        return f"unknown status {sw:04X}"


STEP_BYTES = {30: 0x1E, 60: 0x3C}
DIGIT_VALUES = (4, 6, 8, 10)
MAX_SEED = 63


@dataclass(frozen=True)
class Apdu:
    """A short command APDU: header, body, and an optional expected length."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def to_bytes(self) -> bytes:
        out = bytes([self.cla, self.ins, self.p1, self.p2])
        if self.data:
            if len(self.data) > 255:
                raise ValueError("short APDUs carry at most 255 bytes")
            out += bytes([len(self.data)]) + self.data
        elif self.le is None:
            out += b"\x00"  # P3 = 0: these devices always expect a fifth byte
        if self.le is not None:
            out += bytes([self.le & 0xFF])
        return out


def secure(ins: int, p1: int, p2: int, body: bytes, key: bytes) -> Apdu:
    """A CLA 84 command: MAC over ``80 INS P1 P2 len(body)`` ‖ body, appended (§3.4)."""
    mac = cbc_mac(key, bytes([Cla.PLAIN, ins, p1, p2, len(body)]) + body)
    return Apdu(Cla.SECURE, ins, p1, p2, body + mac)


def check_mac(cla_ins_p1_p2: bytes, body_with_mac: bytes, key: bytes) -> bool:
    body, mac = body_with_mac[:-4], body_with_mac[-4:]
    header = bytes([Cla.PLAIN]) + cla_ins_p1_p2[1:4] + bytes([len(body)])
    return hmac.compare_digest(cbc_mac(key, header + body), mac)


# --- commands ----------------------------------------------------------------------------


def get_info(molto2: bool = False) -> Apdu:
    """Single-profile tokens ask for tags 02 and 11; the Molto2 sends no body."""
    return (
        Apdu(Cla.PLAIN, Ins.GET_INFO, 0, 0)
        if molto2
        else Apdu(Cla.PLAIN, Ins.GET_INFO, 0, 0, b"\x02\x11")
    )


def get_challenge(short: bool = False) -> Apdu:
    """``80 4B 08 00 01 00`` (token2_config.py form) or ``80 4B 08 00 00`` (short form)."""
    return (
        Apdu(Cla.PLAIN, Ins.GET_CHALLENGE, 0x08, 0)
        if short
        else Apdu(Cla.PLAIN, Ins.GET_CHALLENGE, 0x08, 0, b"\x00")
    )


def auth_answer(challenge: bytes, key: bytes) -> bytes:
    if len(challenge) != 8:
        raise ValueError("challenges are 8 bytes")
    return ecb_encrypt(key, challenge + b"\x00" * 8)


def answer_challenge(challenge: bytes, key: bytes) -> Apdu:
    return Apdu(Cla.PLAIN, Ins.ANSWER_CHALLENGE, 0, 0, auth_answer(challenge, key))


def _u32(value: int) -> bytes:
    return struct.pack(">I", value & 0xFFFFFFFF)


def single_config_tlv(
    clock: int, algorithm: HmacAlgorithm, step: int, display: DisplayTimeout = DisplayTimeout.S30
) -> bytes:
    """The full 19-byte single-profile config TLV (§4.3); there is no digits field."""
    return (
        bytes([Tag.SYS_CONFIG, 0x11, Tag.DISPLAY_TIMEOUT, 1, display, Tag.UTC_TIME, 4])
        + _u32(clock)
        + bytes(
            [Tag.TOTP_PARAM, 6, Tag.TOTP_HMAC, 1, algorithm, Tag.TIME_STEP, 1, STEP_BYTES[step]]
        )
    )


def molto2_config_tlv(
    clock: int,
    algorithm: HmacAlgorithm,
    digits: int,
    step: int,
    display: DisplayTimeout = DisplayTimeout.S60,
) -> bytes:
    """The 22-byte Molto2 config TLV (§5.2)."""
    if digits not in DIGIT_VALUES:
        raise ValueError(f"Molto2 shows 4, 6, 8 or 10 digits, not {digits}")
    return (
        bytes([Tag.SYS_CONFIG, 0x14, Tag.DISPLAY_TIMEOUT, 1, display, Tag.UTC_TIME, 4])
        + _u32(clock)
        + bytes(
            [
                Tag.TOTP_PARAM,
                9,
                Tag.TOTP_HMAC,
                1,
                algorithm,
                Tag.DIGITS,
                1,
                digits,
                Tag.TIME_STEP,
                1,
                STEP_BYTES[step],
            ]
        )
    )


def molto2_sync_tlv(clock: int) -> bytes:
    return bytes([Tag.SYS_CONFIG, 6, Tag.UTC_TIME, 4]) + _u32(clock)


def write_single_config(
    clock: int, algorithm: HmacAlgorithm, step: int, display: DisplayTimeout, key: bytes
) -> Apdu:
    return secure(Ins.WRITE_CONFIG, 0, 0, single_config_tlv(clock, algorithm, step, display), key)


def seed_ciphertext(seed: bytes, key: bytes) -> bytes:
    if not 1 <= len(seed) <= MAX_SEED:
        raise ValueError(f"seeds are 1 to {MAX_SEED} bytes, not {len(seed)}")
    return ecb_encrypt(key, payload_pad(seed))


def write_seed(seed: bytes, key: bytes, profile: int = 0) -> Apdu:
    return secure(Ins.WRITE_SEED, 0x01, profile, seed_ciphertext(seed, key), key)


def clear_seed_ciphertext(length: int, key: bytes) -> bytes:
    """Molto2 clear sentinel: an all-zero seed, zero-padded WITHOUT the 80 marker (§5.4)."""
    return ecb_encrypt(key, b"\x00" * (length + (-length % BLOCK)))


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
    return secure(Ins.WRITE_CONFIG, 0x01, profile, tlv, key)


def sync_molto2_time(profile: int, clock: int, key: bytes) -> Apdu:
    return secure(Ins.WRITE_CONFIG, 0x01, profile, molto2_sync_tlv(clock), key)


def write_title(profile: int, title: str, key: bytes) -> Apdu:
    raw = title.encode("utf-8")
    if not 1 <= len(raw) <= 12:
        raise ValueError("titles are 1 to 12 bytes of UTF-8")
    return secure(Ins.WRITE_TITLE, 0, profile, ecb_encrypt(key, payload_pad(raw)), key)


def set_customer_key(new_customer_key: bytes, current_key: bytes) -> Apdu:
    plain = b"\x00" + molto2_key(new_customer_key) + b"\x80" + b"\x00" * 14
    return secure(Ins.SET_CUSTOMER_KEY, 0, 0, ecb_encrypt(current_key, plain), current_key)


def read_public_block(profile: int) -> Apdu:
    """Case 3 only: an appended Le makes the Molto2 answer 6FFB."""
    return Apdu(Cla.PLAIN, Ins.GET_INFO, 0, profile, bytes([Tag.SEED_INFO]))


def delete_seed(profile: int) -> Apdu:
    return Apdu(Cla.PLAIN, Ins.DELETE_SEED, 0, profile)


def factory_reset() -> Apdu:
    return Apdu(Cla.PLAIN, Ins.FACTORY_RESET, 0, 0)


# --- responses ---------------------------------------------------------------------------


@dataclass(frozen=True)
class InfoBlock:
    serial: str
    clock: int


def parse_info(data: bytes) -> InfoBlock:
    """3 header bytes, N, serial (ASCII), 2 separator bytes, u32 clock (§4.2)."""
    if len(data) < 4:
        raise ValueError("info block too short")
    n = data[3]
    if len(data) < 4 + n + 6:
        raise ValueError("info block too short for its serial length")
    serial = data[4 : 4 + n].decode("ascii", errors="replace")
    (clock,) = struct.unpack(">I", data[6 + n : 10 + n])
    return InfoBlock(serial, clock)


def build_info(serial: str, clock: int) -> bytes:
    raw = serial.encode("ascii")
    return b"\x00\x00\x00" + bytes([len(raw)]) + raw + b"\x00\x00" + _u32(clock)


@dataclass(frozen=True)
class PublicBlock:
    """A Molto2 profile's public data (§5.3)."""

    flag: int
    title: str
    time_a: int
    time_b: int
    algorithm: int
    step: int
    digits: int
    seed_present: bool


def parse_public_block(data: bytes) -> PublicBlock:
    if len(data) != 33 or data[:4] != bytes([Tag.PUBLIC_DATA, 0x1F, Tag.SEED_INFO, 0x1D]):
        raise ValueError("unexpected public block envelope")
    body = data[4:]
    title = body[1:17].rstrip(b"\x00").decode("utf-8", errors="replace")
    time_a, time_b = struct.unpack(">II", body[17:25])
    return PublicBlock(body[0], title, time_a, time_b, body[25], body[26], body[27], body[28] == 1)


def build_public_block(block: PublicBlock) -> bytes:
    title = block.title.encode("utf-8")[:16].ljust(16, b"\x00")
    body = (
        bytes([block.flag])
        + title
        + struct.pack(">II", block.time_a, block.time_b)
        + bytes([block.algorithm, block.step, block.digits, 1 if block.seed_present else 0])
    )
    return bytes([Tag.PUBLIC_DATA, 0x1F, Tag.SEED_INFO, 0x1D]) + body
