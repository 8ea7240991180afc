"""The server's one explicit dependency bundle: settings, database, keys, policy and clock.

Built once by :func:`open_context` and passed to every service function and to the API app, so
that tests can build several independent servers in one process and inject a clock.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from argon2 import PasswordHasher
from sqlalchemy import Connection, Engine

from keyfob.otp.verify import Policy
from keyfob.server.settings import Settings
from keyfob.server.store.db import make_engine, migrate
from keyfob.server.store.keys import KeyRing, load_or_create


@dataclass
class ServerContext:
    settings: Settings
    engine: Engine
    ring: KeyRing
    policy: Policy
    clock: Callable[[], float] = time.time
    hasher: PasswordHasher = field(default_factory=PasswordHasher)
    key_created: bool = False
    # Verified API keys, by SHA-256 of the presented key -> (principal, monotonic expiry).
    api_key_cache: dict[str, tuple[object, float]] = field(default_factory=dict)

    _write_lock: threading.Lock = field(default_factory=threading.Lock)
    _dummy_hash: str | None = None

    def dummy_password_hash(self) -> str:
        """A hash of nothing, made once: checking a password of an unknown user against it
        costs what a real check costs, so timing does not tell which usernames exist."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
        return self._dummy_hash

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction. SQLite allows one writer per file: threads of this process
        queue on a mutex (microseconds) instead of SQLite's busy handler, which sleeps in steps
        of up to 100 ms and would turn contention into long tail latencies."""
        if self.engine.dialect.name != "sqlite":
            with self.engine.begin() as conn:
                yield conn
            return
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    def now(self) -> float:
        return self.clock()

    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


def open_context(
    settings: Settings, *, clock: Callable[[], float] = time.time, run_migrations: bool = True
) -> ServerContext:
    engine = make_engine(settings.db)
    if run_migrations:
        migrate(engine)
    env_key = settings.master_key.get_secret_value() if settings.master_key else None
    ring, created = load_or_create(settings.resolved_key_file(), env_key)
    return ServerContext(
        settings=settings,
        engine=engine,
        ring=ring,
        policy=settings.policy(),
        clock=clock,
        key_created=created,
    )
