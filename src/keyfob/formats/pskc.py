"""PSKC (RFC 6030) seed files, read and written through python-pskc.

python-pskc does the format (encryption, PBKDF2, MACs, vendor quirks); this module adds what an
importer needs around it: a refusal of any DTD before parsing (entity-expansion "billion laughs"
and external entities: PSKC never needs a DTD), typed errors that name the key, the ValueMAC
policy (strict / soft / none), and the mapping to :class:`SeedRecord`.

A file is read as a stream, one ``KeyPackage`` at a time (:class:`_Document`): python-pskc's own
``PSKC(file)`` builds the whole tree, a deep copy of it for signature checks and a ``Key`` per
key, 600 MiB for a 40 MB file of 100 000 keys. Each package is still parsed and decrypted by
python-pskc's parser, under a container that holds the file's header, so every quirk it knows
applies as before.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from enum import StrEnum
from typing import IO, Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as safe_xml
import pskc
from defusedxml import DefusedXmlException
from pskc.exceptions import DecryptionError, KeyDerivationError, ParseError, PSKCError
from pskc.key import Key
from pskc.parser import PSKCParser
from pskc.xml import remove_namespaces

from keyfob.errors import KeyfobError, SeedFileError
from keyfob.formats.seeds import RowError, RowWarning, SeedFile, SeedItem, SeedRecord
from keyfob.otp import Algorithm, OtpType

MAX_BYTES = 256 * 1024 * 1024


class MacCheck(StrEnum):
    """What a bad ValueMAC does: reject the file, warn, or nothing."""

    STRICT = "strict"
    SOFT = "soft"
    NONE = "none"


def _source(source: bytes | IO[bytes]) -> IO[bytes]:
    """The file as a stream from where it stands, refused whole if it is over the size limit."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    start = stream.tell()
    size = stream.seek(0, io.SEEK_END) - start
    stream.seek(start)
    if size > MAX_BYTES:
        raise SeedFileError(f"PSKC file is larger than {MAX_BYTES // 2**20} MiB")
    return stream


def _events(stream: IO[bytes]) -> Iterator[tuple[str, Element]]:
    """The file's start and end events, 16 KiB read at a time, through defusedxml: a DTD or an
    entity declaration is refused when the parser meets it, before the root element, so before
    any key is read."""
    events = safe_xml.iterparse(
        stream,
        events=("start", "end"),
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    try:
        yield from events
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


_PACKAGES = ("KeyPackage", "Device")  # python-pskc: findall(container, "KeyPackage", "Device")
_HEADER = ("EncryptionKey", "EncryptionMethod", "MACMethod", "DigestMethod", "MACAlgorithm")
"""What python-pskc reads from the container itself to decrypt keys (the last four: drafts)."""


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


class _Document:
    """A PSKC file read one child of its root at a time.

    The children before the first key package (RFC 6030 puts ``EncryptionKey`` and
    ``MACMethod`` there) make the header: python-pskc reads them into ``container`` before the
    first key is parsed, and :meth:`unlock` sets its decryption key at the first key that needs
    one. Each key package is taken out of the tree as it ends, so the tree never holds more
    than one (and what the parser has read ahead of it). A header element after the first key
    cannot apply to the keys already read and is refused; a ``Signature`` after them is left
    unread, as keyfob never checks one."""

    def __init__(self, stream: IO[bytes], password: str | None, key: bytes | None) -> None:
        self._stream = stream
        self._password = password
        self._key = key
        self._header: list[Element] = []
        self.container: pskc.PSKC | None = None

    def packages(self) -> Iterator[tuple[pskc.PSKC, Element]]:
        """Each key package, complete, in file order, with the container of the header (read
        before the first)."""
        root: Element | None = None
        depth = 0
        for event, element in _events(self._stream):
            if event == "start":
                root = element if root is None else root
                depth += 1
                continue
            depth -= 1
            if depth != 1 or root is None:
                continue  # inside a child, or the root's own end
            root.remove(element)
            name = _local(element.tag)
            if name in _PACKAGES:
                if self.container is None:
                    self.container = self._open(root)
                yield self.container, element
            elif self.container is None:
                self._header.append(element)
            elif name in _HEADER:
                raise SeedFileError(
                    f"the PSKC file's {name} comes after its first key package",
                    hint="RFC 6030 puts EncryptionKey and MACMethod before the KeyPackages; "
                    "ask the vendor for a file in that order",
                )
        if root is not None and self.container is None:  # a file without key packages
            self.container = self._open(root)

    def _open(self, root: Element) -> pskc.PSKC:
        """The container of the header, its decryption key set (file-level problems raise)."""
        header = Element(root.tag, dict(root.attrib))
        header.extend(self._header)
        self._header = []
        container = pskc.PSKC()
        try:
            PSKCParser.parse_document(container, header)
        except ParseError as exc:
            raise SeedFileError(f"not a valid PSKC file: {exc}") from None
        except PSKCError as exc:
            raise SeedFileError(f"cannot read the PSKC file: {exc}") from None
        except (ValueError, TypeError) as exc:  # e.g. bad base64 in the header (fuzzing)
            raise SeedFileError(
                f"not a valid PSKC file: a value cannot be read ({type(exc).__name__})"
            ) from None
        return container

    def unlock(self, container: pskc.PSKC, keys: list[Key]) -> None:
        """Set the key that decrypts the file's values when these keys are the first that need
        it (python-pskc's ``is_encrypted``, which asks it of every key of a whole file)."""
        if container.encryption.key is not None or not _encrypted(keys):
            return
        if self._password is not None:
            _check_derivation(container)
            try:
                container.encryption.derive_key(self._password)
            except KeyDerivationError as exc:
                raise SeedFileError(f"cannot derive the key from the password: {exc}") from None
        elif self._key is not None:
            container.encryption.key = self._key
        else:
            name = container.encryption.key_name
            raise SeedFileError(
                "the PSKC file is encrypted" + (f" (key name {name!r})" if name else ""),
                hint="give the password (--password) or the pre-shared key in hex (--key)",
            )


def _encrypted(keys: list[Key]) -> bool:
    """Whether a value of these keys needs the decryption key (as ``Encryption.is_encrypted``)."""
    try:
        for key in keys:
            _ = key.secret, key.counter, key.time_offset, key.time_interval, key.time_drift
    except DecryptionError:
        return True
    return False


def _package_keys(container: pskc.PSKC, package: Element) -> list[Key]:
    """The keys of one key package, parsed by python-pskc as its ``PSKC(file)`` parses each
    package of a whole file. The container does not keep them: only the caller holds the keys,
    and their plaintext, until it has made its records."""
    remove_namespaces(package)
    device = container.add_device()
    try:
        PSKCParser.parse_key_package(device, package)
    finally:
        container.devices.clear()
    return device.keys


def read_pskc(
    data: bytes | IO[bytes],
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
    data: bytes | IO[bytes],
    *,
    password: str | None = None,
    key: bytes | None = None,
    mac_check: MacCheck | str = MacCheck.STRICT,
) -> Iterator[SeedItem]:
    """The file's keys in order, each read as it is consumed (a file object from where it
    stands). File-level problems raise; a header problem before the first key."""
    mac_check = MacCheck(mac_check)
    document = _Document(_source(data), password, key)
    index = 0
    seen: dict[str, int] = {}  # serial -> its key: a serial given twice is the second's error
    for container, package in document.packages():
        try:
            keys = _package_keys(container, package)
        except (PSKCError, ValueError, TypeError) as exc:  # e.g. bad base64 in a PlainValue
            index += 1
            yield RowError(f"key {index}", f"unreadable: {type(exc).__name__}: {exc}")
            continue
        document.unlock(container, keys)
        for item in keys:
            index += 1
            yield from _item(item, index, mac_check, seen)
    if index == 0:
        yield RowError("file", "the PSKC file holds no keys")


def _item(key: Any, index: int, mac_check: MacCheck, seen: dict[str, int]) -> Iterator[SeedItem]:
    """One python-pskc key as what a reader yields: a record (after a warning, when its
    ValueMAC was let through), or the row's error — also for a serial an earlier key gave,
    which the inventory could not hold twice."""
    try:
        record, mac_let_through = _record(key, index, mac_check)
    except SeedFileError as exc:
        where = exc.where or f"key {index}"
        yield RowError(where, exc.message.removeprefix(f"{where}: "), exc.hint)
        return
    except (PSKCError, ValueError, TypeError) as exc:
        yield RowError(f"key {index}", f"unreadable: {type(exc).__name__}: {exc}")
        return
    if record.serial in seen:
        message = f"serial {record.serial!r} already appears in key {seen[record.serial]}"
        yield RowError(record.where, message)
        return
    seen[record.serial] = index
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
