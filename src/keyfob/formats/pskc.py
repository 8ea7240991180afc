"""PSKC (RFC 6030) seed files, read and written through python-pskc.

python-pskc does the format (encryption, PBKDF2, MACs, vendor quirks); this module adds what an
importer needs around it: a refusal of any DTD before parsing (entity-expansion "billion laughs"
and external entities: PSKC never needs a DTD), typed errors that name the key, the ValueMAC
policy (strict / soft / none), and the mapping to :class:`SeedRecord`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import defusedxml.ElementTree as safe_xml
import pskc
from defusedxml import DefusedXmlException
from pskc.exceptions import DecryptionError, KeyDerivationError, ParseError, PSKCError

from keyfob.errors import KeyfobError, SeedFileError
from keyfob.formats.seeds import RowError, RowWarning, SeedFile, SeedItem, SeedRecord
from keyfob.otp import Algorithm, OtpType

MAX_BYTES = 256 * 1024 * 1024


class MacCheck(StrEnum):
    """What a bad ValueMAC does: reject the file, warn, or nothing."""

    STRICT = "strict"
    SOFT = "soft"
    NONE = "none"


def _screen(data: bytes) -> None:
    if len(data) > MAX_BYTES:
        raise SeedFileError(f"PSKC file is larger than {MAX_BYTES // 2**20} MiB")
    try:
        safe_xml.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise SeedFileError(
            "PSKC file contains a DTD or entity declarations; refused",
            hint="PSKC never needs a DTD; entity declarations are how XML bombs work",
        ) from None
    except safe_xml.ParseError as exc:
        raise SeedFileError(f"PSKC file is not well-formed XML ({exc})") from None
    except (LookupError, ValueError):  # expat: an unknown or multi-byte encoding="…" (fuzzing)
        raise SeedFileError(
            "PSKC file declares an encoding that does not exist",
            hint='save the file as UTF-8 (encoding="UTF-8" in its first line)',
        ) from None


def _otp_type(algorithm: str | None) -> OtpType | None:
    uri = (algorithm or "").strip().lower()
    for sep in (":", "#"):
        if uri.endswith(f"{sep}hotp"):
            return OtpType.HOTP
        if uri.endswith(f"{sep}totp"):
            return OtpType.TOTP
    return None


MAX_PBKDF2_ITERATIONS = 10_000_000
"""The most PBKDF2 iterations a file may ask for. The count is the file's to choose, so without a
bound a file asking for 2 000 000 000 keeps an import worker busy for hours. Real files use 1 000
(RFC 6030's example) to 100 000 (python-pskc's and keyfob's own exports); 10 million is 100 times
that, a few seconds of one core."""
MAX_PBKDF2_KEY_LENGTH = 64
"""Bytes of derived key: AES needs at most 32; PBKDF2's cost grows with the length asked for."""

_WRONG_KEY = ("Invalid padding", "IV does not match", "CMS key checksum error")


def _check_derivation(container: Any) -> None:
    """Refuse an unreasonable PBKDF2 cost before deriving anything (see the limits above)."""
    derivation = container.encryption.derivation
    iterations = derivation.pbkdf2_iterations
    if iterations is not None and not 1 <= iterations <= MAX_PBKDF2_ITERATIONS:
        raise SeedFileError(
            f"the PSKC file asks for {iterations} PBKDF2 iterations; keyfob derives keys with "
            f"at most {MAX_PBKDF2_ITERATIONS:,}",
            hint="ask the vendor for the file with a usual iteration count (1 000 to 1 000 000); "
            "a count this high is either a mistake or an attempt to tie up the server",
        )
    length = derivation.pbkdf2_key_length
    if length is not None and not 1 <= length <= MAX_PBKDF2_KEY_LENGTH:
        raise SeedFileError(
            f"the PSKC file asks for a {length}-byte PBKDF2 key (at most {MAX_PBKDF2_KEY_LENGTH})",
            hint="the KeyLength of the file's PBKDF2-params is wrong; ask the vendor for the file "
            "again",
        )


def _decrypt_error(exc: DecryptionError, where: str) -> SeedFileError:
    """What a failed decryption means to the person importing, and what to do about it."""
    reason = str(exc)
    if reason in _WRONG_KEY:
        return SeedFileError(
            "cannot decrypt: wrong password or key, or a damaged file",
            where=where,
            hint="check the password (--password) or pre-shared key (--key) that came with "
            "this file; if they are right, ask the vendor for the file again",
        )
    if "MAC" in reason:
        return SeedFileError(
            f"cannot decrypt: {reason} (the file was altered, or the password or key is wrong)",
            where=where,
            hint="check the password or key; with the right one, a MAC mismatch means the file "
            "was altered (use --mac-check soft to import anyway)",
        )
    return SeedFileError(f"cannot decrypt: {reason}", where=where)


def _secret(key: Any, mac_check: MacCheck) -> tuple[bytes | None, bool]:
    """The key's secret, and whether its ValueMAC failed and was let through (soft/none)."""
    try:
        return key.secret, False
    except DecryptionError as exc:
        if "MAC" not in str(exc) or mac_check is MacCheck.STRICT:
            raise
        # soft/none: decrypt without the MAC check the file failed.
        encrypted = key._secret  # python-pskc keeps the EncryptedValue here
        encrypted.mac_value = None
        return encrypted.get_value(key.device.pskc), mac_check is MacCheck.SOFT


def _algorithm(key: Any, where: str) -> tuple[OtpType, Algorithm]:
    otp_type = _otp_type(key.algorithm)
    if otp_type is None:
        raise SeedFileError(f"algorithm {key.algorithm!r} is not HOTP or TOTP", where=where)
    if not key.algorithm_suite:
        return otp_type, Algorithm.SHA1
    try:
        return otp_type, Algorithm.parse(key.algorithm_suite)
    except KeyfobError:
        raise SeedFileError(
            f"unsupported algorithm suite {key.algorithm_suite!r}", where=where
        ) from None


def _record(key: Any, index: int, mac_check: MacCheck) -> tuple[SeedRecord, bool]:
    """One key as a record, and whether its ValueMAC failed but was let through."""
    serial = (key.serial or key.id or "").strip()
    where = f"key {index}" + (f" (serial {serial})" if serial else "")
    otp_type, algorithm = _algorithm(key, where)
    if key.policy.unknown_policy_elements:
        raise SeedFileError(
            "unknown policy elements: RFC 6030 says the key must not be used", where=where
        )
    encoding = (key.response_encoding or "DECIMAL").upper()
    if encoding != "DECIMAL":
        raise SeedFileError(f"response encoding {encoding} is not decimal", where=where)
    try:
        secret, mac_let_through = _secret(key, mac_check)
        counter = key.counter or 0
        period = key.time_interval or 30
        drift = key.time_drift or 0
        t0 = key.time_offset or 0
    except DecryptionError as exc:
        raise _decrypt_error(exc, where) from None
    if not secret:
        raise SeedFileError(
            "no secret in this key (KeyReference-only keys cannot be imported)", where=where
        )
    if not serial:
        raise SeedFileError("no serial number and no key Id", where=where)
    if otp_type is OtpType.TOTP and t0:
        raise SeedFileError(f"Time (T0) of {t0} intervals is not supported (only 0)", where=where)
    record = SeedRecord(
        serial=serial,
        secret=bytes(secret),
        type=otp_type,
        algorithm=algorithm,
        digits=key.response_length or 6,
        period=period,
        counter=counter,
        drift=drift,
        manufacturer=key.manufacturer,
        model=key.model,
        label=key.friendly_name,
        upn=None,
        where=where,
    )
    try:
        return record.checked(), mac_let_through
    except KeyfobError as exc:
        raise SeedFileError(exc.message, where=where, hint=exc.hint) from None


def _open(data: bytes, password: str | None, key: bytes | None) -> Any:
    """The parsed container, with its decryption key set (file-level problems raise)."""
    _screen(data)
    try:
        container = pskc.PSKC(io.BytesIO(data))
    except ParseError as exc:
        raise SeedFileError(f"not a valid PSKC file: {exc}") from None
    except PSKCError as exc:
        raise SeedFileError(f"cannot read the PSKC file: {exc}") from None
    except (ValueError, TypeError) as exc:  # e.g. bad base64 in a PlainValue (found by fuzzing)
        raise SeedFileError(
            f"not a valid PSKC file: a value cannot be read ({type(exc).__name__})"
        ) from None
    if not container.encryption.is_encrypted:
        return container
    if password is not None:
        _check_derivation(container)
        try:
            container.encryption.derive_key(password)
        except KeyDerivationError as exc:
            raise SeedFileError(f"cannot derive the key from the password: {exc}") from None
    elif key is not None:
        container.encryption.key = key
    else:
        name = container.encryption.key_name
        raise SeedFileError(
            "the PSKC file is encrypted" + (f" (key name {name!r})" if name else ""),
            hint="give the password (--password) or the pre-shared key in hex (--key)",
        )
    return container


def read_pskc(
    data: bytes,
    *,
    password: str | None = None,
    key: bytes | None = None,
    mac_check: MacCheck | str = MacCheck.STRICT,
) -> SeedFile:
    """Every HOTP/TOTP key of a PSKC file; per-key problems are collected, not raised."""
    return SeedFile.collect(
        "pskc", iter_pskc(data, password=password, key=key, mac_check=mac_check)
    )


def iter_pskc(
    data: bytes,
    *,
    password: str | None = None,
    key: bytes | None = None,
    mac_check: MacCheck | str = MacCheck.STRICT,
) -> Iterator[SeedItem]:
    """The file's keys in order (python-pskc parses the whole file first: PSKC is XML)."""
    mac_check = MacCheck(mac_check)
    container = _open(data, password, key)
    if not container.keys:
        yield RowError("file", "the PSKC file holds no keys")
    for index, item in enumerate(container.keys, 1):
        try:
            record, mac_let_through = _record(item, index, mac_check)
        except SeedFileError as exc:
            where = exc.where or f"key {index}"
            yield RowError(where, exc.message.removeprefix(f"{where}: "), exc.hint)
            continue
        except (PSKCError, ValueError, TypeError) as exc:
            yield RowError(f"key {index}", f"unreadable: {type(exc).__name__}: {exc}")
            continue
        if mac_let_through:
            yield RowWarning(record.where, "ValueMAC does not match; imported anyway (soft)")
        yield record


def write_pskc(records: list[SeedRecord], password: str, *, iterations: int = 100_000) -> bytes:
    """An encrypted PSKC container (PBKDF2 password, AES-256-CBC, HMAC-SHA256 ValueMACs)."""
    if len(password) < 8:
        raise SeedFileError("the export password is too short", hint="use at least 8 characters")
    container = _container(records)
    container.encryption.setup_pbkdf2(
        password, iterations=iterations, algorithm="aes256-cbc", key_length=32
    )
    container.mac.setup(algorithm="hmac-sha256")
    out = io.BytesIO()
    container.write(out)
    return out.getvalue()


def write_plain_pskc(records: list[SeedRecord]) -> bytes:
    """A PSKC container with the secrets in the clear: only for ``keyfob convert`` from an
    input that was itself unprotected (it never weakens what it was given)."""
    out = io.BytesIO()
    _container(records).write(out)
    return out.getvalue()


def _container(records: list[SeedRecord]) -> Any:
    """One python-pskc key per record; the label, when there is one, as FriendlyName."""
    container = pskc.PSKC()
    for rec in records:
        algorithm = (
            "urn:ietf:params:xml:ns:keyprov:pskc:hotp"
            if rec.type is OtpType.HOTP
            else "urn:ietf:params:xml:ns:keyprov:pskc#totp"
        )
        k = container.add_key(
            id=rec.serial,
            serial=rec.serial,
            secret=rec.secret,
            algorithm=algorithm,
            response_encoding="DECIMAL",
            response_length=rec.digits,
            manufacturer=rec.manufacturer or "keyfob",
            algorithm_suite=f"HMAC-{rec.algorithm.value}",
        )
        if rec.type is OtpType.HOTP:
            k.counter = rec.counter
        else:
            k.time_offset = 0
            k.time_interval = rec.period
            k.time_drift = rec.drift
        if rec.model:
            k.model = rec.model
        if rec.label:
            k.friendly_name = rec.label
    return container
