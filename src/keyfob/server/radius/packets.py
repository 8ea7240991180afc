"""RADIUS on the wire (RFC 2865, RFC 2869, RFC 5080), checked before anything is believed.

pyrad decodes packets and builds replies, with keyfob's own minimal dictionary (the file
``dictionary`` beside this module). pyrad is lenient where a server must not be: it reads an
attribute whose length runs past the packet as a shorter one, and accepts any number of
Message-Authenticators. :func:`check_layout` therefore walks the attributes first, and a packet
that is not exactly what RFC 2865 §3 and §5 describe is dropped before pyrad sees it.

The Blast-RADIUS rules (CVE-2024-3596, draft-ietf-radext-deprecating-radius) live in
:func:`parse` and :func:`encode_reply`: a Message-Authenticator is verified whenever present and
required unless the client is relaxed; Proxy-State without one is dropped; every reply carries
one as its first attribute.
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from functools import cache
from pathlib import Path

from pyrad.dictionary import Dictionary
from pyrad.packet import AuthPacket

from keyfob.server.inputs import forbidden_at

DICTIONARY = Path(__file__).with_name("dictionary")
HEADER = 20
MAX_LENGTH = 4096  # RFC 2865 §3
MAX_PASSWORD = 128  # RFC 2865 §5.2

USER_NAME, USER_PASSWORD, CHAP_PASSWORD, NAS_IP_ADDRESS = 1, 2, 3, 4
STATE, VENDOR_SPECIFIC, CALLING_STATION_ID, PROXY_STATE, EAP_MESSAGE = 24, 26, 31, 33, 79
MESSAGE_AUTHENTICATOR, NAS_IPV6_ADDRESS = 80, 95
MICROSOFT = 311
MS_CHAP_RESPONSE, MS_CHAP2_RESPONSE = 1, 25


class Code(IntEnum):
    ACCESS_REQUEST = 1
    ACCESS_ACCEPT = 2
    ACCESS_REJECT = 3
    ACCESS_CHALLENGE = 11


class DropReason(StrEnum):
    """Why a datagram got no answer: the label of ``keyfob_radius_dropped_total``."""

    UNKNOWN_CLIENT = "unknown_client"
    MALFORMED = "malformed"
    UNSUPPORTED_CODE = "unsupported_code"
    MISSING_MESSAGE_AUTHENTICATOR = "missing_message_authenticator"
    BAD_MESSAGE_AUTHENTICATOR = "bad_message_authenticator"
    BAD_AUTHENTICATOR = "bad_authenticator"
    PROXY_STATE_WITHOUT_MESSAGE_AUTHENTICATOR = "proxy_state_without_message_authenticator"
    CONFLICTING_RETRANSMISSION = "conflicting_retransmission"
    IN_PROGRESS = "in_progress"
    OVERLOAD = "overload"
    INTERNAL_ERROR = "internal_error"
    DIRECTORY_UNAVAILABLE = "directory_unavailable"  # no directory server answers


class Drop(Exception):
    """The datagram is discarded silently; ``reason`` is counted (never a value from it)."""

    def __init__(self, reason: DropReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


@cache
def dictionary() -> Dictionary:
    return Dictionary(str(DICTIONARY))


def check_layout(data: bytes) -> int:
    """The packet's length, if its header and every attribute add up exactly (else Drop).

    Octets past the Length field are padding and ignored (RFC 2865 §3); an attribute shorter
    than its own header or running past the end, or a second Message-Authenticator, or one
    that is not 16 octets, make the packet malformed."""
    if len(data) < HEADER:
        raise Drop(DropReason.MALFORMED)
    length: int = struct.unpack_from("!H", data, 2)[0]
    if length < HEADER or length > MAX_LENGTH or length > len(data):
        raise Drop(DropReason.MALFORMED)
    pos, seen_ma = HEADER, False
    while pos < length:
        if pos + 2 > length:
            raise Drop(DropReason.MALFORMED)
        kind, size = data[pos], data[pos + 1]
        if size < 2 or pos + size > length:
            raise Drop(DropReason.MALFORMED)
        if kind == MESSAGE_AUTHENTICATOR:
            if seen_ma or size != 18:
                raise Drop(DropReason.MALFORMED)
            seen_ma = True
        pos += size
    return length


@dataclass(frozen=True)
class Request:
    """An Access-Request that passed every check: what the modes need, raw values only."""

    packet: AuthPacket
    has_message_authenticator: bool
    user_name: str | None
    password: str | None  # decrypted PAP password; None when absent or undecodable
    state: bytes | None
    nas_address: str | None
    calling_station: str | None  # the end user's address, for VPNs: a rate-limit bucket
    method: str  # pap | chap | mschap | eap | none


def parse(data: bytes, secret: bytes, *, require_message_authenticator: bool) -> Request:
    """Decode and authenticate an Access-Request from a known client, or raise Drop."""
    length = check_layout(data)
    if data[0] != Code.ACCESS_REQUEST:
        raise Drop(DropReason.UNSUPPORTED_CODE)
    try:
        packet = AuthPacket(packet=data[:length], secret=secret, dict=dictionary())
    except Exception:  # pyrad raises several kinds on hostile input
        raise Drop(DropReason.MALFORMED) from None
    has_ma = MESSAGE_AUTHENTICATOR in packet
    if has_ma:
        if not packet.verify_message_authenticator():
            raise Drop(DropReason.BAD_MESSAGE_AUTHENTICATOR)
    elif PROXY_STATE in packet:
        raise Drop(DropReason.PROXY_STATE_WITHOUT_MESSAGE_AUTHENTICATOR)
    elif require_message_authenticator or EAP_MESSAGE in packet:  # RFC 3579 §3.2: EAP needs it
        raise Drop(DropReason.MISSING_MESSAGE_AUTHENTICATOR)
    password = _password(packet, secret)
    if password is None and USER_PASSWORD in packet and not has_ma:
        # Without a Message-Authenticator the hidden password is the only proof of the
        # secret: random octets after unhiding mean the client holds another secret.
        raise Drop(DropReason.BAD_AUTHENTICATOR)
    return Request(
        packet=packet,
        has_message_authenticator=has_ma,
        user_name=_text(_first(packet, USER_NAME)),
        password=password,
        state=_first(packet, STATE),
        nas_address=_nas_address(packet),
        calling_station=_text(_first(packet, CALLING_STATION_ID)),
        method=_method(packet),
    )


def _first(packet: AuthPacket, code: int | tuple[int, int]) -> bytes | None:
    values = packet.get(code)
    return bytes(values[0]) if values else None


def _text(raw: bytes | None) -> str | None:
    """UTF-8 text without control characters, or None."""
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text and forbidden_at(text) is None else None


def _password(packet: AuthPacket, secret: bytes) -> str | None:
    """RFC 2865 §5.2: unhide User-Password; None unless it is printable UTF-8 text."""
    hidden = _first(packet, USER_PASSWORD)
    if hidden is None or not hidden or len(hidden) % 16 or len(hidden) > MAX_PASSWORD:
        return None
    plain, last = bytearray(), packet.authenticator
    for i in range(0, len(hidden), 16):
        block = hidden[i : i + 16]
        pad = hashlib.md5(secret + last).digest()  # RFC 2865 §5.2 prescribes MD5
        plain += bytes(a ^ b for a, b in zip(block, pad, strict=True))
        last = block
    return _text(bytes(plain).rstrip(b"\x00"))


def _nas_address(packet: AuthPacket) -> str | None:
    for code, size in ((NAS_IP_ADDRESS, 4), (NAS_IPV6_ADDRESS, 16)):
        raw = _first(packet, code)
        if raw is not None and len(raw) == size:
            return str(ipaddress.ip_address(raw))
    return None


def _method(packet: AuthPacket) -> str:
    if EAP_MESSAGE in packet:
        return "eap"
    if (MICROSOFT, MS_CHAP_RESPONSE) in packet or (MICROSOFT, MS_CHAP2_RESPONSE) in packet:
        return "mschap"
    if CHAP_PASSWORD in packet:
        return "chap"
    return "pap" if USER_PASSWORD in packet else "none"


@dataclass(frozen=True)
class Answer:
    """What keyfob answers: a code and the few attributes it ever sends."""

    code: Code
    message: str | None = None
    state: bytes | None = None
    timeout: int | None = None


def encode_reply(request: Request, answer: Answer) -> bytes:
    """The reply datagram, signed, with Message-Authenticator as its FIRST attribute.

    pyrad's reply copies the request's Proxy-State (RFC 2865 §5.33) and puts a
    Message-Authenticator in front of everything; this checks that it did."""
    reply = request.packet.CreateReply()
    reply.code = int(answer.code)
    reply.add_message_authenticator()
    if answer.message:
        reply.AddAttribute("Reply-Message", answer.message[:253])
    if answer.state is not None:
        reply.AddAttribute("State", answer.state)
    if answer.timeout is not None:
        reply.AddAttribute("Session-Timeout", answer.timeout)
    raw: bytes = reply.ReplyPacket()
    if raw[HEADER] != MESSAGE_AUTHENTICATOR:  # pragma: no cover — a pyrad change would do it
        raise RuntimeError("Message-Authenticator is not the first attribute of the reply")
    return raw
