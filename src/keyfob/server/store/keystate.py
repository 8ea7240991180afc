"""Statements about master keys and server processes: which key id seals, who holds which key.

The sealing key id is read with a *shared* lock by every transaction that seals a secret and
changed under an *exclusive* lock by a rotation, in the same transaction that re-encrypts the
rows. So a secret is never sealed with a key that a committed rotation has already left behind:
either the sealing transaction commits first (and the rotation, which waits, re-encrypts its
row) or the rotation commits first (and the sealing transaction, which waits, reads the new id).
On SQLite, where writers are serialised anyway, "lock" means taking the database's write lock
before reading; pysqlite would otherwise read outside the transaction.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from keyfob.server.store.schema import (
    directories,
    key_state,
    radius_clients,
    server_nodes,
    tokens,
)


def lock_current_kid(conn: Connection, *, exclusive: bool) -> str | None:
    """The sealing key id, locked until ``conn`` ends (None on a database that has none yet)."""
    if conn.dialect.name == "sqlite":
        conn.execute(update(key_state).where(key_state.c.id == 1).values(id=1))
        query = select(key_state.c.current_kid).where(key_state.c.id == 1)
    else:
        query = select(key_state.c.current_kid).where(key_state.c.id == 1)
        query = query.with_for_update(read=not exclusive)
    return conn.execute(query).scalar_one_or_none()


def current_kid(conn: Connection) -> str | None:
    """The sealing key id, read without a lock (for reports and pruning)."""
    return conn.execute(select(key_state.c.current_kid).where(key_state.c.id == 1)).scalar()


def init_current_kid(conn: Connection, kid: str, now: datetime) -> None:
    """Name the first sealing key, unless another process already did."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = dialect_insert(key_state).values(id=1, current_kid=kid, changed_at=now)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))


def set_current_kid(conn: Connection, kid: str, now: datetime) -> None:
    conn.execute(
        update(key_state).where(key_state.c.id == 1).values(current_kid=kid, changed_at=now)
    )


def sealed_rows(conn: Connection) -> list[tuple[str, str, bytes]]:
    """(table, row id, ciphertext) of every stored secret, whatever table it lives in."""
    rows = [
        ("tokens", r.id, bytes(r.secret_enc))
        for r in conn.execute(select(tokens.c.id, tokens.c.secret_enc))
    ]
    rows += [
        ("radius_clients", r.id, bytes(r.secret_enc))
        for r in conn.execute(select(radius_clients.c.id, radius_clients.c.secret_enc))
    ]
    rows += [  # directory bind passwords (server/directory/)
        ("directories", r.id, bytes(r.secret_enc))
        for r in conn.execute(select(directories.c.id, directories.c.secret_enc))
    ]
    return rows


def reseal(conn: Connection, table: str, row_id: str, blob: bytes) -> None:
    t = {"tokens": tokens, "directories": directories}.get(table, radius_clients)
    conn.execute(update(t).where(t.c.id == row_id).values(secret_enc=blob))


# --- server processes ----------------------------------------------------------------------


def node_id() -> str:
    return uuid.uuid4().hex


def upsert_node(conn: Connection, nid: str, kids: list[str], now: datetime) -> None:
    values = {"seen_at": now, "key_ids": ",".join(sorted(kids))[:255]}
    if conn.execute(update(server_nodes).where(server_nodes.c.id == nid).values(**values)).rowcount:
        return
    host, pid = socket.gethostname()[:255], os.getpid()
    conn.execute(server_nodes.insert().values(id=nid, host=host, pid=pid, started_at=now, **values))


def remove_node(conn: Connection, nid: str) -> None:
    conn.execute(delete(server_nodes).where(server_nodes.c.id == nid))


def live_nodes(conn: Connection, now: datetime, stale_after: float) -> list[tuple[str, set[str]]]:
    """("host pid N", key ids it holds) of every server seen within ``stale_after`` seconds."""
    since = now - timedelta(seconds=stale_after)
    rows = conn.execute(select(server_nodes).where(server_nodes.c.seen_at >= since))
    return [(f"{r.host} pid {r.pid}", set(filter(None, r.key_ids.split(",")))) for r in rows]
