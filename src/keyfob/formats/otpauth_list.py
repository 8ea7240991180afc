"""A text file of ``otpauth://`` URIs, one per line (``#`` comments allowed).

The token's serial is the URI's non-standard ``serial`` parameter when present, else its label,
so that re-importing the same list is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterator

from keyfob.formats.csvseeds import TextSource, content_lines, text_stream
from keyfob.formats.seeds import SeedFile, SeedItem, SeedRecord, numbered_rows
from keyfob.formats.writers import credential_to_record
from keyfob.otp import parse_otpauth


def read_otpauth_list(data: TextSource) -> SeedFile:
    return SeedFile.collect("otpauth", iter_otpauth_list(data))


def iter_otpauth_list(data: TextSource) -> Iterator[SeedItem]:
    """The list's URIs in file order, read as they are consumed."""
    lines = content_lines(text_stream(data, newline=None, errors="replace"))
    return numbered_rows(lines, _record)


def _record(line: str, where: str) -> SeedRecord:
    return credential_to_record(parse_otpauth(line), where)
