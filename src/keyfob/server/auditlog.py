"""The audit trail: who did what to which user or token, and how it ended.

``details`` is for context (a file name, a count, a reason); keys that could carry a secret or a
code are refused outright, so that a careless caller fails loudly in tests rather than leaking.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from keyfob.server.context import ServerContext
from keyfob.server.store import repo

_FORBIDDEN_KEYS = {"secret", "code", "codes", "password", "key", "otp", "seed", "token_secret"}


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
    if details and _FORBIDDEN_KEYS & {k.lower() for k in details}:
        raise ValueError(f"audit details must not carry secrets: {sorted(details)}")
    repo.insert_audit(
        conn,
        at=ctx.now_dt(),
        actor=actor,
        action=action,
        outcome=outcome,
        target_user=target_user,
        target_serial=target_serial,
        reason=reason,
        client=client,
        details=details or None,
    )
