"""Engine creation (SQLite tuned for a server, or PostgreSQL) and migrations on start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from keyfob.errors import KeyfobError

MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseError(KeyfobError):
    code = "database"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


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
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=8,
            max_overflow=16,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    raise DatabaseError(
        f"unsupported database {parsed.get_backend_name()!r}",
        hint="use sqlite:///path.db or postgresql+psycopg://…",
    )


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic), safely from several processes."""
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
