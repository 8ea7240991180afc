"""Encrypted backups of a SQLite server: ``keyfob admin backup`` and ``keyfob admin restore``.

A backup must be safe to keep anywhere (an offsite bucket, a USB stick) and safe to restore
(a damaged or wrong file must never half-replace a working database). So:

- The database is copied online with SQLite's backup API: a consistent snapshot while servers
  keep validating (WAL readers never block the writer).
- The copy and, unless ``--without-keys``, the master key file go into a tar that is encrypted
  with a key derived from a passphrase (scrypt, n=2^17, r=8, p=1) under AES-256-GCM. The
  plaintext header (format version, KDF parameters, the key ids the database needs) is the
  associated data of every chunk, so changing any byte of it fails the restore.
- The ciphertext is a sequence of 1 MiB chunks, each with its index and a "last" flag in its
  nonce (the STREAM construction): a reordered, dropped or truncated chunk is detected.
- A passphrase check value (HMAC of the derived key) tells "wrong passphrase" from "damaged".
- A restore decrypts and checks everything in a private temporary folder beside the target,
  opens every sealed secret with the keys it will use, and only then renames the database into
  place; a target that already holds data is refused unless forced.

PostgreSQL is backed up with its own tools; the README's *Backup and restore* section has the
``pg_dump`` procedure. Passphrases, keys and secrets never appear in an error or a log line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import sqlite3
import struct
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from keyfob import __version__
from keyfob.errors import KeyfobError
from keyfob.server.store.db import normalise_url
from keyfob.server.store.keys import (
    add_key,
    blob_kid,
    key_id,
    parse_key_list,
    read_key_file,
)

MAGIC = b"KEYFOB-BACKUP\n"
FORMAT = 1
CHUNK = 1 << 20
SCRYPT_N = 1 << 17
MIN_PASSPHRASE = 10
DB_MEMBER, KEY_MEMBER = "keyfob.db", "keyfob.key"
_CHECK_LABEL = b"keyfob-backup passphrase check"
_SEALED = (("tokens", "id", "secret_enc"), ("radius_clients", "id", "secret_enc"))
_USE_ANOTHER = "use another copy of the backup; this one cannot be restored"
PG_HINT = "back PostgreSQL up with pg_dump (README: Backup and restore)"


class BackupError(KeyfobError):
    code = "backup"


@dataclass(frozen=True)
class BackupInfo:
    """The plaintext header: enough to know what a file is and which keys it needs, nothing
    that helps an attacker (key ids are 4 bytes of a hash; counts are not secrets)."""

    format: int
    created_at: str
    keyfob: str
    with_keys: bool
    key_ids: list[str]
    sealing_kid: str
    users: int
    tokens: int
    kdf: dict[str, Any] = field(default_factory=dict)
    check: str = ""


@dataclass(frozen=True)
class RestoreReport:
    database: str
    key_file: str | None
    keys_added: list[str]
    users: int
    tokens: int
    secrets_opened: int


# --- passphrase and stream cipher --------------------------------------------------------


def check_passphrase(passphrase: str) -> str:
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupError(
            f"the backup passphrase is shorter than {MIN_PASSPHRASE} characters",
            hint="use a long passphrase (several words); keep it apart from the backup",
        )
    return passphrase


def _derive(passphrase: str, kdf: dict[str, Any]) -> bytes:
    salt = base64.b64decode(kdf["salt"])
    n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
    if kdf.get("name") != "scrypt" or not (2**10 <= n <= 2**22 and r <= 32 and p <= 16):
        raise BackupError("the backup names a key derivation keyfob does not use")
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _check_value(key: bytes) -> str:
    return base64.b64encode(hmac.new(key, _CHECK_LABEL, hashlib.sha256).digest()[:16]).decode()


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", index, 1 if last else 0)


def _encrypt_stream(src: IO[bytes], out: IO[bytes], key: bytes, aad: bytes) -> None:
    """Chunks of ``src`` as ``u32 length ‖ AES-GCM(chunk)``; the last chunk is flagged."""
    aead, prefix = AESGCM(key), secrets.token_bytes(7)
    out.write(prefix)
    index, chunk = 0, src.read(CHUNK)
    while True:
        following = src.read(CHUNK)
        last = not following
        sealed = aead.encrypt(_nonce(prefix, index, last), chunk, aad)
        out.write(struct.pack(">I", len(sealed)) + sealed)
        if last:
            return
        index, chunk = index + 1, following


def _decrypt_stream(src: IO[bytes], out: IO[bytes], key: bytes, aad: bytes) -> None:
    damaged, hint = "the backup file is damaged or was changed", _USE_ANOTHER
    aead, prefix = AESGCM(key), src.read(7)
    for index in range(2**32):
        size_field = src.read(4)
        if len(size_field) < 4:
            raise BackupError(f"{damaged} (it ends early)", hint=hint)
        (size,) = struct.unpack(">I", size_field)
        sealed = src.read(size) if size <= CHUNK + 16 else b""
        if len(sealed) != size or size < 16:
            raise BackupError(f"{damaged} (chunk {index} is cut)", hint=hint)
        for last in (False, True):
            try:
                out.write(aead.decrypt(_nonce(prefix, index, last), sealed, aad))
            except InvalidTag:
                continue
            if last and src.read(1):
                raise BackupError(f"{damaged} (data after its end)", hint=hint)
            if last:
                return
            break
        else:
            raise BackupError(f"{damaged} (chunk {index} does not decrypt)", hint=hint)


# --- the header ----------------------------------------------------------------------------


def _write_header(out: IO[bytes], info: BackupInfo) -> bytes:
    body = json.dumps(asdict(info), sort_keys=True).encode()
    header = MAGIC + struct.pack(">HI", FORMAT, len(body)) + body
    out.write(header)
    return header


def read_header(src: IO[bytes], name: str) -> tuple[BackupInfo, bytes]:
    """The header as written (the associated data of every chunk) and what it says."""
    if src.read(len(MAGIC)) != MAGIC:
        raise BackupError(
            f"{name} is not a keyfob backup", hint="give a file made by keyfob admin backup"
        )
    fixed = src.read(6)
    if len(fixed) < 6:
        raise BackupError(f"{name}: the backup file is damaged (header cut)", hint=_USE_ANOTHER)
    version, size = struct.unpack(">HI", fixed)
    if version != FORMAT:
        raise BackupError(
            f"{name} is backup format {version}; this keyfob reads format {FORMAT}",
            hint="restore it with the keyfob version that made it, or a newer one",
        )
    body = src.read(size) if size < 1 << 20 else b""
    try:
        info = BackupInfo(**json.loads(body))
    except (ValueError, TypeError):
        raise BackupError(
            f"{name}: the backup file is damaged (header unreadable)", hint=_USE_ANOTHER
        ) from None
    return info, MAGIC + fixed + body


# --- backup --------------------------------------------------------------------------------


def sqlite_path(db_url: str) -> Path:
    """The database file of a ``sqlite:///`` URL; PostgreSQL and in-memory are refused."""
    from sqlalchemy.engine import make_url

    url = make_url(normalise_url(db_url))
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"keyfob admin backup/restore handle SQLite only, not {url.get_backend_name()}",
            hint=PG_HINT,
        )
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(url.database)


@contextmanager
def _private_dir(beside: Path) -> Iterator[Path]:
    """A 0700 folder on the target's file system (so a rename is atomic), always removed."""
    beside.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=".keyfob-backup-", dir=beside))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _snapshot(source: Path, copy: Path) -> None:
    """SQLite's online backup: a consistent copy while other connections write."""
    if not source.exists():
        raise BackupError(f"there is no database at {source}", hint="check --db")
    fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    with (
        closing(sqlite3.connect(source, timeout=30)) as src,
        closing(sqlite3.connect(copy)) as dst,
    ):
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file


def _contents(db: Path) -> tuple[set[str], str, int, int]:
    """(key ids of every sealed value, the sealing key id, users, tokens) of a database file."""
    with closing(sqlite3.connect(db)) as conn:
        try:
            kids = {
                blob_kid(bytes(blob))
                for table, _, column in _SEALED
                for (blob,) in conn.execute(f"SELECT {column} FROM {table}")
            }
            row = conn.execute("SELECT current_kid FROM key_state").fetchone()
            users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
            tokens = conn.execute("SELECT count(*) FROM tokens").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"the database is not a keyfob database ({exc})") from None
    sealing = row[0] if row else ""
    return kids | ({sealing} if sealing else set()), sealing, int(users), int(tokens)


def held_keys(key_file: Path | None, env_keys: str | None) -> dict[str, bytes]:
    """The master keys a server with these settings holds (env first, as the server does)."""
    if env_keys:
        return {key_id(k): k for k in parse_key_list(env_keys, "KEYFOB_MASTER_KEY")}
    return read_key_file(key_file) if key_file is not None else {}


def create_backup(
    db_url: str,
    out: Path,
    passphrase: str,
    *,
    keys: dict[str, bytes],
    with_keys: bool = True,
    work: int = SCRYPT_N,
) -> BackupInfo:
    """Write an encrypted backup of the SQLite database at ``db_url`` to ``out``."""
    check_passphrase(passphrase)
    source = sqlite_path(db_url)
    with _private_dir(out.resolve().parent) as tmp:
        _snapshot(source, tmp / DB_MEMBER)
        needed, sealing, users, tokens = _contents(tmp / DB_MEMBER)
        missing = needed - keys.keys()
        if with_keys and missing:
            raise BackupError(
                f"the database needs master key(s) {', '.join(sorted(missing))}, which the "
                "given key file does not hold",
                hint="give --key-file (or KEYFOB_MASTER_KEY) as the server has it",
            )
        members = [(DB_MEMBER, tmp / DB_MEMBER)]
        if with_keys:
            text = "".join(f"{kid} {k.hex()}\n" for kid, k in keys.items())
            (tmp / KEY_MEMBER).write_text(text)
            members.append((KEY_MEMBER, tmp / KEY_MEMBER))
        kdf = {"name": "scrypt", "n": work, "r": 8, "p": 1}
        kdf["salt"] = base64.b64encode(secrets.token_bytes(16)).decode()
        key = _derive(passphrase, kdf)
        info = BackupInfo(
            format=FORMAT,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            keyfob=__version__,
            with_keys=with_keys,
            key_ids=sorted(needed),
            sealing_kid=sealing,
            users=users,
            tokens=tokens,
            kdf=kdf,
            check=_check_value(key),
        )
        _seal_to(out, tmp, members, info, key)
    return info


def _seal_to(
    out: Path, tmp: Path, members: list[tuple[str, Path]], info: BackupInfo, key: bytes
) -> None:
    """Tar the members, encrypt the tar to a 0600 file beside ``out``, rename it over ``out``."""
    plain = tmp / "backup.tar"
    with tarfile.open(plain, "w") as tar:
        for name, path in members:
            tar.add(path, arcname=name, recursive=False)
    partial = out.with_name(f".{out.name}.{secrets.token_hex(4)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh, plain.open("rb") as src:
            aad = _write_header(fh, info)
            _encrypt_stream(src, fh, key, aad)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


# --- restore -------------------------------------------------------------------------------


def _decrypt_to(path: Path, passphrase: str, tar_out: Path) -> BackupInfo:
    """Check the passphrase against the header, then decrypt the whole stream to ``tar_out``."""
    with path.open("rb") as src:
        info, aad = read_header(src, str(path))
        key = _derive(passphrase, info.kdf)
        if not hmac.compare_digest(_check_value(key), info.check):
            raise BackupError(
                "wrong passphrase for this backup",
                hint="give the passphrase the backup was made with",
            )
        fd = os.open(tar_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            _decrypt_stream(src, out, key, aad)
    return info


def _unpack(tar_path: Path, into: Path) -> dict[str, Path]:
    """The backup's members as files in ``into``; only the two names keyfob writes, only
    regular files (a crafted tar cannot write anywhere else)."""
    found: dict[str, Path] = {}
    try:
        with tarfile.open(tar_path, "r:") as tar:
            for member in tar:
                if member.name not in (DB_MEMBER, KEY_MEMBER) or not member.isfile():
                    raise BackupError(f"the backup holds an unexpected entry {member.name!r}")
                data = tar.extractfile(member)
                assert data is not None  # a regular file always has data
                target = into / f"restored-{member.name}"
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(data, out)
                found[member.name] = target
    except tarfile.TarError:
        raise BackupError(
            "the backup decrypted but its contents are damaged", hint=_USE_ANOTHER
        ) from None
    if DB_MEMBER not in found:
        raise BackupError("the backup holds no database")
    return found


def _holds_data(db: Path) -> bool:
    """Whether a database file already has users or tokens (an empty or new file has not)."""
    if not db.exists() or db.stat().st_size == 0:
        return False
    try:
        with closing(sqlite3.connect(db)) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            return any(
                conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() is not None
                for t in ("users", "tokens", "audit")
                if t in tables
            )
    except sqlite3.DatabaseError:
        return True  # something that is not an empty SQLite file: never overwrite silently


def _open_every_secret(db: Path, keys: dict[str, bytes]) -> int:
    """Open every sealed value of the restored database with ``keys``: a restore that would
    leave a server unable to read its secrets fails here, before anything is replaced."""
    from keyfob.server.store.keys import KeyRing, MasterKeyError

    ring = KeyRing(keys)
    opened = 0
    with closing(sqlite3.connect(db)) as conn:
        for table, id_column, column in _SEALED:
            for row_id, blob in conn.execute(f"SELECT {id_column}, {column} FROM {table}"):
                try:
                    ring.open(bytes(blob), str(row_id))
                except MasterKeyError:
                    raise BackupError(
                        f"a secret in the backup does not open with the master keys given "
                        f"({table} row {row_id})",
                        hint="give the key file that belongs to this backup (--key-file)",
                    ) from None
                opened += 1
    return opened


def _place(restored: Path, target: Path) -> None:
    """Rename the checked copy over the target; a stale -wal/-shm of the old database would be
    replayed into the new one by SQLite, so they go first."""
    for suffix in ("-wal", "-shm", "-journal"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    os.replace(restored, target)
    os.chmod(target, 0o600)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _merge_keys(key_file: Path, keys: dict[str, bytes]) -> list[str]:
    """Add the backup's keys the key file lacks (a key file only ever grows)."""
    have = read_key_file(key_file)
    added = [kid for kid in keys if kid not in have]
    for kid in added:
        add_key(key_file, keys[kid])
    return added


def restore_backup(
    path: Path,
    passphrase: str,
    *,
    db_url: str,
    key_file: Path,
    env_keys: str | None = None,
    force: bool = False,
) -> RestoreReport:
    """Restore ``path`` into the SQLite database of ``db_url`` (and its keys into
    ``key_file``); every check happens before the target is touched."""
    target = sqlite_path(db_url)
    if _holds_data(target) and not force:
        raise BackupError(
            f"{target} already holds data; nothing was restored",
            hint="restore into a new folder (--db), or stop every server on it and add --force",
        )
    with _private_dir(target.resolve().parent) as tmp:
        info = _decrypt_to(path, passphrase, tmp / "backup.tar")
        files = _unpack(tmp / "backup.tar", tmp)
        needed, _, users, tokens = _contents(files[DB_MEMBER])
        in_backup = read_key_file(files[KEY_MEMBER]) if KEY_MEMBER in files else {}
        keys = held_keys(None, env_keys) if env_keys else {**read_key_file(key_file), **in_backup}
        missing = sorted(needed - keys.keys())
        if missing:
            where = "KEYFOB_MASTER_KEY" if env_keys else f"the key file {key_file}"
            made = "was made --without-keys and " if not info.with_keys else ""
            raise BackupError(
                f"the backup {made}needs master key(s) {', '.join(missing)}, which {where} "
                "does not hold; nothing was restored",
                hint="give --key-file with the key file kept apart from the backup",
            )
        opened = _open_every_secret(files[DB_MEMBER], keys)
        added = [] if env_keys else _merge_keys(key_file, in_backup)
        _place(files[DB_MEMBER], target)
    return RestoreReport(
        database=str(target),
        key_file=None if env_keys else str(key_file),
        keys_added=added,
        users=users,
        tokens=tokens,
        secrets_opened=opened,
    )
