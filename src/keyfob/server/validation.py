"""``POST /api/v1/validate``: is this the right code for this user, right now?

The cost is at most three statements and one commit: one indexed SELECT of the user's active
tokens, one compare-and-set UPDATE of the token that decided, one audit INSERT. If the
compare-and-set loses a race (another worker changed the token between our read and our write),
we read again and decide again, so a code is accepted at most once and never "lost".

Unknown users, disabled users, users without tokens, locked tokens and wrong codes all give the
same answer, after about the same work (a dummy check over a random secret).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from keyfob.otp.verify import Decision, Reason, TokenParams, TokenState, verify
from keyfob.server import auditlog
from keyfob.server.context import ServerContext
from keyfob.server.store import repo
from keyfob.server.store.records import TokenRecord

MAX_ATTEMPTS = 5
_DUMMY = TokenParams(secret=secrets.token_bytes(20))


class _Raced(Exception):
    """The compare-and-set lost; read again."""


@dataclass(frozen=True)
class ValidationResult:
    accepted: bool
    reason: str
    serial: str | None = None


def _summary(decisions: list[tuple[TokenRecord, Decision]]) -> str:
    reasons = {d.reason for _, d in decisions}
    for reason in (Reason.REPLAY, Reason.RESYNC_PENDING, Reason.MALFORMED, Reason.WRONG_CODE):
        if reason in reasons:
            return reason.value
    return Reason.LOCKED.value


def validate(
    ctx: ServerContext, username: str, code: str, *, client: str | None = None, actor: str = "api"
) -> ValidationResult:
    target = username.strip()[:255]
    for _ in range(MAX_ATTEMPTS):
        with ctx.engine.connect() as conn:
            user, tokens = repo.active_tokens_of(conn, target)
        now = ctx.now()
        if user is None or user.disabled or not tokens:
            verify(_DUMMY, TokenState(), code, now, ctx.policy)  # same work as a real check
            reason = (
                "unknown_user"
                if user is None
                else ("user_disabled" if user.disabled else "no_tokens")
            )
            with ctx.begin() as conn:
                auditlog.record(
                    conn,
                    ctx,
                    actor=actor,
                    action="validate",
                    outcome="failure",
                    target_user=target,
                    reason=reason,
                    client=client,
                )
            return ValidationResult(False, reason)
        params = [t.params(ctx.ring.open(t.secret_enc, t.id)) for t in tokens]
        # Steady windows of every token first (3 HMACs each); the resync scan only on a miss.
        decisions = [
            (t, verify(p, t.verification, code, now, ctx.policy, allow_resync=False))
            for t, p in zip(tokens, params, strict=True)
        ]
        if not any(d.accepted for _, d in decisions):
            decisions = [
                (t, verify(p, t.verification, code, now, ctx.policy))
                for t, p in zip(tokens, params, strict=True)
            ]
        try:
            return _apply(ctx, user.username, decisions, client, actor)
        except _Raced:
            continue
    with ctx.begin() as conn:
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="validate",
            outcome="failure",
            target_user=target,
            reason="contention",
            client=client,
        )
    return ValidationResult(False, "contention")


def _apply(
    ctx: ServerContext,
    username: str,
    decisions: list[tuple[TokenRecord, Decision]],
    client: str | None,
    actor: str,
) -> ValidationResult:
    now_dt = ctx.now_dt()
    accepted = [(t, d) for t, d in decisions if d.accepted]
    with ctx.begin() as conn:
        if accepted:
            token, decision = accepted[0]
            if not repo.apply_state(
                conn, token, decision.state, accepted_step=decision.step, now=now_dt
            ):
                raise _Raced
            auditlog.record(
                conn,
                ctx,
                actor=actor,
                action="validate",
                outcome="success",
                target_user=username,
                target_serial=token.serial,
                reason=decision.reason.value,
                client=client,
                details={"token_id": token.id, "drift": decision.state.drift},
            )
            return ValidationResult(True, decision.reason.value, token.serial)
        for token, decision in decisions:
            if decision.state == token.verification:
                continue  # locked: nothing changes
            if not repo.apply_state(conn, token, decision.state, accepted_step=None, now=now_dt):
                raise _Raced
            newly_locked = (
                decision.state.locked_until > ctx.now()
                and token.verification.locked_until <= ctx.now()
            )
            if newly_locked:
                auditlog.record(
                    conn,
                    ctx,
                    actor=actor,
                    action="token.lockout",
                    outcome="locked",
                    target_user=username,
                    target_serial=token.serial,
                    client=client,
                    details={
                        "token_id": token.id,
                        "fail_count": decision.state.fail_count,
                        "seconds": round(decision.state.locked_until - ctx.now()),
                    },
                )
        reason = _summary(decisions)
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="validate",
            outcome="failure",
            target_user=username,
            reason=reason,
            client=client,
        )
    return ValidationResult(False, reason)
