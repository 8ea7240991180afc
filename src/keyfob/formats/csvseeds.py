"""CSV seed files: Microsoft Entra's hardware OATH upload format, and the OATH/vendor CSVs of
privacyIDEA, LinOTP, NetIQ and PingID (docs/formats.md §7).

Both readers report every bad row with its line number and keep going, so that a dry run shows
all problems at once; the importer then refuses the whole file if any row failed. They read the
file as they go (a generator over a text stream), so a 20 MB file is never in memory whole.

A cell written here that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab,
CR: OWASP "CSV injection") is written with a leading single quote, which Excel shows instead of
running; the Entra reader removes exactly that quote again, so our own export re-imports as it
was.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from keyfob.errors import KeyfobError, SeedFileError
from keyfob.formats.seeds import SeedFile, SeedItem, SeedRecord, numbered_rows
from keyfob.otp import Algorithm, OtpType, parse_secret, to_base32

ENTRA_HEADER = ["upn", "serial number", "secret key", "time interval", "manufacturer", "model"]
_ENTRA_KEYS = {"upn", "serialnumber", "secretkey", "timeinterval", "manufacturer", "model"}
_B32_CHARS = re.compile(r"^[A-Za-z2-7]+$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_QUOTED_START = frozenset("=+-@\t\r'")

TextSource = bytes | str | IO[bytes]


def text_stream(data: TextSource, *, newline: str | None = "", errors: str = "strict") -> IO[str]:
    """The file as text, decoded as it is read; Excel's UTF-8 BOM dropped."""
    if isinstance(data, str):
        return io.StringIO(data.removeprefix("\ufeff"), newline=newline)
    raw = io.BytesIO(data) if isinstance(data, bytes) else data
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors=errors, newline=newline)


def content_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, stripped text) of the lines that hold something: blank lines and ``#``
    comments are skipped, and still counted."""
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


def _decoded(lines: Iterable[str]) -> Iterator[str]:
    """Lines, with a decoding failure (found wherever it is in the file) as a file error."""
    try:
        yield from lines
    except UnicodeDecodeError:
        raise SeedFileError("the CSV file is not UTF-8 text", hint="save it as CSV UTF-8") from None


def neutralise(cell: str) -> str:
    """The cell as a spreadsheet shows it and never runs it. A cell that starts with a quote
    already gets one more, so that :func:`restore` can undo exactly this and nothing else."""
    return "'" + cell if cell.startswith((*_FORMULA_START, "'")) else cell


def restore(cell: str) -> str:
    """Undo :func:`neutralise` (a lone ``'`` before a formula character or a quote)."""
    return cell[1:] if len(cell) > 1 and cell[0] == "'" and cell[1] in _QUOTED_START else cell


def _norm(name: str) -> str:
    return re.sub(r"[\s\"'_-]+", "", name).lower()


def is_entra_header(line: str) -> bool:
    cols = {_norm(c) for c in next(csv.reader([line]), [])}
    return {"serialnumber", "secretkey"} <= cols


def read_entra_csv(data: TextSource) -> SeedFile:
    """``upn,serial number,secret key,time interval,manufacturer,model`` and its variants."""
    return SeedFile.collect("azure-csv", iter_entra_csv(data))


def _entra_columns(reader: Iterator[list[str]]) -> dict[str, int]:
    """The header row (the first non-blank one), as column name -> index."""
    header = next((row for row in reader if any(c.strip() for c in row)), None)
    if header is None:
        raise SeedFileError("the CSV file is empty")
    names = [_norm(c) for c in header]
    if not {"serialnumber", "secretkey"} <= set(names):
        raise SeedFileError(
            "line 1: not an Entra OATH CSV header",
            hint="expected: upn,serial number,secret key,time interval,manufacturer,model",
        )
    return {name: i for i, name in enumerate(names) if name in _ENTRA_KEYS}


def iter_entra_csv(data: TextSource) -> Iterator[SeedItem]:
    """The Entra CSV's rows in file order, read as they are consumed."""
    return numbered_rows(_entra_rows(data), _entra_record)


def _entra_rows(data: TextSource) -> Iterator[tuple[int, Callable[[str], str]]]:
    """After the header: (line where the row starts, its cells by column name), non-blank rows."""
    reader = csv.reader(_decoded(text_stream(data)))
    col = _entra_columns(reader)
    prev_end = reader.line_num
    for row in reader:
        line = prev_end + 1
        prev_end = reader.line_num
        if not any(c.strip() for c in row):
            continue

        def get(name: str, row: list[str] = row) -> str:
            i = col.get(name)
            return restore(row[i].strip()) if i is not None and i < len(row) else ""

        yield line, get


def _entra_secret(text: str) -> bytes:
    # Entra allows only a-z, A-Z, 2-7; trailing '=' padding is harmless, so drop it.
    text = text.rstrip("=")
    if not text:
        raise KeyfobError("secret key is empty")
    if not _B32_CHARS.match(text):
        bad = next(i for i, ch in enumerate(text) if not _B32_CHARS.match(ch))
        raise KeyfobError(
            f"secret key is not base32: character {text[bad]!r} at position "
            f"{bad + 1} (Entra accepts only a-z, A-Z and 2-7)"
        )
    if len(text) > 128:
        raise KeyfobError("secret key is longer than Entra's 128 characters")
    return parse_secret(text, "base32")


def _entra_record(get: Callable[[str], str], where: str) -> SeedRecord:
    serial = get("serialnumber")
    if not serial:
        raise KeyfobError("serial number is empty")
    secret = _entra_secret(get("secretkey"))
    interval_text = get("timeinterval") or "30"
    if interval_text not in ("30", "60"):
        raise KeyfobError(f"time interval {interval_text!r} is not 30 or 60")
    return SeedRecord(
        serial=serial,
        secret=secret,
        period=int(interval_text),
        upn=get("upn").replace("''", "'") or None,
        manufacturer=get("manufacturer") or None,
        model=get("model") or None,
        where=where,
    ).checked()


def write_entra_csv(records: list[SeedRecord]) -> str:
    """Entra's upload format: TOTP/SHA1 only, base32 secrets, 30 or 60 s (others refused).

    Text cells go through :func:`neutralise`: an exported file is opened in spreadsheets, and a
    UPN or serial such as ``=HYPERLINK(…)`` must show, not run."""
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
                neutralise((rec.upn or "").replace("'", "''")),
                neutralise(rec.serial),
                to_base32(rec.secret),
                rec.period,
                neutralise(rec.manufacturer or "keyfob"),
                neutralise(rec.model or "keyfob"),
            ]
        )
    return out.getvalue()


def read_oath_csv(data: TextSource) -> SeedFile:
    """``serial, hexkey[, hotp|totp[, digits[, period]]]`` (privacyIDEA/LinOTP/NetIQ) and
    ``serial, hexkey, counter`` (PingID). ``#`` starts a comment; the default is HOTP, 6, 30."""
    return SeedFile.collect("oath-csv", iter_oath_csv(data))


def iter_oath_csv(data: TextSource) -> Iterator[SeedItem]:
    """The OATH CSV's rows in file order, read as they are consumed."""
    lines = content_lines(_decoded(text_stream(data, newline=None)))
    return numbered_rows(lines, _oath_record)


def _whole(text: str, name: str) -> int:
    """A count from a cell: ASCII digits only, and short enough to be a real value."""
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise KeyfobError(f"{name} {text[:24]!r} is not a whole number")
    return int(text)


def _oath_record(line: str, where: str) -> SeedRecord:
    cols = [c.strip() for c in next(csv.reader([line]))]
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
            counter = _whole(kind, "counter")  # PingID: serial,hexsecret,counter
        elif kind in ("hotp", "totp"):
            otp_type = OtpType(kind)
        else:
            raise KeyfobError(f"token type {cols[2]!r} is not hotp or totp")
    if len(cols) > 3 and cols[3]:
        digits = _whole(cols[3], "digits")
    if len(cols) > 4 and cols[4]:
        period = _whole(cols[4], "period")
    return SeedRecord(
        serial=serial,
        secret=secret,
        type=otp_type,
        digits=digits,
        period=period,
        counter=counter,
        where=where,
    ).checked()
