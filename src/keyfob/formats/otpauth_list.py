"""A text file of ``otpauth://`` URIs, one per line (``#`` comments allowed).

The token's serial is the URI's non-standard ``serial`` parameter when present, else its label,
so that re-importing the same list is idempotent.
"""

from __future__ import annotations

from keyfob.errors import KeyfobError
from keyfob.formats.seeds import RowError, SeedFile, SeedRecord
from keyfob.otp import OtpType, parse_otpauth


def read_otpauth_list(data: bytes | str) -> SeedFile:
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    records: list[SeedRecord] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"line {number}"
        try:
            cred = parse_otpauth(line)
            serial = dict(cred.extra).get("serial") or cred.label
            if not serial:
                raise KeyfobError("URI has no label and no serial parameter")
            if serial in seen:
                raise KeyfobError(f"serial {serial!r} already appears on line {seen[serial]}")
            seen[serial] = number
            records.append(
                SeedRecord(
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
                )
            )
        except KeyfobError as exc:
            errors.append(RowError(where, exc.message))
    return SeedFile("otpauth", tuple(records), tuple(errors))
