"""Where a route's blocking database call runs: on the event loop for SQLite, in a worker thread
for PostgreSQL.

A validation on SQLite is a few hundred microseconds of CPU (the database is a library in this
process, and writers queue on one lock anyway): handing it to a thread costs about as much as
the call and makes threads fight over the GIL. On PostgreSQL the same call mostly waits — for
round trips, and for the WAL flush of its commit — so on the event loop one worker would hold
one validation at a time and every commit would pay its own flush; in threads, several are in
flight and PostgreSQL flushes their commits together. The threads are capped at the engine's
pool size, so a burst queues here rather than on the connection pool's timeout.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar
from weakref import WeakKeyDictionary

import anyio.to_thread
from anyio import CapacityLimiter
from anyio.lowlevel import RunVar
from starlette.requests import Request

from keyfob.server.context import ServerContext

P = ParamSpec("P")
R = TypeVar("R")


async def run_db(request: Request, call: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``call(*args, **kwargs)``, inline on SQLite and in a capped worker thread otherwise."""
    ctx: ServerContext = request.app.state.ctx
    if ctx.engine.dialect.name == "sqlite":
        return call(*args, **kwargs)
    limiter = _limiter(request, ctx)
    return await anyio.to_thread.run_sync(functools.partial(call, *args, **kwargs), limiter=limiter)


# The limiters of the running event loop, one per app. A limiter belongs to the event loop
# that made it (its waiters are that loop's events, woken by that loop): one shared by several
# loops — Starlette's TestClient runs each request in an event loop of its own, in the caller's
# thread — leaves a waiter woken from another thread asleep for good once the cap is reached.
_LIMITERS: RunVar[WeakKeyDictionary[Any, CapacityLimiter]] = RunVar("keyfob_db_limiters")


def _limiter(request: Request, ctx: ServerContext) -> CapacityLimiter:
    """One per app and event loop (a server's worker runs one loop), made on first use."""
    limiters = _LIMITERS.get(None)
    if limiters is None:
        limiters = WeakKeyDictionary()
        _LIMITERS.set(limiters)
    limiter = limiters.get(request.app)
    if limiter is None:
        size = getattr(ctx.engine.pool, "size", lambda: 10)()
        limiter = limiters[request.app] = CapacityLimiter(size)
    return limiter
