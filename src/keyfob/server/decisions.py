"""Store a verification decision and audit it — the one way every code-checking operation
(validation, enrolment, self-assignment, resync) records its outcome: :func:`apply_decision` in
the caller's transaction, :func:`settle` in one of its own, as cheap as the database allows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from keyfob.otp.verify import Decision, TokenState, resync
from keyfob.server import auditlog
from keyfob.server.context import ServerContext
from keyfob.server.store import repo
from keyfob.server.store.records import TokenRecord


def apply_decision(
    conn: Connection,
    ctx: ServerContext,
    token: TokenRecord,
    decision: Decision,
    *,
    action: str,
    actor: str,
    client: str | None,
    target_user: str | None,
    extra: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> bool:
    """Compare-and-set the new state (plus ``extra`` columns when accepted) and write the audit
    row; True only when the decision accepted AND the write won."""
    ok = repo.apply_state(
        conn,
        token,
        decision.state,
        accepted_step=decision.step if decision.accepted else None,
        now=ctx.now_dt(),
        extra=extra if decision.accepted else None,
    )
    accepted = decision.accepted and ok
    outcome = "success" if accepted else "failure"
    who = (actor, client, target_user, token.serial)
    what = {"token_id": token.id, "drift": decision.state.drift, **(details or {})}
    reason = decision.reason.value
    auditlog.write(conn, auditlog.event(ctx, action, outcome, *who, reason=reason, details=what))
    return accepted


def settle(
    ctx: ServerContext,
    token: TokenRecord,
    state: TokenState,
    *,
    accepted_step: int | None,
    rows: list[dict[str, Any]],
    always: bool = False,
) -> bool:
    """Compare-and-set one token's new state and write the audit ``rows`` with it, all or
    nothing; True when the compare-and-set won (the rows are written only then, unless
    ``always``: the decoy's refusal is audited although its row matches nothing).

    The hot path of every validation: on PostgreSQL one statement on an autocommit connection
    (one round trip instead of BEGIN, UPDATE, INSERT and COMMIT); on SQLite, which has no
    UPDATE inside WITH, the two statements in a transaction under the write lock."""
    now = ctx.now_dt()
    if ctx.engine.dialect.name == "postgresql":
        with ctx.autocommit() as conn:
            return repo.cas_then_audit(
                conn, token, state, accepted_step=accepted_step, now=now, rows=rows, always=always
            )
    with ctx.begin() as conn:
        won = repo.apply_state(conn, token, state, accepted_step=accepted_step, now=now)
        if won or always:
            auditlog.record_all(conn, rows)
        return won


def resync_codes(
    conn: Connection,
    ctx: ServerContext,
    token: TokenRecord,
    first_code: str,
    second_code: str,
    *,
    actor: str,
    client: str | None,
) -> tuple[bool, Decision]:
    """Two consecutive codes typed at once (admin or self-service)."""
    secret = ctx.ring.open(token.secret_enc, token.id)
    decision = resync(
        token.params(secret), token.verification, first_code, second_code, ctx.now(), ctx.policy
    )
    ok = apply_decision(
        conn,
        ctx,
        token,
        decision,
        action="token.resync",
        actor=actor,
        client=client,
        target_user=token.owner,
    )
    return ok, decision
