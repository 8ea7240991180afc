"""The master key that encrypts token secrets (AES-256-GCM, the token id as associated data).

Binding the token id as associated data means a ciphertext copied onto another token row does
not decrypt: an attacker with write access to the database cannot swap secrets between tokens.
Each ciphertext carries a 4-byte key id, so that during a key rotation (or after a crash in the
middle of one) the ring knows which key opens which row.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyfob.errors import KeyfobError

_VERSION = 1
_NONCE = 12


class MasterKeyError(KeyfobError):
    code = "master_key"


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"keyfob-master-key-id" + key).digest()[:4]


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


class KeyRing:
    """The current key (encrypts) plus older keys (decrypt only, during a rotation)."""

    def __init__(self, current: bytes, *older: bytes) -> None:
        self.current = current
        self._keys = {key_id(k): AESGCM(k) for k in (current, *older)}
        self._current_id = key_id(current)

    def seal(self, plaintext: bytes, aad: str) -> bytes:
        nonce = os.urandom(_NONCE)
        ct = self._keys[self._current_id].encrypt(nonce, plaintext, aad.encode())
        return bytes([_VERSION]) + self._current_id + nonce + ct

    def open(self, blob: bytes, aad: str) -> bytes:
        if len(blob) < 1 + 4 + _NONCE + 16 or blob[0] != _VERSION:
            raise MasterKeyError("stored secret has an unknown format")
        kid, nonce, ct = blob[1:5], blob[5 : 5 + _NONCE], blob[5 + _NONCE :]
        aead = self._keys.get(kid)
        if aead is None:
            raise MasterKeyError(
                "stored secret was encrypted with another master key",
                hint="start the server with the key file it was created with",
            )
        try:
            return aead.decrypt(nonce, ct, aad.encode())
        except InvalidTag:
            raise MasterKeyError("stored secret does not decrypt (tampered or moved row)") from None

    def is_current(self, blob: bytes) -> bool:
        return blob[1:5] == self._current_id


def _write_private(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_or_create(path: Path, env_key: str | None = None) -> tuple[KeyRing, bool]:
    """The ring from ``KEYFOB_MASTER_KEY`` or the key file (created with mode 0600 if absent).

    A ``<file>.new`` beside it means a rotation was interrupted: both keys are loaded so every
    row still opens, and the next rotation finishes the job. Returns (ring, created).
    """
    if env_key:
        return KeyRing(parse_key_text(env_key, "KEYFOB_MASTER_KEY")), False
    pending = path.with_name(path.name + ".new")
    if path.exists():
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        current = parse_key_text(path.read_text(), str(path))
        if pending.exists():
            newer = parse_key_text(pending.read_text(), str(pending))
            return KeyRing(newer, current), False
        return KeyRing(current), False
    key = secrets.token_bytes(32)
    _write_private(path, key.hex() + "\n")
    return KeyRing(key), True


def stage_new_key(path: Path) -> bytes:
    """Write a fresh key to ``<file>.new`` (fsynced, 0600) before any row is re-encrypted."""
    key = secrets.token_bytes(32)
    _write_private(path.with_name(path.name + ".new"), key.hex() + "\n")
    return key


def commit_new_key(path: Path) -> None:
    """After the re-encryption committed: the staged key becomes the key file."""
    os.replace(path.with_name(path.name + ".new"), path)
