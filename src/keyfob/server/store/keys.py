"""Master keys: the ring that seals token secrets (AES-256-GCM, the token id as associated data).

Binding the token id as associated data means a ciphertext copied onto another token row does
not decrypt: an attacker with write access to the database cannot swap secrets between tokens.

Keys are identified by id (the first 4 bytes of a SHA-256 over the key), and every ciphertext
starts with the id of the key that sealed it. A ring holds several keys at once, so rows sealed
before, during and after a rotation all open. Which key *seals* is not decided here: the
database names it (``key_state``, see :mod:`keyfob.server.keyrotation`), so that every server
switches at the same instant as the rotation's transaction commits.

Where keys come from (:class:`KeySource`):

- a key file, one key per line as ``<id> <64 hex digits>`` (a file of one bare key, as written
  by keyfob before key ids, still reads). Keys are only ever *added* to the file, under an
  exclusive lock, by writing a complete new file and renaming it over the old one; a key leaves
  the file only when :func:`prune` has been told that no row uses it. A ``<file>.new`` left by
  an older keyfob's interrupted rotation is merged in, never overwritten;
- ``KEYFOB_MASTER_KEY``: one key, or several separated by commas (the first seals on a new
  database), so that servers can be given the next key before a rotation.

A running server re-reads its source whenever it meets a key id it does not hold.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyfob.errors import KeyfobError

_VERSION = 1
_NONCE = 12
_HEADER = "# keyfob master keys, one per line: <key id> <key, 64 hex digits>. Back this file up\n"
_HEADER2 = "# with the database: a key listed here may still open stored secrets.\n"


class MasterKeyError(KeyfobError):
    code = "master_key"


def key_id(key: bytes) -> str:
    """The id a ciphertext carries: 8 hex digits, not enough to learn anything about the key."""
    return hashlib.sha256(b"keyfob-master-key-id" + key).digest()[:4].hex()


def parse_key_text(text: str, source: str) -> bytes:
    """A 32-byte key as 64 hex digits or base64."""
    raw = text.strip()
    try:
        key = bytes.fromhex(raw) if len(raw) == 64 else base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error):
        key = b""
    if len(key) != 32:
        raise MasterKeyError(
            f"{source} is not a 32-byte key", hint="give 64 hex digits or base64 of 32 random bytes"
        )
    return key


def parse_key_list(text: str, source: str) -> list[bytes]:
    """Several keys separated by commas or white space, in the order given."""
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts:
        raise MasterKeyError(f"{source} is empty", hint="give 64 hex digits or base64 of 32 bytes")
    return [parse_key_text(p, f"{source} (key {i + 1})") for i, p in enumerate(parts)]


def blob_kid(blob: bytes) -> str:
    return blob[1:5].hex()


class KeySource:
    """Where a ring's keys come from; ``load`` returns every key it holds, by id."""

    describe = "the master key source"

    def load(self) -> dict[str, bytes]:
        raise NotImplementedError

    def preferred(self, keys: dict[str, bytes]) -> str:
        """The key a brand-new database seals with."""
        return next(iter(keys))


class EnvKeys(KeySource):
    describe = "KEYFOB_MASTER_KEY"

    def __init__(self, text: str) -> None:
        self._keys = {key_id(k): k for k in parse_key_list(text, "KEYFOB_MASTER_KEY")}

    def load(self) -> dict[str, bytes]:
        return dict(self._keys)


class FileKeys(KeySource):
    """A key file; see the module docstring for its format and how it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.describe = f"the key file {path}"

    def load(self) -> dict[str, bytes]:
        keys = read_key_file(self.path)
        keys.update(_legacy_staged(self.path))
        if not keys:
            raise MasterKeyError(
                f"{self.path} holds no key",
                hint="restore the key file from your backup; it was created at the first start",
            )
        return keys

    def preferred(self, keys: dict[str, bytes]) -> str:
        return next(reversed(keys))  # the newest line


class KeyRing:
    """Every key a server holds, by id; seals with a chosen id, opens whatever id a row names."""

    def __init__(self, keys: dict[str, bytes], source: KeySource | None = None) -> None:
        if not keys:
            raise MasterKeyError("no master key")
        self._source = source
        self._lock = threading.Lock()
        self._set(keys)
        self.preferred = source.preferred(keys) if source else next(iter(keys))

    @classmethod
    def of(cls, *keys: bytes) -> KeyRing:
        """A ring of the given keys (the first preferred), with nothing to reload from."""
        return cls({key_id(k): k for k in keys})

    def _set(self, keys: dict[str, bytes]) -> None:
        self._keys = dict(keys)
        self._aead = {kid: AESGCM(k) for kid, k in keys.items()}

    @property
    def describe(self) -> str:
        return self._source.describe if self._source else "the master key"

    def kids(self) -> list[str]:
        return list(self._keys)

    def reload(self) -> bool:
        """Read the source again (a rotation may have added a key); True if anything changed."""
        if self._source is None:
            return False
        keys = self._source.load()
        with self._lock:
            if keys == self._keys:
                return False
            self._set({**self._keys, **keys})  # never forget a key this process already had
        return True

    def add(self, key: bytes) -> str:
        """Hold one more key (a rotation's new key from the environment); returns its id."""
        with self._lock:
            self._set({**self._keys, key_id(key): key})
        return key_id(key)

    def holds(self, kid: str) -> bool:
        return kid in self._aead or (self.reload() and kid in self._aead)

    def pepper(self, label: str, kid: str | None = None) -> tuple[str, bytes]:
        """A key derived from master key ``kid`` (the preferred one by default) for one use,
        and that kid: HMAC-SHA256(master key, label). The key itself never leaves the ring."""
        kid = kid or self.preferred
        if not self.holds(kid):
            raise MasterKeyError(f"{self.describe} does not hold master key {kid}")
        return kid, hmac.new(self._keys[kid], label.encode(), hashlib.sha256).digest()

    def seal(self, plaintext: bytes, aad: str, kid: str | None = None) -> bytes:
        kid = kid or self.preferred
        if not self.holds(kid):
            raise MasterKeyError(
                f"the database seals new secrets with master key {kid}, which "
                f"{self.describe} does not hold",
                hint="copy the key file from the machine where rotate-key ran (or add the key "
                "to KEYFOB_MASTER_KEY) and restart this server",
            )
        nonce = os.urandom(_NONCE)
        ct = self._aead[kid].encrypt(nonce, plaintext, aad.encode())
        return bytes([_VERSION]) + bytes.fromhex(kid) + nonce + ct

    def open(self, blob: bytes, aad: str) -> bytes:
        if len(blob) < 1 + 4 + _NONCE + 16 or blob[0] != _VERSION:
            raise MasterKeyError("stored secret has an unknown format")
        kid, nonce, ct = blob_kid(blob), blob[5 : 5 + _NONCE], blob[5 + _NONCE :]
        if not self.holds(kid):
            raise MasterKeyError(
                f"stored secret was sealed with master key {kid}, which {self.describe} "
                "does not hold",
                hint="start the server with the key file (or KEYFOB_MASTER_KEY) that holds it",
            )
        try:
            return self._aead[kid].decrypt(nonce, ct, aad.encode())
        except InvalidTag:
            raise MasterKeyError("stored secret does not decrypt (tampered or moved row)") from None


# --- the key file --------------------------------------------------------------------------


def read_key_file(path: Path) -> dict[str, bytes]:
    """Keys in file order; a missing file is an empty dict."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    keys: dict[str, bytes] = {}
    for n, line in enumerate(lines, 1):
        kid, _, value = line.rpartition(" ")
        key = parse_key_text(value, f"{path} line {n}")
        if kid and kid.strip() != key_id(key):
            raise MasterKeyError(
                f"{path} line {n}: key id {kid.strip()} does not match its key",
                hint="the file was edited by hand; restore it from your backup",
            )
        keys[key_id(key)] = key
    return keys


def _legacy_staged(path: Path) -> dict[str, bytes]:
    """A ``<file>.new`` from keyfob before key ids: a key that may have sealed rows."""
    staged = path.with_name(path.name + ".new")
    if not staged.exists():
        return {}
    key = parse_key_text(staged.read_text(), str(staged))
    return {key_id(key): key}


@contextmanager
def file_lock(path: Path, purpose: str = "lock") -> Iterator[None]:
    """An exclusive lock beside the key file, across processes: ``lock`` for one writer of the
    file at a time (rotations, first starts), ``rotate`` for one rotation at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(f"{path.name}.{purpose}"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_keys(path: Path, keys: dict[str, bytes]) -> None:
    """A complete new file (fsynced, 0600) renamed over the old one, then the folder fsynced:
    at every instant the file on disk is either the old one or the new one, never partial."""
    body = _HEADER + _HEADER2 + "".join(f"{kid} {k.hex()}\n" for kid, k in keys.items())
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _merge_legacy(path: Path, keys: dict[str, bytes]) -> dict[str, bytes]:
    """Fold a legacy ``.new`` key into the file before anything else changes it."""
    staged = _legacy_staged(path)
    if staged.keys() - keys.keys():
        keys = {**keys, **staged}
        _write_keys(path, keys)
    path.with_name(path.name + ".new").unlink(missing_ok=True)
    return keys


def load_or_create(path: Path, env_key: str | None = None) -> tuple[KeyRing, bool]:
    """The ring from ``KEYFOB_MASTER_KEY`` or the key file (created 0600 if absent).

    Returns (ring, created). Creating happens under the file lock, so two servers starting at
    once on a new database agree on one key instead of each sealing with its own.
    """
    if env_key:
        source: KeySource = EnvKeys(env_key)
        return KeyRing(source.load(), source), False
    created = False
    if not path.exists():
        with file_lock(path):
            if not path.exists():
                key = secrets.token_bytes(32)
                _write_keys(path, {key_id(key): key})
                created = True
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    source = FileKeys(path)
    return KeyRing(source.load(), source), created


def add_key(path: Path, key: bytes | None = None) -> str:
    """Append a key (a fresh random one by default) to the key file; returns its id.

    The old keys stay: a rotation killed at any point leaves a file that opens every row."""
    key = key or secrets.token_bytes(32)
    with file_lock(path):
        keys = _merge_legacy(path, read_key_file(path))
        keys[key_id(key)] = key
        _write_keys(path, keys)
    return key_id(key)


def prune(path: Path, keep: Callable[[], set[str]]) -> list[str]:
    """Drop the keys that ``keep()`` (asked under the file lock) does not name; returns them."""
    with file_lock(path):
        keys = _merge_legacy(path, read_key_file(path))
        wanted = keep()
        dropped = [kid for kid in keys if kid not in wanted]
        if dropped and len(dropped) < len(keys):
            _write_keys(path, {kid: k for kid, k in keys.items() if kid in wanted})
            return dropped
    return []
