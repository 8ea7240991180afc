"""The audit trail: who did what to which user or token, and how it ended.

``details`` is for context (a file name, a count, a reason); keys that could carry a secret or a
code are refused outright, so that a careless caller fails loudly in tests rather than leaking.
"""

from __future__ import annotations

from typing import Any, Required, TypedDict, Unpack

from sqlalchemy import Connection

from keyfob.server.context import ServerContext
from keyfob.server.inputs import ACTION_MAX, check_prefix, fit
from keyfob.server.store import repo
from keyfob.server.store.records import AuditFilter, AuditRecord, Page
from keyfob.server.store.schema import audit

_FORBIDDEN_KEYS = {"secret", "code", "codes", "password", "key", "otp", "seed", "token_secret"}


class Caller(TypedDict):
    """Who asked for an operation and from which address: the ``actor`` and ``client`` that
    every service takes for its audit row (the routes and pages pass ``**caller``)."""

    actor: str
    client: str | None


class Fields(TypedDict, total=False):
    """What a caller says of one event; the time is the server's."""

    actor: Required[str]
    action: Required[str]
    outcome: Required[str]
    target_user: str | None
    target_serial: str | None
    reason: str | None
    client: str | None
    details: dict[str, Any] | None


# Every column but the key: a batch insert (record_all) needs each row to name them all.
_EMPTY: dict[str, Any] = {c.name: None for c in audit.c if not c.primary_key}


def entry(ctx: ServerContext, **fields: Unpack[Fields]) -> dict[str, Any]:
    """One audit row's values, checked; write it with :func:`record` or :func:`record_all`."""
    details = fields.get("details")
    if details and _FORBIDDEN_KEYS & {k.lower() for k in details}:
        raise ValueError(f"audit details must not carry secrets: {sorted(details)}")
    return _storable({**_EMPTY, **fields, "at": ctx.now_dt(), "details": details or None})


def _storable(values: dict[str, Any]) -> dict[str, Any]:
    """Every text value cut to its column, control characters dropped: the record of what
    happened must be written even when what happened was an odd request (a 2000-character
    X-Forwarded-For address), and PostgreSQL refuses what SQLite would store silently."""
    out = dict(values)
    for name, value in values.items():
        length = getattr(audit.c[name].type, "length", None)
        if isinstance(value, str) and length:
            out[name] = fit(value, length)
    return out


def record(conn: Connection, ctx: ServerContext, **fields: Unpack[Fields]) -> None:
    """Write one audit row in the caller's transaction."""
    write(conn, entry(ctx, **fields))


def event(
    ctx: ServerContext,
    action: str,
    outcome: str,
    actor: str,
    client: str | None,
    user: str | None = None,
    serial: str | None = None,
    *,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """:func:`entry` with its words in the order a service knows them — what, how it ended,
    who asked and from where, about which user and token — so that a call fits on a line."""
    return entry(
        ctx,
        actor=actor,
        action=action,
        outcome=outcome,
        target_user=user,
        target_serial=serial,
        reason=reason,
        client=client,
        details=details,
    )


def success(
    conn: Connection,
    ctx: ServerContext,
    action: str,
    actor: str,
    client: str | None,
    user: str | None = None,
    serial: str | None = None,
    **details: Any,
) -> None:
    """Write the row of an operation that was done (most rows are)."""
    write(conn, event(ctx, action, "success", actor, client, user, serial, details=details))


def write(conn: Connection, row: dict[str, Any]) -> None:
    """Write one row made by :func:`entry` or :func:`event`, in the caller's transaction."""
    repo.insert_audit(conn, row)


def record_all(conn: Connection, entries: list[dict[str, Any]]) -> None:
    """Write several rows with one statement: a validation that also locks a token costs the
    same statements as one that does not (timing must not tell real users apart)."""
    repo.insert_audits(conn, entries)


def query(ctx: ServerContext, where: AuditFilter, *, limit: int, offset: int) -> Page[AuditRecord]:
    """One page of the log, newest first: the listing of the REST API and of the admin page."""
    hint = "filter by an action's start, such as token. or user.create"
    check_prefix(where.action, "action", ACTION_MAX, hint=hint)
    with ctx.engine.connect() as conn:
        return repo.query_audit(conn, where, limit=limit, offset=offset)
