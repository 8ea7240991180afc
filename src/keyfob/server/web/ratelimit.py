"""Password (and sign-in code) rate limiting: failures per (username, address) and per address
in a sliding window, counted in the database (``rate_events``).

In the database, not in memory: every ``--workers`` process and every node behind a load
balancer must share one count, or N workers would allow N times the guesses, and a restart
would forgive them all. An attempt is counted *before* the password is hashed, atomically with
the check (store/rates.py), so a burst of parallel requests cannot all slip under the limit and
each cost an argon2 run; a right password takes its count back. Refused attempts are not
recorded, so a flood costs reads, not rows, and the table holds at most a window's failures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fastapi.responses import Response
from sqlalchemy import Connection

from keyfob.server import accounts
from keyfob.server.context import ServerContext
from keyfob.server.store import rates
from keyfob.server.store.repo import user_key


@dataclass(frozen=True)
class Attempt:
    """One counted attempt: ``wait`` > 0 means refused (seconds until the next is allowed)."""

    wait: int
    user_bucket: str
    ids: tuple[int, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.wait == 0


class LoginLimiter:
    """Shared by the web sign-in, its code step, the password forms and HTTP Basic."""

    def __init__(
        self,
        ctx: ServerContext,
        per_user: int = 5,
        per_address: int = 30,
        window: float = 300.0,
    ) -> None:
        self.ctx = ctx
        self.per_user, self.per_address, self.window = per_user, per_address, window
        self._next_sweep = -math.inf

    def _limits(self, username: str, address: str) -> list[tuple[str, int]]:
        return [
            (rates.bucket("u", user_key(username), address), self.per_user),
            (rates.bucket("a", address), self.per_address),
        ]

    def _wait(self, found: dict[str, tuple[int, float]], limits: list[tuple[str, int]]) -> int:
        now, waits = self.ctx.now(), [0]
        for name, limit in limits:
            count, oldest = found.get(name, (0, now))
            if count >= limit:
                waits.append(max(1, int(oldest + self.window - now) + 1))
        return max(waits)

    def attempt(self, username: str, address: str) -> Attempt:
        """Count an attempt as a failure before checking it, or refuse it (not counted).

        A read-only look first: under a flood the refusals cost no write."""
        limits = self._limits(username, address)
        names = [name for name, _ in limits]
        since = self.ctx.now() - self.window
        with self.ctx.engine.connect() as conn:
            wait = self._wait(rates.counts(conn, names, since), limits)
        if wait:
            return Attempt(wait, names[0])
        with self.ctx.begin() as conn:
            rates.lock(conn, names[1], since)
            rates.lock(conn, names[0], since)
            wait = self._wait(rates.counts(conn, names, since), limits)
            ids = () if wait else rates.add(conn, names, self.ctx.now())
            self._sweep(conn)
        return Attempt(wait, names[0], ids)

    def release(self, attempt: Attempt) -> None:
        """The password was right but this is not yet a sign-in (a code step follows): the
        attempt stops counting as a failure."""
        if attempt.ids:
            with self.ctx.begin() as conn:
                rates.remove(conn, attempt.ids)

    def succeeded(self, attempt: Attempt) -> None:
        """A full success: the attempt and this user's earlier failures from here are forgiven
        (the address's other failures still count)."""
        with self.ctx.begin() as conn:
            rates.remove(conn, attempt.ids)
            rates.clear(conn, attempt.user_bucket)

    def check_password(self, username: str, address: str, password: str) -> tuple[bool, int]:
        """(right, seconds to wait) for a password typed on a form of a signed-in user.

        Limited like the sign-in: a session left open must not become an unlimited oracle
        for the account's password (or a way to make the server hash without end)."""
        attempt = self.attempt(username, address)
        if not attempt.allowed:
            return False, attempt.wait
        if accounts.authenticate(self.ctx, username, password) is None:
            return False, 0
        self.succeeded(attempt)
        return True, 0

    def _sweep(self, conn: Connection) -> None:
        """Every tenth of a window, drop every expired row, whoever's it was: buckets nobody
        tries again would otherwise stay. (So ``rate_events`` is this limiter's table alone: a
        bound with a longer memory must keep its count elsewhere, as claims.py does.) Not on
        every attempt: without an index on ``at`` alone, this DELETE reads the whole table."""
        now = self.ctx.now()
        if now >= self._next_sweep:
            self._next_sweep = now + self.window / 10
            rates.prune(conn, now - self.window)


def too_many(response: Response, wait: int) -> Response:
    """A refused attempt's page (429) says when to come back, as the API's answer does."""
    response.headers["Retry-After"] = str(wait)
    return response
