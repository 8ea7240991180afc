"""Google Authenticator export QR codes: ``otpauth-migration://offline?data=…``.

The payload is a protobuf ``MigrationPayload`` (docs/formats.md §4.2). We decode it with the small
wire-format reader below rather than the ``protobuf`` runtime: the schema is three tiny messages
that Google never published, so there is no official ``.proto`` to generate code from; the
reader is ~60 lines, skips unknown fields (newer exports add field 8) by wire type as protobuf
itself does, and keeps ``otp`` free of a large dependency. The test suite encodes payloads with
the real ``protobuf`` runtime as an independent reference.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

from keyfob.errors import KeyfobError, UriError
from keyfob.otp.credential import Credential, OtpType
from keyfob.otp.hotp import Algorithm
from keyfob.otp.secret import check_secret_length

SCHEME = "otpauth-migration://"

_ALGORITHMS = {0: Algorithm.SHA1, 1: Algorithm.SHA1, 2: Algorithm.SHA256, 3: Algorithm.SHA512}
_DIGITS = {0: 6, 1: 6, 2: 8}
_TYPES = {0: OtpType.TOTP, 1: OtpType.HOTP, 2: OtpType.TOTP}


@dataclass(frozen=True)
class MigrationBatch:
    """One QR code of an export: its accounts and its place in a multi-QR batch."""

    credentials: tuple[Credential, ...]
    version: int = 0
    batch_size: int = 1
    batch_index: int = 0
    batch_id: int = 0


class _WireError(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _WireError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) and skip what we cannot use by wire type."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _WireError("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise _WireError("length-delimited field runs past the end")
            yield number, wire, buf[pos : pos + length]
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise _WireError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise _WireError("fixed-size field runs past the end")


def _int32(value: int) -> int:
    """Negative int32 values are sent as 64-bit two's complement varints."""
    value &= (1 << 64) - 1
    if value >= 1 << 63:
        value -= 1 << 64
    return value


def _text(value: int | bytes, what: str) -> str:
    if not isinstance(value, bytes):
        raise _WireError(f"{what} is not a string")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise _WireError(f"{what} is not valid UTF-8") from None


def _credential(msg: bytes, index: int) -> Credential:
    secret = b""
    name = issuer = ""
    algo = digits = otp_type = counter = 0
    for number, wire, value in _fields(msg):
        if number == 1 and wire == 2:
            secret = bytes(value)
        elif number == 2 and wire == 2:
            name = _text(value, "name")
        elif number == 3 and wire == 2:
            issuer = _text(value, "issuer")
        elif number == 4 and wire == 0:
            algo = int(value)
        elif number == 5 and wire == 0:
            digits = int(value)
        elif number == 6 and wire == 0:
            otp_type = int(value)
        elif number == 7 and wire == 0:
            counter = int(value)
    where = f"account {index + 1}" + (f" ({name})" if name else "")
    if algo not in _ALGORITHMS:
        kind = "MD5" if algo == 4 else f"algorithm code {algo}"
        raise UriError(
            f"migration payload, {where}: {kind} is not supported",
            hint="only SHA1, SHA256 and SHA512 credentials can be used",
        )
    # Some exporters write digits as the plain number rather than the enum.
    n_digits = digits if digits in (6, 7, 8) else _DIGITS.get(digits)
    if n_digits is None:
        raise UriError(f"migration payload, {where}: unknown digit count code {digits}")
    if otp_type not in _TYPES:
        raise UriError(f"migration payload, {where}: unknown OTP type code {otp_type}")
    try:
        check_secret_length(secret, allow_short=True)
    except KeyfobError as exc:
        raise UriError(f"migration payload, {where}: {exc.message}") from None
    account = name
    # Exports often repeat the issuer in the name ("Issuer:account"): drop the duplicate.
    if issuer and name.startswith(issuer + ":"):
        account = name[len(issuer) + 1 :].strip()
    return Credential(
        secret=secret,
        type=_TYPES[otp_type],
        issuer=issuer,
        account=account,
        algorithm=_ALGORITHMS[algo],
        digits=n_digits,
        counter=counter if _TYPES[otp_type] is OtpType.HOTP else 0,
    )


def _data_param(uri: str) -> str:
    _, _, query = uri.partition("?")
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == "data":
            return value
    raise UriError(
        "otpauth-migration URI has no data parameter",
        hint="scan the export QR code again; the whole URI is needed",
    )


def _b64(data: str) -> bytes:
    # No plus-decoding: a raw '+' is base64, not a space ("plus problem"). A space can only
    # come from a form decoder that already turned '+' into ' ', so map it back.
    text = unquote(data).strip().replace(" ", "+").replace("-", "+").replace("_", "/")
    text = text.rstrip("=")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise UriError(
            "otpauth-migration URI: data is not valid base64",
            hint="the QR code was probably cut off; scan it again",
        ) from None


def decode_migration(uri: str) -> MigrationBatch:
    """Decode one export QR code into its accounts and batch position."""
    text = uri.strip()
    if not text.lower().startswith(SCHEME):
        raise UriError(
            "not an otpauth-migration URI",
            hint="Google Authenticator exports start with otpauth-migration://offline",
        )
    raw = _b64(_data_param(text))
    creds: list[Credential] = []
    version, size, index, batch_id = 0, 1, 0, 0
    try:
        for number, wire, value in _fields(raw):
            if number == 1 and wire == 2:
                creds.append(_credential(bytes(value), len(creds)))
            elif wire == 0 and number in (2, 3, 4, 5):
                v = _int32(int(value))
                if number == 2:
                    version = v
                elif number == 3:
                    size = v
                elif number == 4:
                    index = v
                else:
                    batch_id = v
    except _WireError as exc:
        raise UriError(
            f"otpauth-migration payload is corrupt: {exc}", hint="scan the export QR code again"
        ) from None
    if not creds:
        raise UriError(
            "otpauth-migration payload holds no accounts", hint="scan the export QR code again"
        )
    return MigrationBatch(tuple(creds), version, max(size, 1), index, batch_id)


def merge_batches(batches: list[MigrationBatch]) -> list[Credential]:
    """Join the QR codes of one multi-QR export, checking that none is missing or foreign."""
    if not batches:
        return []
    ids = {b.batch_id for b in batches}
    if len(ids) > 1:
        raise UriError(
            "these export QR codes belong to different exports (batch ids differ)",
            hint="scan the codes of one export only",
        )
    size = batches[0].batch_size
    seen = {b.batch_index for b in batches}
    missing = sorted(set(range(size)) - seen)
    if missing:
        shown = ", ".join(str(i + 1) for i in missing)
        raise UriError(
            f"export QR code(s) {shown} of {size} are missing",
            hint="scan every QR code that Google Authenticator shows",
        )
    ordered = sorted({b.batch_index: b for b in batches}.values(), key=lambda b: b.batch_index)
    return [c for b in ordered for c in b.credentials]
