"""The batch journal: one JSON line per burned token, fsynced, so that an interrupted batch
resumes where it stopped and never burns one serial for two users.

When the batch writes output files (``--out``), each line also carries the secret, encrypted
with AES-256-GCM under a key derived (scrypt) from the export password, because the Entra CSV
and PSKC written at the end must include the tokens of earlier runs. Without ``--out`` the
journal holds no secrets at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyfob.burn.errors import JournalError


def _key(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


@dataclass
class Journal:
    path: Path
    entries: list[dict[str, Any]] = field(default_factory=list)
    salt: bytes = b""
    _key: bytes | None = None

    @classmethod
    def open(cls, path: Path, password: str | None) -> Journal:
        journal = cls(path)
        if path.exists():
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    raise JournalError(
                        f"{path}: line {number} is not JSON",
                        path=path,
                        hint="the journal is damaged; move it away to start "
                        "afresh (burned tokens would be burned again)",
                    ) from None
                if "journal" in item:
                    journal.salt = base64.b64decode(item["salt"])
                else:
                    journal.entries.append(item)
        if password is not None:
            if not journal.salt:
                journal.salt = secrets.token_bytes(16)
                journal._write({"journal": 1, "salt": base64.b64encode(journal.salt).decode()})
            journal._key = _key(password, journal.salt)
        return journal

    def _write(self, item: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as fh:
            fh.write(json.dumps(item, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def done(self) -> dict[str, dict[str, Any]]:
        """Burned rows by user (the last entry wins)."""
        return {e["user"]: e for e in self.entries if e.get("status") == "done"}

    def serial_owner(self, serial: str) -> str | None:
        for e in self.entries:
            if e.get("status") == "done" and e.get("serial") == serial:
                owner: str = e["user"]  # a JSON row that record() wrote: "user" is a str
                return owner
        return None

    def record(self, entry: dict[str, Any], secret: bytes | None = None) -> None:
        if secret is not None and self._key is not None:
            nonce = secrets.token_bytes(12)
            aad = f"{entry['user']}|{entry['serial']}".encode()
            blob = nonce + AESGCM(self._key).encrypt(nonce, secret, aad)
            entry = {**entry, "secret_enc": base64.b64encode(blob).decode()}
        self._write(entry)
        self.entries.append(entry)

    def secret(self, entry: dict[str, Any]) -> bytes:
        if self._key is None or "secret_enc" not in entry:
            raise JournalError(
                f"the journal holds no secret for {entry['user']}",
                path=self.path,
                hint="it was burned in a run without --out",
            )
        blob = base64.b64decode(entry["secret_enc"])
        aad = f"{entry['user']}|{entry['serial']}".encode()
        try:
            return AESGCM(self._key).decrypt(blob[:12], blob[12:], aad)
        except InvalidTag:
            raise JournalError(
                "the journal's secrets do not open with this password",
                path=self.path,
                hint="use the --password of the first run",
            ) from None
