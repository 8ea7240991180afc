"""Fuzz targets shared by the coverage-guided harnesses (``fuzz/fuzz_*.py``, atheris) and the
bounded property tests of the normal suite (``tests/property/``, hypothesis).

Each target takes raw bytes, feeds them to one parser keyfob exposes to hostile input, and
checks the parser's contract: it either returns something well formed or raises the error type
the layer above turns into a clean refusal (``KeyfobError`` → one CLI line or a 400 with a
hint; RADIUS ``Drop`` → a silently discarded datagram; a card answers a status word). Anything
else — ``IndexError``, ``UnicodeDecodeError``, a 500 — is a bug, and the harness reports it.
Keeping the targets in one place means a crash atheris finds is replayed by the suite with the
same code path (see ``tests/property/test_fuzz_regressions.py``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import cache

from keyfob.errors import KeyfobError
from keyfob.otp import OtpType
from keyfob.otp.migration import decode_migration
from keyfob.otp.payload import parse_payload
from keyfob.otp.secret import SecretEncoding, parse_secret, to_base32
from keyfob.otp.uri import build_otpauth, parse_otpauth

Target = Callable[[bytes], None]


def _text(data: bytes) -> str:
    """Scanned or typed text: what a QR decoder or a terminal hands over (never bytes that
    are not text, so undecodable input is replaced, as the CLI's reader would)."""
    return data.decode("utf-8", errors="replace")


def _refused(exc: KeyfobError) -> None:
    """A refusal must say what was wrong: a message and, where the class has one, a hint."""
    assert exc.message, f"{type(exc).__name__} without a message"


# --- otp: URIs and secrets ------------------------------------------------------------------


def otpauth(data: bytes) -> None:
    """``otpauth://`` parse; anything accepted builds a canonical URI that reads back equal."""
    text = _text(data)
    try:
        cred = parse_otpauth(text, allow_short=True)
    except KeyfobError as exc:
        _refused(exc)
        return
    again = parse_otpauth(build_otpauth(cred), allow_short=True)
    assert again.secret == cred.secret
    assert (again.type, again.algorithm, again.digits) == (cred.type, cred.algorithm, cred.digits)
    if cred.type is OtpType.TOTP:  # a HOTP URI carries no period: it means nothing there
        assert again.period == cred.period
    else:
        assert again.counter == cred.counter


def migration_uri(data: bytes) -> None:
    """``otpauth-migration://`` as scanned text (prefix, query and base64 all hostile)."""
    try:
        decode_migration(_text(data))
    except KeyfobError as exc:
        _refused(exc)


def migration_wire(data: bytes) -> None:
    """The protobuf wire reader itself: arbitrary bytes as the ``data=`` payload."""
    payload = base64.b64encode(data).decode()
    try:
        batch = decode_migration(f"otpauth-migration://offline?data={payload}")
    except KeyfobError as exc:
        _refused(exc)
        return
    assert batch.credentials and batch.batch_size >= 1
    for cred in batch.credentials:
        assert cred.secret


def payload(data: bytes) -> None:
    """Any scanned text through the classifier (otpauth, migration, Microsoft push, other)."""
    try:
        parse_payload(_text(data), allow_short=True)
    except KeyfobError as exc:
        _refused(exc)


def secret(data: bytes) -> None:
    """Base32/hex secrets; an accepted secret survives its base32 form and a hex form."""
    text = _text(data)
    for encoding in SecretEncoding:
        try:
            raw = parse_secret(text, encoding, allow_short=True)
        except KeyfobError as exc:
            _refused(exc)
            continue
        assert raw
        assert parse_secret(to_base32(raw), SecretEncoding.BASE32, allow_short=True) == raw
        assert parse_secret("hex:" + raw.hex(), allow_short=True) == raw


# --- formats: seed files --------------------------------------------------------------------


def _seed_file(fmt: str | None, data: bytes, **kw: object) -> None:
    from keyfob.formats.seedfile import read_seed_file

    try:
        loaded = read_seed_file(data, fmt, **kw)  # type: ignore[arg-type]
    except KeyfobError as exc:
        _refused(exc)
        return
    for row in (*loaded.errors, *loaded.warnings):
        assert row.message
    for record in loaded.records:
        record.checked()  # every accepted row is one the inventory can store


def seed_any(data: bytes) -> None:
    """Format detection, then whichever reader it picks."""
    _seed_file(None, data)


def pskc(data: bytes) -> None:
    """PSKC XML (python-pskc behind keyfob's DTD/entity screen), with and without a password."""
    _seed_file("pskc", data)
    _seed_file("pskc", data, password="fuzz")


def entra_csv(data: bytes) -> None:
    _seed_file("azure-csv", data)


def oath_csv(data: bytes) -> None:
    _seed_file("oath-csv", data)


def otpauth_list(data: bytes) -> None:
    _seed_file("otpauth", data)


# --- token: APDUs on both sides -------------------------------------------------------------


def apdu_client(data: bytes) -> None:
    """Everything the client side reads from a card: framing, status words, TLVs, the config,
    the info and public blocks. Only ``TokenError`` (a ``KeyfobError``) may come out."""
    from keyfob.token import protocol as p
    from keyfob.token.tlv import Tlv

    for parse in (
        p.split_response,
        p.parse_info,
        p.parse_public_block,
        p.WireConfig.parse,
        Tlv.parse_list,
        Tlv.parse_dict,
    ):
        try:
            parse(data)
        except KeyfobError as exc:
            _refused(exc)
    try:
        apdu = p.Apdu.parse(data)
    except KeyfobError as exc:
        _refused(exc)
        return
    if apdu.data and len(apdu.data) <= 255:
        assert p.Apdu.parse(apdu.to_bytes()) == apdu


@cache
def _cards() -> tuple[object, ...]:
    from keyfob.token.emulator import create
    from keyfob.token.models import by_name

    return tuple(
        create(by_name(name), host_clock=lambda: 1_800_000_000.0)
        for name in ("OTPC-P2", "C302", "Molto2", "Molto2v2")
    )


def _check_answer(answer: bytes) -> None:
    assert isinstance(answer, bytes) and len(answer) >= 2, answer
    assert answer[-2] in (0x61, 0x62, 0x63, 0x67, 0x69, 0x6A, 0x6C, 0x6D, 0x6E, 0x6F, 0x90), answer[
        -2:
    ].hex()


def emulator_raw(data: bytes) -> None:
    """The card side, unauthenticated: any bytes in, a response with a status word out."""
    from keyfob.token.emulator import Card

    for card in _cards():
        assert isinstance(card, Card)
        _check_answer(card.process(data))


def emulator_secure(data: bytes) -> None:
    """The card side past the MAC: an authenticated session sends a correctly MACed command
    whose INS, P1, P2 and body are the fuzzer's, so the codecs behind the MAC are reached."""
    from keyfob.token import protocol as p
    from keyfob.token.emulator import Card

    if len(data) < 3:
        return
    ins, p1, p2, body = data[0], data[1], data[2], data[3 : 3 + 255 - p.MAC_LEN]
    for card in _cards():
        assert isinstance(card, Card)
        card.authenticated = True
        _check_answer(card.process(p.secure(ins, p1, p2, body, card.key).to_bytes()))


# --- RADIUS ---------------------------------------------------------------------------------

RADIUS_SECRET = b"fuzz-shared-secret"


def radius(data: bytes) -> None:
    """An Access-Request datagram from a known client: decoded, or dropped with a reason."""
    from keyfob.server.radius.packets import Drop, check_layout, parse

    try:
        length = check_layout(data)
    except Drop:
        pass
    else:
        assert 20 <= length <= len(data)
    for strict in (False, True):
        try:
            parse(data, RADIUS_SECRET, require_message_authenticator=strict)
        except Drop as drop:
            assert drop.reason


def radius_signed(data: bytes) -> None:
    """The same with a valid Message-Authenticator, so hostile attributes get past the MAC."""
    import hashlib
    import hmac
    import struct

    from keyfob.server.radius.packets import Drop, parse

    attrs = data[:2000]
    body = attrs + bytes([80, 18]) + bytes(16)
    header = bytes([1, data[0] if data else 0]) + struct.pack("!H", 20 + len(body))
    packet = header + bytes(16) + body
    mac = hmac.new(RADIUS_SECRET, packet, hashlib.md5).digest()
    packet = packet[:-16] + mac
    try:
        parse(packet, RADIUS_SECRET, require_message_authenticator=True)
    except Drop as drop:
        assert drop.reason


TARGETS: dict[str, Target] = {
    "otpauth": otpauth,
    "migration_uri": migration_uri,
    "migration_wire": migration_wire,
    "payload": payload,
    "secret": secret,
    "seed_any": seed_any,
    "pskc": pskc,
    "entra_csv": entra_csv,
    "oath_csv": oath_csv,
    "otpauth_list": otpauth_list,
    "apdu_client": apdu_client,
    "emulator_raw": emulator_raw,
    "emulator_secure": emulator_secure,
    "radius": radius,
    "radius_signed": radius_signed,
}
