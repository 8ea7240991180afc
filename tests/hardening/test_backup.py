"""``keyfob admin backup`` / ``restore``: codes validate after a restore into a fresh folder
(the replay rule included), and a damaged file, a wrong passphrase and a wrongly keyed restore
are refused with clear errors before anything is replaced."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import threading
from pathlib import Path

import pyotp
import pytest

from keyfob.server import accounts, enrolment
from keyfob.server.backup import MAGIC, BackupError, create_backup, held_keys, restore_backup
from keyfob.server.context import ServerContext, open_context
from keyfob.server.settings import Settings
from keyfob.server.validation import validate
from testkit import KEYFOB, Clock

PASS = "correct horse battery staple"
WORK = 2**10  # scrypt cost for the library-level tests; the CLI uses the real 2**17


def _server(folder: Path, clock: Clock) -> ServerContext:
    folder.mkdir(parents=True, exist_ok=True)
    return open_context(Settings(db=f"sqlite:///{folder / 'keyfob.db'}"), clock=clock)


def _get(obj: object, name: str) -> str:
    """A field of what enrolment.begin returns (a dict before the service-layer refactor, an
    ``Enrolment`` after it)."""
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


def _enrol(ctx: ServerContext, clock: Clock, n: int) -> dict[str, pyotp.TOTP]:
    users = {}
    for i in range(n):
        name = f"u{i}@example.com"
        accounts.create_user(ctx, name)
        begun = enrolment.begin(ctx, name, "app", actor="t")
        totp = pyotp.parse_uri(_get(begun, "otpauth_uri"))
        enrolment.verify_enrolment(ctx, name, _get(begun, "id"), totp.at(clock.now - 30), actor="t")
        users[name] = totp
    return users


def _backup(ctx: ServerContext, out: Path, *, with_keys: bool = True) -> None:
    keys = held_keys(ctx.settings.resolved_key_file(), None)
    create_backup(ctx.settings.db, out, PASS, keys=keys, with_keys=with_keys, work=WORK)


def _restore(folder: Path, backup: Path, key_file: Path | None = None, **kw: object):
    folder.mkdir(parents=True, exist_ok=True)
    return restore_backup(
        backup,
        kw.pop("passphrase", PASS),  # type: ignore[arg-type]
        db_url=f"sqlite:///{folder / 'keyfob.db'}",
        key_file=key_file or folder / "keyfob.key",
        **kw,  # type: ignore[arg-type]
    )


def test_cli_backup_and_restore_into_a_fresh_folder(tmp_path, clock) -> None:
    """The commands end to end: the restored server accepts the next codes, still refuses the
    code accepted before the backup, and its files are private."""
    old = _server(tmp_path / "old", clock)
    users = _enrol(old, clock, 3)
    for name, totp in users.items():
        assert validate(old, name, totp.at(clock.now)).accepted
    secret_file = tmp_path / "passphrase"
    secret_file.write_text(PASS + "\n")
    out = tmp_path / "nightly.kfb"
    base = [*KEYFOB, "admin", "--db", old.settings.db]
    made = subprocess.run(
        [*base, "backup", str(out), "--passphrase-file", str(secret_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and PASS.encode() not in out.read_bytes()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    env = dict(os.environ, KEYFOB_BACKUP_PASSPHRASE=PASS)
    done = subprocess.run(
        [*KEYFOB, "admin", "--db", f"sqlite:///{fresh / 'keyfob.db'}", "restore", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "3 user(s), 3 token(s), 3 secret(s) checked" in done.stdout
    for name in ("keyfob.db", "keyfob.key"):
        assert stat.S_IMODE((fresh / name).stat().st_mode) == 0o600
    new = _server(fresh, clock)
    for name, totp in users.items():
        assert not validate(new, name, totp.at(clock.now)).accepted  # replay: still refused
    clock.advance(30)
    for name, totp in users.items():
        assert validate(new, name, totp.at(clock.now)).accepted


def test_damaged_files_are_refused_and_nothing_is_written(tmp_path, clock) -> None:
    old = _server(tmp_path / "old", clock)
    _enrol(old, clock, 1)
    good = tmp_path / "b.kfb"
    _backup(old, good)
    data = good.read_bytes()
    header_end = len(MAGIC) + 6 + int.from_bytes(data[len(MAGIC) + 2 : len(MAGIC) + 6], "big")
    cases = {
        "flipped": data[:-40] + bytes([data[-40] ^ 1]) + data[-39:],
        "truncated": data[: len(data) - 100],
        "header": data.replace(b'"users": 1', b'"users": 9'),
        "appended": data + b"x",
        "chunk dropped": data[: header_end + 7],
    }
    for what, damaged in cases.items():
        path = tmp_path / f"{what}.kfb"
        path.write_bytes(damaged)
        with pytest.raises(BackupError, match="damaged") as info:
            _restore(tmp_path / what, path)
        assert info.value.hint, what
        assert not (tmp_path / what / "keyfob.db").exists(), what
    (tmp_path / "other").write_bytes(b"SQLite format 3\x00" + bytes(100))
    with pytest.raises(BackupError, match="not a keyfob backup"):
        _restore(tmp_path / "x", tmp_path / "other")


def test_wrong_passphrase_is_named_as_such(tmp_path, clock) -> None:
    old = _server(tmp_path / "old", clock)
    _enrol(old, clock, 1)
    _backup(old, tmp_path / "b.kfb")
    with pytest.raises(BackupError, match="wrong passphrase") as info:
        _restore(tmp_path / "new", tmp_path / "b.kfb", passphrase="not the passphrase")
    assert PASS not in str(info.value) and not (tmp_path / "new" / "keyfob.db").exists()
    with pytest.raises(BackupError, match="shorter than"):
        create_backup(old.settings.db, tmp_path / "c.kfb", "short", keys={}, work=WORK)


def test_without_keys_needs_the_key_file_given_separately(tmp_path, clock) -> None:
    old = _server(tmp_path / "old", clock)
    users = _enrol(old, clock, 2)
    _backup(old, tmp_path / "b.kfb", with_keys=False)
    kid = old.ring.kids()[0]
    with pytest.raises(BackupError, match=f"without-keys and needs master key.*{kid}") as info:
        _restore(tmp_path / "new", tmp_path / "b.kfb")
    assert "--key-file" in (info.value.hint or "")
    assert not (tmp_path / "new" / "keyfob.db").exists()
    stranger = _server(tmp_path / "stranger", clock)  # a key file of another installation
    with pytest.raises(BackupError, match="does not hold"):
        _restore(tmp_path / "new", tmp_path / "b.kfb", stranger.settings.resolved_key_file())
    kept_apart = tmp_path / "vault" / "keyfob.key"
    kept_apart.parent.mkdir()
    shutil.copy(old.settings.resolved_key_file(), kept_apart)
    report = _restore(tmp_path / "new", tmp_path / "b.kfb", kept_apart)
    assert report.secrets_opened == 2 and report.keys_added == []
    new = open_context(
        Settings(db=f"sqlite:///{tmp_path / 'new' / 'keyfob.db'}", key_file=kept_apart),
        clock=clock,
    )
    clock.advance(30)
    assert all(validate(new, n, t.at(clock.now)).accepted for n, t in users.items())


def test_a_database_with_data_is_not_replaced_unless_forced(tmp_path, clock) -> None:
    old = _server(tmp_path / "old", clock)
    _enrol(old, clock, 1)
    _backup(old, tmp_path / "b.kfb")
    busy = _server(tmp_path / "busy", clock)
    _enrol(busy, clock, 2)
    with pytest.raises(BackupError, match="already holds data"):
        _restore(tmp_path / "busy", tmp_path / "b.kfb")
    report = _restore(tmp_path / "busy", tmp_path / "b.kfb", force=True)
    assert report.tokens == 1 and len(report.keys_added) == 1  # the key file only grew


def test_online_backup_is_consistent_while_the_server_writes(tmp_path, clock) -> None:
    """Enrolments and validations go on in a thread while backups are taken: every backup
    restores (integrity check, every secret opens)."""
    ctx = _server(tmp_path / "live", clock)
    users = _enrol(ctx, clock, 1)
    stop = threading.Event()

    def busy() -> None:
        i = 0
        while not stop.is_set():
            name = f"w{i}@example.com"
            accounts.create_user(ctx, name)
            enrolment.begin(ctx, name, "app", actor="t")
            validate(ctx, "u0@example.com", users["u0@example.com"].at(clock.now))
            i += 1

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        for n in range(3):
            _backup(ctx, tmp_path / f"b{n}.kfb")
    finally:
        stop.set()
        worker.join(timeout=30)
    for n in range(3):
        report = _restore(tmp_path / f"r{n}", tmp_path / f"b{n}.kfb")
        assert report.secrets_opened == report.tokens >= 1
        with sqlite3.connect(tmp_path / f"r{n}" / "keyfob.db") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_postgresql_is_pointed_at_pg_dump(tmp_path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/keyfob"
    with pytest.raises(BackupError, match="SQLite only") as info:
        create_backup(url, tmp_path / "b.kfb", PASS, keys={}, work=WORK)
    assert "pg_dump" in (info.value.hint or "")
