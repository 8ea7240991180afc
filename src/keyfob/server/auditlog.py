"""The audit trail: who did what to which user or token, and how it ended.

``details`` is for context (a file name, a count, a reason); keys that could carry a secret or a
code are refused outright, so that a careless caller fails loudly in tests rather than leaking.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from keyfob.server.context import ServerContext
from keyfob.server.inputs import fit
from keyfob.server.store import repo
from keyfob.server.store.schema import audit

_FORBIDDEN_KEYS = {"secret", "code", "codes", "password", "key", "otp", "seed", "token_secret"}


def entry(
    ctx: ServerContext,
    *,
    actor: str,
    action: str,
    outcome: str,
    target_user: str | None = None,
    target_serial: str | None = None,
    reason: str | None = None,
    client: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One audit row's values, checked; write it with :func:`record` or :func:`record_all`."""
    if details and _FORBIDDEN_KEYS & {k.lower() for k in details}:
        raise ValueError(f"audit details must not carry secrets: {sorted(details)}")
    return _storable(
        {
            "at": ctx.now_dt(),
            "actor": actor,
            "action": action,
            "outcome": outcome,
            "target_user": target_user,
            "target_serial": target_serial,
            "reason": reason,
            "client": client,
            "details": details or None,
        }
    )


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


def record(
    conn: Connection,
    ctx: ServerContext,
    *,
    actor: str,
    action: str,
    outcome: str,
    target_user: str | None = None,
    target_serial: str | None = None,
    reason: str | None = None,
    client: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write one audit row in the caller's transaction."""
    values = entry(
        ctx,
        actor=actor,
        action=action,
        outcome=outcome,
        target_user=target_user,
        target_serial=target_serial,
        reason=reason,
        client=client,
        details=details,
    )
    repo.insert_audit(conn, **values)


def record_all(conn: Connection, entries: list[dict[str, Any]]) -> None:
    """Write several rows with one statement: a validation that also locks a token costs the
    same statements as one that does not (timing must not tell real users apart)."""
    repo.insert_audits(conn, entries)
