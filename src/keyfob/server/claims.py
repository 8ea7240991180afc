"""How much guessing self-assignment allows: bounded per claimant, never per stock token.

A stock token is in nobody's hands as far as the server knows, so wrong codes typed for it must
not count as *its* failures: if they did, anyone signed in could lock every token in stock with
five claims each. Guessing is bounded on the claimant instead — at most :data:`PER_USER` failed
claims a day for one user and :data:`PER_ADDRESS` from one client address. A claim succeeds only
with the serial *and* a code within ±2 steps of the token's clock (5 in a million per guess for
6 digits), so ten guesses a day leave an account about 0.005 % a day of taking a token whose
serial it knows, and every guess is in the audit log.

The failures are counted in the audit log itself (action ``token.self_assign``, outcome
``failure``, by claimant and by address): every worker and node writes there, in the claim's own
transaction, so the count is shared and always agrees with what the log shows. The caller holds
the claimant's row lock (``repo.lock_user``; SQLite has a single writer) while it counts, checks
and records, so parallel claims of one user are counted one after another. A claim refused by
this limit is audited as ``refused``, which does not count: hammering does not extend the wait.

(The shared ``rate_events`` limiter prunes every row older than the sign-in window of five
minutes, which is far too short a memory for this bound; the audit log keeps it.)
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection

from keyfob.server import auditlog
from keyfob.server.context import ServerContext
from keyfob.server.errors import TooManyAttempts
from keyfob.server.store import repo

ACTION = "token.self_assign"
PER_USER = 10
PER_ADDRESS = 50
WINDOW = 86400.0  # seconds


class TooManyClaims(TooManyAttempts):
    """429 with ``Retry-After``: this claimant has used up its failed claims for now. Says
    nothing about the serial or the code of the claim it refuses (neither was looked at)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        hours = max(1, round(retry_after / 3600))
        self.hint = (
            f"too many serials or codes were not accepted; try again in about {hours} "
            f"hour{'s' if hours > 1 else ''}, or ask IT to assign the token to you"
        )


def _wait(conn: Connection, ctx: ServerContext, limit: int, **who: str) -> int:
    """Seconds until the oldest counted failure leaves the window, or 0 if under ``limit``."""
    since = ctx.now_dt() - timedelta(seconds=WINDOW)
    count, oldest = repo.count_audit(conn, action=ACTION, outcome="failure", since=since, **who)
    if count < limit or oldest is None:
        return 0
    return max(1, int((oldest - since).total_seconds()) + 1)


def retry_after(conn: Connection, ctx: ServerContext, username: str, client: str | None) -> int:
    """0 when this claimant may try a claim now; else seconds to wait. Call it holding the
    claimant's row lock, in the transaction that will record the claim."""
    waits = [_wait(conn, ctx, PER_USER, target_user=username)]
    if client:
        waits.append(_wait(conn, ctx, PER_ADDRESS, client=client))
    return max(waits)


def refuse(
    ctx: ServerContext,
    username: str,
    serial: str,
    wait: int,
    *,
    actor: str,
    client: str | None,
) -> TooManyClaims:
    """Audit a claim refused unread, and the error to raise for it."""
    with ctx.begin() as conn:
        who = (actor, client, username, serial)
        auditlog.write(conn, auditlog.event(ctx, ACTION, "refused", *who, reason="rate_limited"))
    return TooManyClaims(wait)
