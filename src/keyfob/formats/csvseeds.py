"""CSV seed files: Microsoft Entra's hardware OATH upload format, and the OATH/vendor CSVs of
privacyIDEA, LinOTP, NetIQ and PingID (formats.md §7).

Both readers report every bad row with its line number and keep going, so that a dry run shows
all problems at once; the importer then refuses the whole file if any row failed.
"""

from __future__ import annotations

import csv
import io
import re

from keyfob.errors import KeyfobError, SeedFileError
from keyfob.formats.seeds import RowError, SeedFile, SeedRecord
from keyfob.otp import Algorithm, OtpType, parse_secret, to_base32

ENTRA_HEADER = ["upn", "serial number", "secret key", "time interval", "manufacturer", "model"]
_ENTRA_KEYS = {"upn", "serialnumber", "secretkey", "timeinterval", "manufacturer", "model"}
_B32_CHARS = re.compile(r"^[A-Za-z2-7]+$")


def _text(data: bytes | str) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError:
        raise SeedFileError("the CSV file is not UTF-8 text", hint="save it as CSV UTF-8") from None


def _norm(name: str) -> str:
    return re.sub(r"[\s\"'_-]+", "", name).lower()


def is_entra_header(line: str) -> bool:
    cols = {_norm(c) for c in next(csv.reader([line]), [])}
    return {"serialnumber", "secretkey"} <= cols


def read_entra_csv(data: bytes | str) -> SeedFile:
    """``upn,serial number,secret key,time interval,manufacturer,model`` and its variants."""
    text = _text(data)
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    records: list[SeedRecord] = []
    errors: list[RowError] = []
    for row in reader:
        if any(c.strip() for c in row):
            header = [_norm(c) for c in row]
            break
    if header is None:
        raise SeedFileError("the CSV file is empty")
    missing = {"serialnumber", "secretkey"} - set(header)
    if missing:
        raise SeedFileError(
            "line 1: not an Entra OATH CSV header",
            hint="expected: upn,serial number,secret key,time interval,manufacturer,model",
        )
    col = {name: i for i, name in enumerate(header) if name in _ENTRA_KEYS}
    seen: dict[str, int] = {}
    prev_end = reader.line_num
    for row in reader:
        line = prev_end + 1
        prev_end = reader.line_num
        if not any(c.strip() for c in row):
            continue
        where = f"line {line}"

        def get(name: str, row: list[str] = row) -> str:
            i = col.get(name)
            return row[i].strip() if i is not None and i < len(row) else ""

        try:
            serial = get("serialnumber")
            if not serial:
                raise KeyfobError("serial number is empty")
            # Entra allows only a-z, A-Z, 2-7; trailing '=' padding is harmless, so drop it.
            secret_text = get("secretkey").rstrip("=")
            if not secret_text:
                raise KeyfobError("secret key is empty")
            if not _B32_CHARS.match(secret_text):
                bad = next(i for i, ch in enumerate(secret_text) if not _B32_CHARS.match(ch))
                raise KeyfobError(
                    f"secret key is not base32: character {secret_text[bad]!r} at position "
                    f"{bad + 1} (Entra accepts only a-z, A-Z and 2-7)"
                )
            if len(secret_text) > 128:
                raise KeyfobError("secret key is longer than Entra's 128 characters")
            secret = parse_secret(secret_text, "base32")
            interval_text = get("timeinterval") or "30"
            if interval_text not in ("30", "60"):
                raise KeyfobError(f"time interval {interval_text!r} is not 30 or 60")
            if serial in seen:
                raise KeyfobError(f"serial {serial} already appears on line {seen[serial]}")
            seen[serial] = line
            upn = get("upn").replace("''", "'") or None
            records.append(
                SeedRecord(
                    serial=serial,
                    secret=secret,
                    period=int(interval_text),
                    upn=upn,
                    manufacturer=get("manufacturer") or None,
                    model=get("model") or None,
                    where=where,
                )
            )
        except KeyfobError as exc:
            errors.append(RowError(where, exc.message))
    return SeedFile("azure-csv", tuple(records), tuple(errors))


def write_entra_csv(records: list[SeedRecord]) -> str:
    """Entra's upload format: TOTP/SHA1 only, base32 secrets, 30 or 60 s (others refused)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ENTRA_HEADER)
    for rec in records:
        if rec.type is not OtpType.TOTP or rec.algorithm is not Algorithm.SHA1 or rec.digits != 6:
            raise SeedFileError(f"token {rec.serial}: Entra accepts only 6-digit TOTP with SHA1")
        if rec.period not in (30, 60):
            raise SeedFileError(f"token {rec.serial}: Entra accepts only 30 or 60 s periods")
        writer.writerow(
            [
                (rec.upn or "").replace("'", "''"),
                rec.serial,
                to_base32(rec.secret),
                rec.period,
                rec.manufacturer or "keyfob",
                rec.model or "keyfob",
            ]
        )
    return out.getvalue()


def read_oath_csv(data: bytes | str) -> SeedFile:
    """``serial, hexkey[, hotp|totp[, digits[, period]]]`` (privacyIDEA/LinOTP/NetIQ) and
    ``serial, hexkey, counter`` (PingID). ``#`` starts a comment; the default is HOTP, 6, 30."""
    text = _text(data)
    records: list[SeedRecord] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"line {number}"
        cols = [c.strip() for c in next(csv.reader([line]))]
        try:
            if len(cols) < 2:
                raise KeyfobError("expected at least: serial, hex key")
            serial, key_text = cols[0], cols[1]
            if not serial:
                raise KeyfobError("serial is empty")
            secret = parse_secret(key_text, "hex")
            otp_type, digits, period, counter = OtpType.HOTP, 6, 30, 0
            if len(cols) > 2 and cols[2]:
                kind = cols[2].lower()
                if kind.isdigit():
                    counter = int(kind)  # PingID: serial,hexsecret,counter
                elif kind in ("hotp", "totp"):
                    otp_type = OtpType(kind)
                else:
                    raise KeyfobError(f"token type {cols[2]!r} is not hotp or totp")
            if len(cols) > 3 and cols[3]:
                if not cols[3].isdigit() or not 6 <= int(cols[3]) <= 10:
                    raise KeyfobError(f"digits {cols[3]!r} is not 6 to 10")
                digits = int(cols[3])
            if len(cols) > 4 and cols[4]:
                if not cols[4].isdigit() or int(cols[4]) <= 0:
                    raise KeyfobError(f"period {cols[4]!r} is not a positive number of seconds")
                period = int(cols[4])
            if serial in seen:
                raise KeyfobError(f"serial {serial} already appears on line {seen[serial]}")
            seen[serial] = number
            records.append(
                SeedRecord(
                    serial=serial,
                    secret=secret,
                    type=otp_type,
                    digits=digits,
                    period=period,
                    counter=counter,
                    where=where,
                )
            )
        except KeyfobError as exc:
            errors.append(RowError(where, exc.message))
    return SeedFile("oath-csv", tuple(records), tuple(errors))
