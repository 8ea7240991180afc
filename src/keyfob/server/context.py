"""The server's one explicit dependency bundle: settings, database, keys, policy and clock.

Built once by :func:`open_context` and passed to every service function and to the API app, so
that tests can build several independent servers in one process and inject a clock.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime

from argon2 import PasswordHasher
from sqlalchemy import Connection, Engine

from keyfob.otp.verify import Policy
from keyfob.server.settings import Settings
from keyfob.server.store import keystate
from keyfob.server.store.db import make_engine, migrate, require_database, require_tables
from keyfob.server.store.keys import KeyRing, MasterKeyError, load_or_create


@dataclass
class ServerContext:
    settings: Settings
    engine: Engine
    ring: KeyRing
    policy: Policy
    clock: Callable[[], float] = time.time
    hasher: PasswordHasher = field(default_factory=PasswordHasher)
    key_created: bool = False

    _write_lock: threading.Lock = field(default_factory=threading.Lock)
    _dummy_hash: str | None = None
    _autocommit_engine: Engine | None = None

    def dummy_password_hash(self) -> str:
        """A hash of nothing, made once: checking a password of an unknown user against it
        costs what a real check costs, so timing does not tell which usernames exist."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
        return self._dummy_hash

    @contextmanager
    def begin(self, conn: Connection | None = None) -> Iterator[Connection]:
        """A write transaction. SQLite allows one writer per file: threads of this process
        queue on a mutex (microseconds) instead of SQLite's busy handler, which sleeps in steps
        of up to 100 ms and would turn contention into long tail latencies.

        ``conn`` runs it on that connection (with no transaction open) instead of a fresh one:
        an import's rows wait in temporary tables, which only their own connection sees."""
        sqlite = self.engine.dialect.name == "sqlite"
        with self._write_lock if sqlite else nullcontext():
            if conn is None:
                with self.engine.begin() as fresh:
                    yield fresh
            else:
                with conn.begin():
                    yield conn

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection on which each statement is its own transaction, for reads and for
        writes made of one statement. On PostgreSQL that saves the BEGIN and the COMMIT (or
        ROLLBACK) round trips around it: a validation's reads cost one round trip each. On
        SQLite, whose driver begins a transaction only before a write, it is a plain
        connection: write there in :meth:`begin`, which holds the process's write lock."""
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:
                yield conn
            return
        if self._autocommit_engine is None:
            self._autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        with self._autocommit_engine.connect() as conn:
            yield conn

    def sealing_kid(self, conn: Connection) -> str:
        """The key id the database seals with, locked against a rotation until ``conn`` ends.

        Every secret must be sealed under this id inside the transaction that stores it; the
        lock is what lets a rotation be sure it re-encrypted everything (store/keystate.py)."""
        kid = keystate.lock_current_kid(conn, exclusive=False)
        if kid is None:
            keystate.init_current_kid(conn, self.ring.preferred, self.now_dt())
            kid = keystate.lock_current_kid(conn, exclusive=False)
        assert kid is not None
        return kid

    def seal(self, conn: Connection, plaintext: bytes, aad: str) -> bytes:
        """Encrypt a secret for a row written in ``conn``'s transaction."""
        return self.ring.seal(plaintext, aad, self.sealing_kid(conn))

    def now(self) -> float:
        return self.clock()

    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


def open_context(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    run_migrations: bool = True,
    create: bool = True,
) -> ServerContext:
    """The context of ``settings``' database; ``create=False`` (admin commands) refuses to
    create a database, its tables or a master key file where none is: it raises
    :class:`~keyfob.server.store.db.NoDatabase` instead."""
    if not create:
        require_database(settings.db)
    engine = make_engine(settings.db)
    if not create:
        require_tables(engine, settings.db)
    if run_migrations:
        migrate(engine)
    env_key = settings.master_key.get_secret_value() if settings.master_key else None
    if not create and env_key is None and not settings.resolved_key_file().exists():
        raise MasterKeyError(
            f"no master key file at {settings.resolved_key_file()} for the database {settings.db}",
            hint="give the server's key file with --key-file (or KEYFOB_KEY_FILE, key_file in "
            "the config file), or its keys in KEYFOB_MASTER_KEY",
        )
    ring, created = load_or_create(settings.resolved_key_file(), env_key)
    ctx = ServerContext(
        settings=settings,
        engine=engine,
        ring=ring,
        policy=settings.policy(),
        clock=clock,
        key_created=created,
    )
    _check_sealing_key(ctx)
    return ctx


def _check_sealing_key(ctx: ServerContext) -> None:
    """Refuse to start without the key the database seals with: such a server could neither
    open the secrets nor store new ones, and would answer every login with an error."""
    with ctx.begin() as conn:
        kid = ctx.sealing_kid(conn)
    if not ctx.ring.holds(kid):
        raise MasterKeyError(
            f"this database seals its secrets with master key {kid}, which "
            f"{ctx.ring.describe} does not hold (it holds {', '.join(ctx.ring.kids())})",
            hint="start with the key file this database was created or rotated with, or put "
            "that key into KEYFOB_MASTER_KEY",
        )
