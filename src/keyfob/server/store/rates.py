"""Statements of the shared sign-in limiter (web/ratelimit.py): one ``rate_events`` row per
counted failure, in a bucket named by a hash, so every worker and every node sees one count.

Buckets are hashes, not the typed username: a password typed into the username field must not
sit in the database, and a hash always fits the column whatever was typed.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, delete, func, insert, select

from keyfob.server.store.schema import rate_events

# pg_advisory_xact_lock(namespace, key): apart from the migration lock (one bigint key).
_LOCK_NAMESPACE = 72542


def bucket(kind: str, *parts: str) -> str:
    """A bucket name: ``kind`` and the SHA-256 of the parts (64 hex digits, 66 characters)."""
    digest = hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{kind}:{digest}"


def lock(conn: Connection, name: str, before: float) -> None:
    """Serialise attempts on ``name`` until ``conn`` commits, and drop its expired rows.

    Counting and then recording must be one step, or a burst of parallel attempts would all
    count the same few rows and all pass. PostgreSQL: an advisory transaction lock on the
    bucket. SQLite: this DELETE is the transaction's first statement, so it takes the database
    write lock (pysqlite would run a first SELECT outside the transaction)."""
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big", signed=True)
        conn.execute(select(func.pg_advisory_xact_lock(_LOCK_NAMESPACE, key)))
    conn.execute(delete(rate_events).where(rate_events.c.bucket == name, rate_events.c.at < before))


def counts(conn: Connection, names: list[str], since: float) -> dict[str, tuple[int, float]]:
    """For each bucket with rows after ``since``: (how many, the oldest one's time)."""
    query = (
        select(rate_events.c.bucket, func.count(), func.min(rate_events.c.at))
        .where(rate_events.c.bucket.in_(names), rate_events.c.at > since)
        .group_by(rate_events.c.bucket)
    )
    return {row[0]: (int(row[1]), float(row[2])) for row in conn.execute(query)}


def add(conn: Connection, names: list[str], at: float) -> tuple[int, ...]:
    """One row per bucket; their ids, so that a later success can take them back."""
    stmt = insert(rate_events).returning(rate_events.c.id)
    return tuple(conn.execute(stmt, {"bucket": name, "at": at}).scalar_one() for name in names)


def remove(conn: Connection, ids: tuple[int, ...]) -> None:
    if ids:
        conn.execute(delete(rate_events).where(rate_events.c.id.in_(ids)))


def clear(conn: Connection, name: str) -> None:
    conn.execute(delete(rate_events).where(rate_events.c.bucket == name))


def prune(conn: Connection, before: float) -> int:
    """Drop every expired row (buckets nobody tries again would otherwise stay forever)."""
    return conn.execute(delete(rate_events).where(rate_events.c.at < before)).rowcount
