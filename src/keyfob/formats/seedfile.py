"""One entry point for every seed-file format: detect it, read it, say what is wrong per row."""

from __future__ import annotations

import io
from collections.abc import Callable
from enum import StrEnum
from typing import IO, ParamSpec

from keyfob.errors import SeedFileError
from keyfob.formats.csvseeds import is_entra_header, iter_entra_csv, iter_oath_csv
from keyfob.formats.otpauth_list import iter_otpauth_list
from keyfob.formats.pskc import MacCheck, iter_pskc
from keyfob.formats.seeds import SeedFile, SeedStream

_HEAD = 4096


class SeedFormat(StrEnum):
    PSKC = "pskc"
    AZURE_CSV = "azure-csv"
    OATH_CSV = "oath-csv"
    VENDOR_CSV = "vendor-csv"  # alias of oath-csv (docs/design.md §6.1)
    OTPAUTH = "otpauth"


def detect_format(data: bytes) -> SeedFormat:
    """Guess the format from the content (never from the file name)."""
    head = data[:_HEAD].decode("utf-8-sig", errors="replace").lstrip()
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


def stream_seed_file(
    source: bytes | IO[bytes],
    fmt: SeedFormat | str | None = None,
    *,
    password: str | None = None,
    key: bytes | None = None,
    mac_check: MacCheck | str = MacCheck.STRICT,
) -> SeedStream:
    """Any supported seed file, read as its rows are consumed: a file object is never in memory
    whole (a PSKC file is parsed one key package at a time). ``source`` must be seekable (its
    start is read twice: to detect the format, then to read it). File-level problems raise,
    here or while reading."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    start = stream.tell()
    head = stream.read(_HEAD)
    stream.seek(start)
    if not head.strip():
        raise SeedFileError("the seed file is empty")
    kind = SeedFormat(fmt) if fmt else detect_format(head)
    if kind is SeedFormat.PSKC:
        items = iter_pskc(stream, password=password, key=key, mac_check=mac_check)
        return SeedStream("pskc", items)
    if kind is SeedFormat.AZURE_CSV:
        return SeedStream("azure-csv", iter_entra_csv(stream))
    if kind is SeedFormat.OTPAUTH:
        return SeedStream("otpauth", iter_otpauth_list(stream))
    return SeedStream("oath-csv", iter_oath_csv(stream))


_Args = ParamSpec("_Args")


def _whole(stream: Callable[_Args, SeedStream]) -> Callable[_Args, SeedFile]:
    """A reader with the stream reader's arguments that reads every row before it returns."""

    def read(*args: _Args.args, **kwargs: _Args.kwargs) -> SeedFile:
        return stream(*args, **kwargs).collect()

    return read


read_seed_file = _whole(stream_seed_file)
"""Any supported seed file, whole (the arguments of :func:`stream_seed_file`); file-level
problems raise, row-level ones are collected."""
