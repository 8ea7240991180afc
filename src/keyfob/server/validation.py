"""``POST /api/v1/validate``: is this the right code for this user, right now?

The cost is at most three statements and one commit: one indexed SELECT of the user's active
tokens, one compare-and-set UPDATE of the token that decided, one audit INSERT. If the
compare-and-set loses a race (another worker changed the token between our read and our write),
we read again and decide again, so a code is accepted at most once and never "lost".

Unknown users, disabled users, users without tokens, locked tokens and wrong codes all give the
same answer after the same work, because only real users have tokens that lock: were a locked
user faster than an unknown one, six validations would tell which usernames exist. Every refusal
therefore does, per token (a user without a usable token counts as one decoy token):

1. one AES-GCM open of a sealed secret (the decoy's is the size of a SHA-1 token's);
2. the steady-window check, then the resync scan a miss triggers — where the rules answer
   without computing (locked, malformed code, replay), :func:`decoy.burn` does that work on a
   random secret of the token's shape;
3. one compare-and-set UPDATE (a locked token's unchanged state is written back; the decoy's
   matches no row) and one audit INSERT (a new lockout's row goes in the same statement).

An unknown user costs what a user with one method costs; users with several methods cost more.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError

from keyfob.otp.verify import Decision, Policy, Reason, TokenParams, verify
from keyfob.server import auditlog, decoy, directory, tap
from keyfob.server.context import ServerContext
from keyfob.server.decisions import settle
from keyfob.server.store import repo
from keyfob.server.store.records import TokenRecord

log = logging.getLogger("keyfob.server")
MAX_ATTEMPTS = 5
# Refusals where the rules did not run the resync scan: decoy work makes up for it.
_UNCHECKED = frozenset({Reason.LOCKED, Reason.MALFORMED, Reason.REPLAY})


class _Raced(Exception):
    """The compare-and-set lost; read again."""


@dataclass(frozen=True)
class ValidationResult:
    accepted: bool
    reason: str
    serial: str | None = None
    token_id: str | None = None  # the token that took an accepted code (None for a passcode)


def _summary(decisions: list[tuple[TokenRecord, Decision]]) -> str:
    reasons = {d.reason for _, d in decisions}
    for reason in (Reason.REPLAY, Reason.RESYNC_PENDING, Reason.MALFORMED, Reason.WRONG_CODE):
        if reason in reasons:
            return reason.value
    return Reason.LOCKED.value


def _decide(
    tokens: list[TokenRecord], params: list[TokenParams], code: str, now: float, policy: Policy
) -> list[tuple[TokenRecord, Decision]]:
    """Steady windows of every token first (3 HMACs each); the resync scan only on a miss, and
    then for every token, by the rules or by :func:`decoy.burn` — the same work either way."""
    pairs = list(zip(tokens, params, strict=True))
    decisions = [
        (t, verify(p, t.verification, code, now, policy, allow_resync=False)) for t, p in pairs
    ]
    if any(d.accepted for _, d in decisions):
        return decisions
    decisions = [(t, verify(p, t.verification, code, now, policy)) for t, p in pairs]
    for (_, d), (_, p) in zip(decisions, pairs, strict=True):
        if d.reason in _UNCHECKED:
            decoy.burn(p, now, policy)
    return decisions


def validate(
    ctx: ServerContext, username: str, code: str, *, client: str | None = None, actor: str = "api"
) -> ValidationResult:
    """Decide ``code`` for ``username`` and record the outcome (see the module docstring).

    A database connection found dead (PostgreSQL restarted under a busy pool: the pool pings
    only connections that sat idle, store/db.py) fails its first statement; the pool then
    drops it and its siblings, and the validation runs once more on a fresh one. That is safe:
    whatever the dead connection did not commit is gone, and what it did commit (its reply
    lost) the compare-and-set sees, so a code is still accepted at most once."""
    try:
        return _validate(ctx, username, code, client, actor)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("validation: a database connection was lost; trying once more")
        return _validate(ctx, username, code, client, actor)


def _validate(
    ctx: ServerContext, username: str, code: str, client: str | None, actor: str
) -> ValidationResult:
    target = username.strip()[:255]
    # A directory user is looked up (or found in the cache: no LDAP round trip); one the
    # directory refuses (disabled, outside the group, gone) is refused like an unknown user.
    refusal = directory.admit(ctx, target).refusal
    if refusal is not None:
        decoy.parse(user=True, token_rows=1)
        return _refuse_without_token(ctx, target, code, ctx.now(), refusal, client, actor)
    for attempt in range(MAX_ATTEMPTS):
        with ctx.autocommit() as conn:
            user, tokens = repo.active_tokens_of(conn, target)
        # A 20-digit code can only be a temporary access passcode (server/tap.py); one that is
        # not the user's goes on below as a malformed code, counted against the same lockout.
        holder = user if user is not None and not user.disabled else None
        if attempt == 0 and tap.redeem(ctx, holder, tokens, code, client=client, actor=actor):
            return ValidationResult(True, "tap")
        now = ctx.now()
        if user is None or user.disabled or not tokens:
            decoy.parse(user=user is None, token_rows=0 if tokens else 1)
            reason = (
                "unknown_user"
                if user is None
                else ("user_disabled" if user.disabled else "no_tokens")
            )
            return _refuse_without_token(ctx, target, code, now, reason, client, actor)
        params = [t.params(ctx.ring.open(t.secret_enc, t.id)) for t in tokens]
        decisions = _decide(tokens, params, code, now, ctx.policy)
        try:
            return _apply(ctx, user.username, decisions, client, actor)
        except _Raced:
            continue
    with ctx.begin() as conn:
        auditlog.record_all(conn, [_failure(ctx, target, "contention", client, actor)])
    return ValidationResult(False, "contention")


def _refuse_without_token(
    ctx: ServerContext,
    target: str,
    code: str,
    now: float,
    reason: str,
    client: str | None,
    actor: str,
) -> ValidationResult:
    """No usable token: the decoy token takes its place, and its answer is ignored."""
    secret = decoy.open_secret()
    _decide([decoy.RECORD], [decoy.RECORD.params(secret)], code, now, ctx.policy)
    # the compare-and-set of a wrong code, on no row, and the audit row all the same
    row = _failure(ctx, target, reason, client, actor)
    settle(ctx, decoy.RECORD, decoy.FAILED, accepted_step=None, rows=[row], always=True)
    return ValidationResult(False, reason)


def _apply(
    ctx: ServerContext,
    username: str,
    decisions: list[tuple[TokenRecord, Decision]],
    client: str | None,
    actor: str,
) -> ValidationResult:
    accepted = [(t, d) for t, d in decisions if d.accepted]
    if accepted:
        token, decision = accepted[0]
        who = (actor, client, username, token.serial)
        what = {"token_id": token.id, "drift": decision.state.drift}
        reason = decision.reason.value
        row = auditlog.event(ctx, "validate", "success", *who, reason=reason, details=what)
        if not settle(ctx, token, decision.state, accepted_step=decision.step, rows=[row]):
            raise _Raced
        return ValidationResult(True, reason, token.serial, token.id)
    entries = [
        _lockout_entry(ctx, username, token, decision, client, actor)
        for token, decision in decisions
        if _newly_locked(ctx, token, decision)
    ]
    reason = _summary(decisions)
    entries.append(_failure(ctx, username, reason, client, actor))
    if len(decisions) == 1:  # most users hold one method: one statement on PostgreSQL
        token, decision = decisions[0]
        # A locked token's state comes back unchanged, and is written all the same.
        if not settle(ctx, token, decision.state, accepted_step=None, rows=entries):
            raise _Raced
        return ValidationResult(False, reason)
    now_dt = ctx.now_dt()
    with ctx.begin() as conn:
        for token, decision in decisions:
            if not repo.apply_state(conn, token, decision.state, accepted_step=None, now=now_dt):
                raise _Raced
        auditlog.record_all(conn, entries)
    return ValidationResult(False, reason)


def _failure(
    ctx: ServerContext, target: str, reason: str, client: str | None, actor: str
) -> dict[str, Any]:
    """The audit row of every refused validation, whatever refused it."""
    return auditlog.event(ctx, "validate", "failure", actor, client, target, reason=reason)


def _newly_locked(ctx: ServerContext, token: TokenRecord, decision: Decision) -> bool:
    return decision.state.locked_until > ctx.now() >= token.verification.locked_until


def _lockout_entry(
    ctx: ServerContext,
    username: str,
    token: TokenRecord,
    decision: Decision,
    client: str | None,
    actor: str,
) -> dict[str, Any]:
    state = decision.state
    seconds = round(state.locked_until - ctx.now())
    what = {"token_id": token.id, "fail_count": state.fail_count, "seconds": seconds}
    who = (actor, client, username, token.serial)
    return auditlog.event(ctx, "token.lockout", "locked", *who, details=what)
