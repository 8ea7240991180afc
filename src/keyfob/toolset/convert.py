"""``keyfob convert``: seed files from any format keyfob reads into any format it writes.

Three promises, because a seed file is a box of secrets: a row the target cannot hold is never
dropped or changed silently (it is refused with its row and reason, or skipped on request and
reported); the output appears whole or not at all (written to a temporary file beside it and
renamed); and it is never less protected than the input — a password-encrypted PSKC becomes an
encrypted PSKC again, or plaintext only when the caller says ``--plaintext``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from keyfob.errors import KeyfobError, SeedFileError
from keyfob.formats import gauth
from keyfob.formats.csvseeds import write_entra_csv
from keyfob.formats.pskc import write_plain_pskc, write_pskc
from keyfob.formats.seedfile import SeedFormat, detect_format, stream_seed_file
from keyfob.formats.seeds import RowError, RowWarning, SeedItem, SeedRecord
from keyfob.formats.writers import check_oath_csv, write_oath_csv, write_otpauth_list
from keyfob.otp import Algorithm, OtpType


class Format(StrEnum):
    """Every format ``keyfob convert`` reads and writes."""

    PSKC = "pskc"
    AZURE_CSV = "azure-csv"
    OATH_CSV = "oath-csv"
    OTPAUTH = "otpauth"
    MIGRATION = "migration"  # Google Authenticator export QR codes (PNG), or their URIs


_BY_SUFFIX = {
    ".xml": Format.PSKC,
    ".pskc": Format.PSKC,
    ".pskcxml": Format.PSKC,
    ".png": Format.MIGRATION,
    ".txt": Format.OTPAUTH,
    ".uri": Format.OTPAUTH,
    ".uris": Format.OTPAUTH,
}
_IMAGE_MAGIC = (gauth.PNG_MAGIC, b"\xff\xd8\xff")  # PNG, JPEG


@dataclass(frozen=True)
class Source:
    """The input as read: its rows, its format, and whether it was encrypted."""

    format: Format
    records: tuple[SeedRecord, ...]
    errors: tuple[RowError, ...]
    encrypted: bool


@dataclass
class Outcome:
    """What a conversion did: the files written, the rows written, and those skipped."""

    written: list[Path] = field(default_factory=list)
    rows: int = 0
    skipped: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)


def detect(data: bytes) -> Format:
    """The format from the content (never the file name): images are export QR codes."""
    if data.startswith(_IMAGE_MAGIC):
        return Format.MIGRATION
    head = data[:4096].decode("utf-8-sig", errors="replace").lstrip()
    if head.lower().startswith("otpauth-migration://"):
        return Format.MIGRATION
    kind = detect_format(data)
    return Format.OATH_CSV if kind is SeedFormat.VENDOR_CSV else Format(kind.value)


def target_format(out: Path, given: Format | None) -> Format:
    """``--to``, else the output's suffix; a ``.csv`` could be either CSV, so it must be said."""
    if given is not None:
        return given
    found = _BY_SUFFIX.get(out.suffix.lower())
    if found is None:
        raise KeyfobError(
            f"cannot tell the output format from {out.name!r}",
            hint="choose one with --to pskc|azure-csv|oath-csv|otpauth|migration",
        )
    return found


def _payloads(paths: list[Path], datas: list[bytes]) -> list[str]:
    from keyfob.formats import qr  # the image stack loads only for images

    found: list[str] = []
    for path, data in zip(paths, datas, strict=True):
        if data.startswith(_IMAGE_MAGIC):
            found += qr.decode_image(data)
        else:
            text = data.decode("utf-8-sig", errors="replace")
            found += [ln.strip() for ln in text.splitlines() if ln.strip()[:1] not in ("", "#")]
        if not found:
            raise SeedFileError(f"{path.name}: no export QR code or URI in it")
    return found


def read_source(paths: list[Path], fmt: Format | None, password: str | None) -> Source:
    """Every row of the input file(s); several files only for export QR images."""
    datas = []
    for path in paths:
        try:
            datas.append(path.read_bytes())
        except OSError as exc:
            raise SeedFileError(f"{path.name}: cannot read it ({exc.strerror})") from None
    kind = fmt or detect(datas[0])
    if kind is Format.MIGRATION:
        items: Iterable[SeedItem] = gauth.read_migration(_payloads(paths, datas))
    elif len(paths) > 1:
        raise KeyfobError(
            f"{len(paths)} input files: only export QR images come in several files",
            hint="convert one seed file at a time",
        )
    else:
        items = stream_seed_file(datas[0], kind.value, password=password).items
    records, errors = [], []
    for item in items:
        if isinstance(item, SeedRecord):
            records.append(item)
        elif not isinstance(item, RowWarning):
            errors.append(item)
    encrypted = kind is Format.PSKC and b"EncryptedValue" in datas[0]
    return Source(kind, tuple(records), tuple(errors), encrypted)


def _entra(rec: SeedRecord) -> None:
    if rec.type is not OtpType.TOTP:
        raise KeyfobError("HOTP: Entra takes TOTP tokens only")
    if rec.algorithm is not Algorithm.SHA1:
        raise KeyfobError(f"{rec.algorithm.value}: Entra takes SHA1 only")
    if rec.digits != 6:
        raise KeyfobError(f"{rec.digits} digits: Entra takes 6-digit codes only")
    if rec.period not in (30, 60):
        raise KeyfobError(f"period {rec.period} s: Entra takes 30 or 60 s only")


def _no_drift(rec: SeedRecord) -> None:
    if rec.drift:
        raise KeyfobError(f"time drift of {rec.drift} steps: only PSKC has a field for it")


CHECKS: dict[Format, tuple[Callable[[SeedRecord], None], ...]] = {
    Format.PSKC: (),
    Format.AZURE_CSV: (_entra, _no_drift),
    Format.OATH_CSV: (check_oath_csv, _no_drift),
    Format.OTPAUTH: (_no_drift,),
    Format.MIGRATION: (gauth.check_migration, _no_drift),
}


def unfit(rec: SeedRecord, fmt: Format) -> str | None:
    """Why ``fmt`` cannot hold this row, or None when it can."""
    for check in CHECKS[fmt]:
        try:
            check(rec)
        except KeyfobError as exc:
            return exc.message
    return None


def _encode(records: list[SeedRecord], fmt: Format, password: str | None) -> list[bytes]:
    if fmt is Format.PSKC:
        return [write_pskc(records, password) if password else write_plain_pskc(records)]
    if fmt is Format.AZURE_CSV:
        return [write_entra_csv(records).encode("utf-8")]
    if fmt is Format.OATH_CSV:
        return [write_oath_csv(records).encode("utf-8")]
    if fmt is Format.OTPAUTH:
        return [write_otpauth_list(records).encode("utf-8")]
    from keyfob.formats import qr

    return [qr.encode_png(uri) for uri in gauth.encode_migration(records)]


def write_atomically(files: list[tuple[Path, bytes]]) -> None:
    """Each file to a private temporary file beside it (0600: it holds seeds), flushed to disk,
    then all renamed into place: a crash or a full disk leaves the old files, never half a new
    one."""
    temps: list[tuple[str, Path]] = []
    try:
        for path, data in files:
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            except OSError as exc:
                raise KeyfobError(f"cannot write {path}: {exc.strerror}") from None
            temps.append((tmp, path))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        for tmp, path in temps:
            os.replace(tmp, path)
        temps = []
    finally:
        for tmp, _ in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


class RowsRefused(KeyfobError):
    """Rows that cannot be read, or cannot go into the target; ``rows`` lists each with its
    reason (never a secret), so the CLI can print every one, not only the first."""

    def __init__(self, message: str, rows: list[RowError], hint: str) -> None:
        first = rows[0]
        super().__init__(f"{message} (first: {first.where}: {first.message})", hint=hint)
        self.rows = rows


@dataclass(frozen=True)
class ConvertJob:
    """One ``keyfob convert`` run, as the command line gave it."""

    inputs: list[Path]
    output: Path
    source_format: Format | None = None
    target: Format | None = None
    password: str | None = field(default=None, repr=False)  # of an encrypted input PSKC
    out_password: str | None = field(default=None, repr=False)  # to encrypt an output PSKC
    skip_unsupported: bool = False
    plaintext: bool = False


def _output_password(src: Source, target: Format, job: ConvertJob) -> str | None:
    """The password the output is encrypted with (PSKC only), refusing a weaker output."""
    if target is not Format.PSKC:
        if job.out_password:
            raise KeyfobError(
                f"--out-password: a {target.value} file cannot be encrypted",
                hint="only PSKC output is encrypted; convert --to pskc",
            )
        if src.encrypted and not job.plaintext:
            raise KeyfobError(
                f"the input is an encrypted PSKC file and a {target.value} file holds its "
                "seeds in plaintext",
                hint="pass --plaintext to write it anyway, or convert --to pskc",
            )
        return None
    if src.encrypted:
        return job.out_password or job.password  # the input's own password keeps it as safe
    return job.out_password


def _fitting(
    records: Iterable[SeedRecord], target: Format, skip: bool
) -> tuple[list[SeedRecord], list[RowError]]:
    """The rows the target holds, and the others with their reasons (refused unless ``skip``)."""
    keep: list[SeedRecord] = []
    refused: list[RowError] = []
    for rec in records:
        why = unfit(rec, target)
        if why is None:
            keep.append(rec)
        else:
            refused.append(RowError(rec.where or f"token {rec.serial}", why))
    if refused and not skip:
        raise RowsRefused(
            f"{len(refused)} row(s) cannot go into {target.value}",
            refused,
            hint="convert to a format that holds them (pskc holds everything), or pass "
            "--skip-unsupported to leave them out",
        )
    return keep, refused


def convert(job: ConvertJob) -> Outcome:
    """Read, check every row against the target, write atomically; nothing is written when a
    row cannot be read or (without ``skip_unsupported``) cannot be held."""
    target = target_format(job.output, job.target)
    src = read_source(job.inputs, job.source_format, job.password)
    if src.errors:
        raise RowsRefused(
            f"{len(src.errors)} row(s) of the input cannot be read; nothing was written",
            list(src.errors),
            hint="fix the input file (every row is listed above)",
        )
    password = _output_password(src, target, job)
    keep, skipped = _fitting(src.records, target, job.skip_unsupported)
    if not keep:
        raise KeyfobError("no row to write", hint="the input holds no token the target can take")
    outcome = Outcome(rows=len(keep), skipped=skipped)
    if target is Format.MIGRATION:
        outcome.warnings = [
            RowWarning(rec.where, f"serial {rec.serial!r} is not kept (an export names accounts)")
            for rec in keep
            if rec.label and rec.label != rec.serial
        ]
    blobs = _encode(keep, target, password)
    paths = [job.output]
    if target is Format.MIGRATION:
        paths = gauth.image_paths(job.output, len(blobs))
    write_atomically(list(zip(paths, blobs, strict=True)))
    outcome.written = paths
    return outcome
