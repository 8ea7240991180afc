"""One entry point for every seed-file format: detect it, read it, say what is wrong per row."""

from __future__ import annotations

from enum import StrEnum

from keyfob.errors import SeedFileError
from keyfob.formats.csvseeds import is_entra_header, read_entra_csv, read_oath_csv
from keyfob.formats.otpauth_list import read_otpauth_list
from keyfob.formats.pskc import MacCheck, read_pskc
from keyfob.formats.seeds import SeedFile


class SeedFormat(StrEnum):
    PSKC = "pskc"
    AZURE_CSV = "azure-csv"
    OATH_CSV = "oath-csv"
    VENDOR_CSV = "vendor-csv"  # alias of oath-csv (design §6)
    OTPAUTH = "otpauth"


def detect_format(data: bytes) -> SeedFormat:
    """Guess the format from the content (never from the file name)."""
    head = data[:4096].decode("utf-8-sig", errors="replace").lstrip()
    if head.startswith("<"):
        return SeedFormat.PSKC
    first = next(
        (ln.strip() for ln in head.splitlines() if ln.strip() and not ln.strip().startswith("#")),
        "",
    )
    if first.lower().startswith("otpauth://"):
        return SeedFormat.OTPAUTH
    if is_entra_header(first):
        return SeedFormat.AZURE_CSV
    if "," in first or " " in first:
        return SeedFormat.OATH_CSV
    raise SeedFileError(
        "cannot tell the seed file's format",
        hint="choose one with --format pskc|azure-csv|oath-csv|otpauth",
    )


def read_seed_file(
    data: bytes,
    fmt: SeedFormat | str | None = None,
    *,
    password: str | None = None,
    key: bytes | None = None,
    mac_check: MacCheck | str = MacCheck.STRICT,
) -> SeedFile:
    """Read any supported seed file; file-level problems raise, row-level ones are collected."""
    if not data.strip():
        raise SeedFileError("the seed file is empty")
    kind = SeedFormat(fmt) if fmt else detect_format(data)
    if kind is SeedFormat.PSKC:
        return read_pskc(data, password=password, key=key, mac_check=mac_check)
    if kind is SeedFormat.AZURE_CSV:
        return read_entra_csv(data)
    if kind is SeedFormat.OTPAUTH:
        return read_otpauth_list(data)
    return read_oath_csv(data)
