"""Lost, found and retired tokens; drift at a glance (issue 13, docs/design.md §4).

- **lost** (``tokens.state = lost``, ``lost_at``): validation reads active tokens only, so a
  lost token refuses every code with the answer a wrong code gets (``validation.py``: the same
  decoy work when the user has nothing else); it stays among its owner's methods, shown as
  "lost on DATE". ``--issue-tap`` gives the owner a temporary access passcode at once.
- **found**: back to active with failures, lock and any pending resync cleared; the drift is
  kept as the starting point and the next accepted code learns it again (every accept does).
- **retired**: for good. ``secret_enc`` is overwritten with a fresh random secret sealed under
  the current key (so key rotation and backups still open every row, but nothing opens to the
  old secret), the owner is cleared, and an import of the serial is refused unless
  ``allow_retired`` (``inventory._plan_chunk``). The former owner keeps the mark that they had
  a second factor (``users.token_retired_at``, read by ``repo.has_second_factor``): on the
  user, not the row, because an ``allow_retired`` re-import replaces the row with a new life
  of the serial that owes nothing to the old owner.
- lost and retired tokens end the web sessions that their codes signed in
  (``web_sessions.signed_in_with``).
- **drift**: :func:`drift_report` (steps, seconds, the history of ``store/driftlog.py``, last
  use, a warning near the resync window's edge) and :func:`reset_drift` (audited).
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from keyfob.otp.verify import Policy, unlock
from keyfob.server import tap
from keyfob.server.context import ServerContext
from keyfob.server.errors import Conflict, NotFound
from keyfob.server.inventory import NO_TOKEN_HINT, _by_serial, _change
from keyfob.server.store import driftlog, repo
from keyfob.server.store.records import TokenRecord, state_values
from keyfob.server.store.vocab import TokenStatus

WARN_FRACTION = 0.75
"""A learned drift this far (of the resync window) from the token's true clock earns a warning:
a token left unused while it drifts further may pass the edge, and then no code is accepted
until an admin or the user resyncs it with two codes."""


def mark_lost(
    ctx: ServerContext,
    serial: str,
    *,
    actor: str,
    client: str | None = None,
    owner: str | None = None,
    signed_in_with: str | None = None,
    issue_tap: bool = False,
) -> tuple[TokenRecord, str | None]:
    """Put a token in state lost and sign out the web sessions its codes opened (whoever holds
    it must not stay signed in). ``owner`` restricts it to that user's own token, and
    ``signed_in_with`` (the id of the token the caller signed in with) is refused: the
    self-service page, where "lost" is only believed of a token the user did not just use.
    With ``issue_tap``, the owner's new passcode is returned (shown once)."""

    def lose(conn: Connection, token: TokenRecord) -> tuple[str | None, dict[str, Any]]:
        _own(token, serial, owner)
        if signed_in_with is not None and token.id == signed_in_with:
            raise Conflict(
                "you signed in with this token: it cannot be the one you lost",
                hint="sign in with another method or a temporary access passcode from your "
                "IT team to mark it lost, or ask your IT team to",
            )
        if token.state not in (TokenStatus.ACTIVE, TokenStatus.DISABLED):
            raise Conflict(
                f"token {serial} is {token.state}",
                hint="only an active or disabled token can be marked lost",
            )
        values = state_values(token.verification.reset_resync())
        repo.update_token(conn, token.id, state=TokenStatus.LOST, lost_at=ctx.now_dt(), **values)
        ended = repo.end_sessions_signed_in_with(conn, token.id, token.owner_id)
        return token.owner, {"was": str(token.state), "sessions_ended": ended}

    token = _change(ctx, serial, "token.lost", lose, actor=actor, client=client)
    passcode = None
    if issue_tap and token.owner:
        _, passcode = tap.issue(
            ctx, token.owner, actor=actor, client=client, reason=f"lost token {serial}"
        )
    return token, passcode


def mark_found(
    ctx: ServerContext, serial: str, *, actor: str, client: str | None = None
) -> TokenRecord:
    """A lost token back to active; the next code re-learns its drift."""

    def find(conn: Connection, token: TokenRecord) -> tuple[str | None, dict[str, Any]]:
        if token.state is not TokenStatus.LOST:
            raise Conflict(f"token {serial} is {token.state}, not lost", hint="nothing to do")
        values = state_values(unlock(token.verification))
        repo.update_token(conn, token.id, state=TokenStatus.ACTIVE, lost_at=None, **values)
        return token.owner, {"lost_at": token.lost_at.isoformat() if token.lost_at else None}

    return _change(ctx, serial, "token.found", find, actor=actor, client=client)


def retire(
    ctx: ServerContext, serial: str, *, actor: str, client: str | None = None
) -> TokenRecord:
    """End a token for good: its secret overwritten, its owner cleared, its serial kept (so that
    a re-import is refused without ``allow_retired``)."""

    def end(conn: Connection, token: TokenRecord) -> tuple[str | None, dict[str, Any]]:
        if token.state in (TokenStatus.RETIRED, TokenStatus.PENDING):
            hint = (
                "nothing to do"
                if token.state is TokenStatus.RETIRED
                else "remove the pending enrolment from the user's methods instead"
            )
            raise Conflict(f"token {serial} is {token.state}", hint=hint)
        now = ctx.now_dt()
        repo.update_token(
            conn,
            token.id,
            state=TokenStatus.RETIRED,
            retired_at=now,
            owner_id=None,
            retired_owner_id=token.owner_id,
            secret_enc=ctx.seal(conn, secrets.token_bytes(32), token.id),
        )
        if token.owner_id is not None:  # their second factor for good, whatever the row becomes
            repo.update_user(conn, token.owner_id, token_retired_at=now)
        ended = repo.end_sessions_signed_in_with(conn, token.id, token.owner_id)
        return token.owner, {"was": str(token.state), "sessions_ended": ended}

    return _change(ctx, serial, "token.retire", end, actor=actor, client=client)


def reset_drift(
    ctx: ServerContext, serial: str, *, actor: str, client: str | None = None
) -> TokenRecord:
    """Set the learned drift to zero (and drop a pending resync); audited with the old drift."""

    def zero(conn: Connection, token: TokenRecord) -> tuple[str | None, dict[str, Any]]:
        state = dataclasses.replace(token.verification.reset_resync(), drift=0)
        repo.update_token(conn, token.id, **state_values(state))
        drift = token.verification.drift
        return token.owner, {"drift_steps": drift, "drift_seconds": drift * token.period}

    return _change(ctx, serial, "token.drift_reset", zero, actor=actor, client=client)


def _own(token: TokenRecord, serial: str, owner: str | None) -> None:
    if owner is not None and (token.owner or "").casefold() != owner.casefold():
        raise NotFound(f"no token with serial {serial!r}", hint=NO_TOKEN_HINT)


@dataclass(frozen=True)
class DriftReport:
    """What the helpdesk reads of a token's clock."""

    token: TokenRecord
    drift_steps: int
    drift_seconds: int
    history: list[driftlog.Run]
    rate_seconds_per_day: float | None
    last_used_at: datetime | None
    warning: str | None

    def as_dict(self) -> dict[str, Any]:
        period = self.token.period
        return {
            "serial": self.token.serial,
            "id": self.token.id,
            "owner": self.token.owner,
            "state": str(self.token.state),
            "lost_at": self.token.lost_at.isoformat() if self.token.lost_at else None,
            "drift_steps": self.drift_steps,
            "drift_seconds": self.drift_seconds,
            "rate_seconds_per_day": self.rate_seconds_per_day,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "warning": self.warning,
            "history": [
                {
                    "first_at": datetime.fromtimestamp(r.first_at, UTC).isoformat(),
                    "last_at": datetime.fromtimestamp(r.last_at, UTC).isoformat(),
                    "drift_steps": r.drift,
                    "drift_seconds": r.drift * period,
                    "accepts": r.accepts,
                }
                for r in self.history
            ],
        }


def drift_warning(drift_steps: int, period: int, policy: Policy) -> str | None:
    """A warning when the learned drift is at or past :data:`WARN_FRACTION` of the resync
    window (docs/design.md §4.2: ±120 steps by default), else None."""
    edge = policy.resync_window
    if abs(drift_steps) < WARN_FRACTION * edge:
        return None
    return (
        f"drift {drift_steps:+d} steps ({drift_steps * period:+d} s) is near the edge of the "
        f"±{edge}-step resync window: resync the token, or replace it"
    )


def drift_report(ctx: ServerContext, serial: str) -> DriftReport:
    with ctx.engine.connect() as conn:
        token = _by_serial(conn, serial)
    return report_of(ctx, token)


def report_of(ctx: ServerContext, token: TokenRecord) -> DriftReport:
    """The drift report of a token already read (a page of the inventory: no statement)."""
    steps = token.verification.drift
    runs = driftlog.parse(token.drift_history)
    return DriftReport(
        token,
        steps,
        steps * token.period,
        runs,
        driftlog.rate_per_day(runs, token.period),
        token.last_used_at,
        drift_warning(steps, token.period, ctx.policy),
    )
