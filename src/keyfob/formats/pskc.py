"""PSKC (RFC 6030) seed files, read and written through python-pskc.

python-pskc does the format (encryption, PBKDF2, MACs, vendor quirks); this module adds what an
importer needs around it: a refusal of any DTD before parsing (entity-expansion "billion laughs"
and external entities: PSKC never needs a DTD), typed errors that name the key, the ValueMAC
policy (strict / soft / none), and the mapping to :class:`SeedRecord`.
"""

from __future__ import annotations

import io
from enum import StrEnum
from typing import Any

import defusedxml.ElementTree as safe_xml
import pskc
from defusedxml import DefusedXmlException
from pskc.exceptions import DecryptionError, KeyDerivationError, ParseError, PSKCError

from keyfob.errors import KeyfobError, SeedFileError
from keyfob.formats.seeds import RowError, SeedFile, SeedRecord
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


def _otp_type(algorithm: str | None) -> OtpType | None:
    uri = (algorithm or "").strip().lower()
    for sep in (":", "#"):
        if uri.endswith(f"{sep}hotp"):
            return OtpType.HOTP
        if uri.endswith(f"{sep}totp"):
            return OtpType.TOTP
    return None


def _secret(key: Any, mac_check: MacCheck, warnings: list[RowError], where: str) -> bytes | None:
    try:
        return key.secret
    except DecryptionError as exc:
        if "MAC" not in str(exc) or mac_check is MacCheck.STRICT:
            raise
        # soft/none: decrypt without the MAC check the file failed.
        encrypted = key._secret  # python-pskc keeps the EncryptedValue here
        encrypted.mac_value = None
        if mac_check is MacCheck.SOFT:
            warnings.append(RowError(where, "ValueMAC does not match; imported anyway (soft)"))
        return encrypted.get_value(key.device.pskc)


def _record(key: Any, index: int, mac_check: MacCheck, warnings: list[RowError]) -> SeedRecord:
    serial = (key.serial or key.id or "").strip()
    where = f"key {index}" + (f" (serial {serial})" if serial else "")
    otp_type = _otp_type(key.algorithm)
    if otp_type is None:
        raise SeedFileError(f"algorithm {key.algorithm!r} is not HOTP or TOTP", where=where)
    if key.policy.unknown_policy_elements:
        raise SeedFileError(
            "unknown policy elements: RFC 6030 says the key must not be used", where=where
        )
    algorithm = Algorithm.SHA1
    if key.algorithm_suite:
        try:
            algorithm = Algorithm.parse(key.algorithm_suite)
        except KeyfobError:
            raise SeedFileError(
                f"unsupported algorithm suite {key.algorithm_suite!r}", where=where
            ) from None
    encoding = (key.response_encoding or "DECIMAL").upper()
    if encoding != "DECIMAL":
        raise SeedFileError(f"response encoding {encoding} is not decimal", where=where)
    digits = key.response_length or 6
    if not 6 <= digits <= 10:
        raise SeedFileError(f"{digits}-digit codes are not supported (6 to 10)", where=where)
    try:
        secret = _secret(key, mac_check, warnings, where)
        counter = key.counter or 0
        period = key.time_interval or 30
        drift = key.time_drift or 0
        t0 = key.time_offset or 0
    except DecryptionError as exc:
        raise SeedFileError(
            f"cannot decrypt: {exc}",
            where=where,
            hint="check the password or key; a MAC mismatch means the file was "
            "altered (use --mac-check soft to import anyway)",
        ) from None
    if not secret:
        raise SeedFileError(
            "no secret in this key (KeyReference-only keys cannot be imported)", where=where
        )
    if not serial:
        raise SeedFileError("no serial number and no key Id", where=where)
    if otp_type is OtpType.TOTP and t0:
        raise SeedFileError(f"Time (T0) of {t0} intervals is not supported (only 0)", where=where)
    if period <= 0:
        raise SeedFileError(f"time interval {period} is not positive", where=where)
    return SeedRecord(
        serial=serial,
        secret=bytes(secret),
        type=otp_type,
        algorithm=algorithm,
        digits=digits,
        period=period,
        counter=counter,
        drift=drift,
        manufacturer=key.manufacturer,
        model=key.model,
        label=key.friendly_name,
        upn=None,
        where=where,
    )


def read_pskc(
    data: bytes,
    *,
    password: str | None = None,
    key: bytes | None = None,
    mac_check: MacCheck | str = MacCheck.STRICT,
) -> SeedFile:
    """Every HOTP/TOTP key of a PSKC file; per-key problems are collected, not raised."""
    mac_check = MacCheck(mac_check)
    _screen(data)
    try:
        container = pskc.PSKC(io.BytesIO(data))
    except ParseError as exc:
        raise SeedFileError(f"not a valid PSKC file: {exc}") from None
    except PSKCError as exc:
        raise SeedFileError(f"cannot read the PSKC file: {exc}") from None
    if container.encryption.is_encrypted:
        if password is not None:
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
    records: list[SeedRecord] = []
    errors: list[RowError] = []
    warnings: list[RowError] = []
    for index, item in enumerate(container.keys, 1):
        try:
            records.append(_record(item, index, mac_check, warnings))
        except SeedFileError as exc:
            errors.append(RowError(exc.where or f"key {index}", exc.message.split(": ", 1)[-1]))
        except (PSKCError, ValueError, TypeError) as exc:
            errors.append(RowError(f"key {index}", f"unreadable: {type(exc).__name__}: {exc}"))
    if not container.keys:
        errors.append(RowError("file", "the PSKC file holds no keys"))
    return SeedFile("pskc", tuple(records), tuple(errors), tuple(warnings))


def write_pskc(records: list[SeedRecord], password: str, *, iterations: int = 100_000) -> bytes:
    """An encrypted PSKC container (PBKDF2 password, AES-256-CBC, HMAC-SHA256 ValueMACs)."""
    if len(password) < 8:
        raise SeedFileError("the export password is too short", hint="use at least 8 characters")
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
    container.encryption.setup_pbkdf2(
        password, iterations=iterations, algorithm="aes256-cbc", key_length=32
    )
    container.mac.setup(algorithm="hmac-sha256")
    out = io.BytesIO()
    container.write(out)
    return out.getvalue()
