"""Google Authenticator export QR codes (``otpauth-migration://offline?data=…``) written and
read as seed files (docs/formats.md §4).

The encoder is the mirror of ``otp.migration``'s hand-written protobuf reader: a few varints and
length-delimited fields, so no protobuf runtime is needed. A large export is split the way the
app splits its own — several QR codes sharing one batch id, each small enough for a phone camera
to read off a screen — and written as one PNG per code.
"""

from __future__ import annotations

import secrets
import urllib.parse
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

from keyfob.errors import KeyfobError, UriError
from keyfob.formats.seeds import RowError, SeedItem, SeedRecord
from keyfob.formats.writers import credential_to_record, record_to_credential
from keyfob.otp import Algorithm, OtpType
from keyfob.otp.migration import decode_migration, merge_batches

MAX_PER_CODE = 10
"""Accounts per QR code, as the app itself puts them: a code of ten 20-byte accounts stays near
version 20, which phone cameras read from a laptop screen without trouble."""
MAX_DATA_BYTES = 900
"""…and a byte bound for long names or 64-byte SHA512 secrets, so no code grows past that."""

_ALGORITHM = {Algorithm.SHA1: 1, Algorithm.SHA256: 2, Algorithm.SHA512: 3}
_DIGITS = {6: 1, 8: 2}
_TYPE = {OtpType.HOTP: 1, OtpType.TOTP: 2}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_migration(rec: SeedRecord) -> None:
    """Why a row cannot go into an export QR code, or nothing: the format has no period field
    (every TOTP entry is 30 s) and knows only 6 and 8 digits."""
    if rec.type is OtpType.TOTP and rec.period != 30:
        raise KeyfobError(f"period {rec.period} s: Google Authenticator exports are 30 s only")
    if rec.digits not in _DIGITS:
        raise KeyfobError(f"{rec.digits} digits: Google Authenticator exports hold 6 or 8")


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32 values go out as 64-bit two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _account(rec: SeedRecord) -> bytes:
    check_migration(rec)
    cred = record_to_credential(rec)
    body = _field(1, cred.secret) + _field(2, cred.account.encode("utf-8"))
    if cred.issuer:
        body += _field(3, cred.issuer.encode("utf-8"))
    body += _field(4, _ALGORITHM[cred.algorithm]) + _field(5, _DIGITS[cred.digits])
    body += _field(6, _TYPE[cred.type])
    if cred.type is OtpType.HOTP:
        body += _field(7, cred.counter)
    return _field(1, body)


def _chunks(accounts: list[bytes]) -> list[list[bytes]]:
    chunks: list[list[bytes]] = [[]]
    for acc in accounts:
        last = chunks[-1]
        if last and (len(last) >= MAX_PER_CODE or sum(map(len, last)) + len(acc) > MAX_DATA_BYTES):
            chunks.append(last := [])
        last.append(acc)
    return chunks


def encode_migration(records: list[SeedRecord]) -> list[str]:
    """The ``otpauth-migration://`` URIs of one export, one per QR code (a row that does not
    fit raises, naming its serial)."""
    accounts = []
    for rec in records:
        try:
            accounts.append(_account(rec))
        except KeyfobError as exc:
            raise KeyfobError(f"token {rec.serial}: {exc.message}") from None
    if not accounts:
        raise KeyfobError("nothing to export", hint="an export QR code needs one account at least")
    chunks = _chunks(accounts)
    batch_id = secrets.randbits(31)
    uris = []
    for index, chunk in enumerate(chunks):
        payload = b"".join(chunk) + _field(2, 1) + _field(3, len(chunks)) + _field(4, index)
        payload += _field(5, batch_id)
        data = urllib.parse.quote(b64encode(payload).decode("ascii"), safe="")
        uris.append(f"otpauth-migration://offline?data={data}")
    return uris


def image_paths(out: Path, count: int) -> list[Path]:
    """``export.png`` for one code; ``export-1.png`` … ``export-N.png`` for several."""
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i}{out.suffix or '.png'}") for i in range(1, count + 1)]


def read_migration(payloads: list[str]) -> Iterator[SeedItem]:
    """The rows of one export from its QR payloads (or ``otpauth-migration://`` text lines),
    checked complete by :func:`~keyfob.otp.migration.merge_batches`."""
    try:
        batches = [decode_migration(p) for p in payloads]
        creds = merge_batches(batches)
    except UriError as exc:
        yield RowError("export", exc.message, exc.hint)
        return
    seen: set[str] = set()
    for number, cred in enumerate(creds, 1):
        where = f"account {number}"
        try:
            rec = credential_to_record(cred, where)
            if rec.serial in seen:
                raise KeyfobError(f"the name {rec.serial!r} appears twice in the export")
        except KeyfobError as exc:
            yield RowError(where, exc.message, exc.hint)
            continue
        seen.add(rec.serial)
        yield rec
