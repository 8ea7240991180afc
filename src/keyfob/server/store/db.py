"""Engine creation (SQLite tuned for a server, or PostgreSQL) and migrations on start."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

from keyfob.errors import KeyfobError

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("keyfob.server")


class DatabaseError(KeyfobError):
    code = "database"


class NoDatabase(DatabaseError):
    """An admin command found no keyfob database where it looked (it never creates one)."""

    code = "no_database"


NO_DATABASE_HINT = (
    'point to the server\'s database with --db, KEYFOB_DB or db = "…" in the config file '
    "(~/.config/keyfob/keyfob.toml or /etc/keyfob/keyfob.toml; make run writes it); "
    "keyfob serve or keyfob admin init creates a new one"
)


def require_database(url: str) -> None:
    """Refuse a SQLite file that does not exist (SQLite would quietly create an empty one)."""
    parsed = make_url(normalise_url(url))
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):
        return
    path = Path(database)
    if not path.is_file():
        raise NoDatabase(f"no keyfob database at {path.absolute()}", hint=NO_DATABASE_HINT)


def require_tables(engine: Engine, url: str) -> None:
    """Refuse a database that holds no keyfob tables (an empty PostgreSQL database or SQLite
    file) instead of creating them."""
    from sqlalchemy import inspect

    try:
        found = inspect(engine).has_table("users")
    except Exception as exc:
        raise DatabaseError(
            f"cannot open the database: {exc}".splitlines()[0],
            hint="check --db and that the database server answers",
        ) from None
    if not found:
        shown = make_url(normalise_url(url)).render_as_string(hide_password=True)
        raise NoDatabase(f"the database {shown} holds no keyfob tables", hint=NO_DATABASE_HINT)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


# A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 2.0


def _note_checkin(_dbapi_conn: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    """SQLAlchemy's ``pool_pre_ping``, for connections that sat idle: after a PostgreSQL
    restart (or a firewall dropping idle sessions) the pool's connections are dead, and the
    first request would get an error. ``pool_pre_ping`` pings on every checkout — a round
    trip, and a validation checks out three times — while under load a connection goes back
    into service milliseconds after its last statement worked. Raising DisconnectionError
    makes the pool drop this connection and hand out a fresh one."""
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
        return
    try:
        _ping(dbapi_conn)
    except Exception as exc:
        raise DisconnectionError(f"idle connection failed its ping: {exc}") from None


def _ping(dbapi_conn: Any) -> None:
    """``SELECT 1`` outside any transaction (as SQLAlchemy's psycopg ping does), so that the
    connection is not left idle in a transaction."""
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    try:
        with dbapi_conn.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        if not dbapi_conn.closed:
            dbapi_conn.autocommit = autocommit


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` as psycopg 3 URLs; a bare path as SQLite."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{url}"
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise DatabaseError(f"cannot read the database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        _private_sqlite_files(parsed.database)
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=8,
            max_overflow=16,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, pool_size=10, max_overflow=20)
        event.listen(engine, "checkin", _note_checkin)
        event.listen(engine, "checkout", _ping_if_idle)
        return engine
    raise DatabaseError(
        f"unsupported database {parsed.get_backend_name()!r}",
        hint="use sqlite:///path.db or postgresql+psycopg://…",
    )


def _private_sqlite_files(database: str | None) -> None:
    """Make the database file (and its -wal, -shm and -journal companions) readable by this
    user only, like the master key file: it holds password hashes, API key hashes and the
    sealed secrets. A new file is created 0600 before SQLite opens it (SQLite would create it
    0644 under the usual umask, and gives the companion files the database file's mode); an
    existing one is tightened on every start."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return  # SQLite's own error says which directory is missing
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        _tighten(path.with_name(path.name + suffix))


def _tighten(path: Path) -> None:
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except FileNotFoundError:
        return
    except PermissionError:
        log.warning("cannot make %s readable by its owner only (owned by another user?)", path)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic), safely from several processes.

    Alembic is imported here, not at the top: only a starting server or admin command needs it.
    """
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # Two servers starting at once: the second waits, then finds nothing to do.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(72541)")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except KeyfobError:
        raise
    except Exception as exc:
        raise DatabaseError(
            f"cannot open or migrate the database: {exc}",
            hint="check --db and that the database server answers",
        ) from None
