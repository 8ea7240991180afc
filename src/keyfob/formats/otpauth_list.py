"""A text file of ``otpauth://`` URIs, one per line (``#`` comments allowed).

The token's serial is the URI's non-standard ``serial`` parameter when present, else its label,
so that re-importing the same list is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterator

from keyfob.errors import KeyfobError
from keyfob.formats.csvseeds import TextSource, text_stream
from keyfob.formats.seeds import RowError, SeedFile, SeedItem, SeedRecord
from keyfob.otp import OtpType, parse_otpauth


def read_otpauth_list(data: TextSource) -> SeedFile:
    return SeedFile.collect("otpauth", iter_otpauth_list(data))


def iter_otpauth_list(data: TextSource) -> Iterator[SeedItem]:
    """The list's URIs in file order, read as they are consumed."""
    seen: dict[str, int] = {}
    for number, raw in enumerate(text_stream(data, newline=None, errors="replace"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"line {number}"
        try:
            record = _record(line, where)
            if record.serial in seen:
                raise KeyfobError(
                    f"serial {record.serial!r} already appears on line {seen[record.serial]}"
                )
        except KeyfobError as exc:
            yield RowError(where, exc.message, exc.hint)
            continue
        seen[record.serial] = number
        yield record


def _record(line: str, where: str) -> SeedRecord:
    cred = parse_otpauth(line)
    serial = dict(cred.extra).get("serial") or cred.label
    if not serial:
        raise KeyfobError("URI has no label and no serial parameter")
    return SeedRecord(
        serial=serial,
        secret=cred.secret,
        type=cred.type,
        algorithm=cred.algorithm,
        digits=cred.digits,
        period=cred.period,
        counter=cred.counter if cred.type is OtpType.HOTP else 0,
        label=cred.label,
        manufacturer=cred.issuer or None,
        where=where,
    ).checked()
