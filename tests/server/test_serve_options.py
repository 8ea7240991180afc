"""`keyfob serve` hardening: forwarded headers believed only from configured proxies (a real
uvicorn process), and a SQLite database readable by its owner only."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from keyfob.errors import KeyfobError
from keyfob.server import accounts
from keyfob.server.context import open_context
from keyfob.server.settings import Settings
from keyfob.server.store.schema import audit
from testkit import serve

FORGED = "203.0.113.7"


@contextmanager
def _server(tmp_path: Path, db: str, *args: str) -> Iterator[str]:
    """`keyfob serve` in its own process, trusting no forwarded header it did not get here."""
    env = {k: v for k, v in os.environ.items() if "FORWARDED" not in k}  # no inherited trust
    with serve(db, *args, env=env, cwd=tmp_path) as server:
        yield server.url


def _client_seen(base: str, db: str, key: str) -> str:
    """Validate once with a forged X-Forwarded-For; the client address the audit recorded."""
    resp = httpx.post(
        f"{base}/api/v1/validate",
        json={"username": "nobody@example.com", "code": "123456"},
        headers={"Authorization": f"Bearer {key}", "X-Forwarded-For": FORGED},
    )
    assert resp.status_code == 200, resp.text
    engine = sa.create_engine(db)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(audit.c.client)
                .where(audit.c.action == "validate")
                .order_by(audit.c.id.desc())
                .limit(1)
            ).one()
    finally:
        engine.dispose()
    return row.client


@pytest.mark.parametrize("workers", [1, 2])
def test_forwarded_for_is_believed_only_from_configured_proxies(
    tmp_path, leak_watch, workers
) -> None:
    db = f"sqlite:///{tmp_path / 'srv.db'}"
    setup = open_context(Settings(db=db))  # srv.key next to the database, as serve finds it
    accounts.create_user(setup, "someone@example.com")  # no first-start admin password
    _, key = accounts.create_api_key(setup, "vpn", "validate")
    setup.engine.dispose()
    leak_watch.secrets.add(key)
    many = ("--workers", str(workers))

    with _server(tmp_path, db, *many) as base:
        assert _client_seen(base, db, key) == "127.0.0.1"
    if workers == 1:
        with _server(tmp_path, db, "--forwarded-allow-ips", "10.0.0.0/8") as base:
            assert _client_seen(base, db, key) == "127.0.0.1"  # we are not that proxy
    with _server(tmp_path, db, *many, "--forwarded-allow-ips", "127.0.0.1") as base:
        assert _client_seen(base, db, key) == FORGED


def test_forwarded_allow_ips_typo_is_refused_with_a_hint() -> None:
    with pytest.raises(KeyfobError) as bad:
        Settings(forwarded_allow_ips="127.0.0.1, 10.0.0.1/8").trusted_proxies()
    assert "10.0.0.1/8" in bad.value.message and bad.value.hint
    assert Settings(forwarded_allow_ips=" 10.0.0.0/8 ,::1").trusted_proxies() == [
        "10.0.0.0/8",
        "::1",
    ]
    assert Settings().trusted_proxies() == []


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def _write_something(db: str, tmp_path: Path) -> Any:
    ctx = open_context(Settings(db=db, key_file=tmp_path / "k.key"))
    accounts.create_user(ctx, f"u{time.monotonic_ns()}@example.com")
    return ctx


def test_new_sqlite_database_and_its_wal_files_are_private(tmp_path, usual_umask) -> None:
    path = tmp_path / "new.db"
    ctx = _write_something(f"sqlite:///{path}", tmp_path)
    try:
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(f.exists() for f in files)  # WAL files exist while a connection is open
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        ctx.engine.dispose()


def test_existing_sqlite_database_is_tightened_on_start(tmp_path, usual_umask) -> None:
    path = tmp_path / "old.db"
    ctx = _write_something(f"sqlite:///{path}", tmp_path)
    with ctx.engine.connect() as conn:  # keep the WAL files: an old server left them
        conn.exec_driver_sql("SELECT 1")
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        for f in files:
            f.chmod(0o644)
        again = open_context(Settings(db=f"sqlite:///{path}", key_file=tmp_path / "k.key"))
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    again.engine.dispose()
    ctx.engine.dispose()
