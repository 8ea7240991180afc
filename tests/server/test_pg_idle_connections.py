"""A PostgreSQL restart (or a firewall that drops idle sessions) kills the pooled connections:
the first validation afterwards must still be answered. The pool pings a connection that sat
idle before handing it out (store/db.py), instead of pinging on every checkout."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from keyfob.server import accounts
from keyfob.server.context import ServerContext
from keyfob.server.store import db, repo
from keyfob.server.validation import validate
from testkit import activate_app


def _kill_pooled_connections(ctx: ServerContext) -> int:
    """End every other session on this database, as a PostgreSQL restart would."""
    admin = sa.create_engine(ctx.engine.url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        admin.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_idle_connection_killed_underneath_is_replaced(ctx, clock, monkeypatch) -> None:
    accounts.create_user(ctx, "idle@example.com")
    app = activate_app(ctx, clock, "idle@example.com")
    assert validate(ctx, "idle@example.com", app.at(clock.now)).accepted  # the pool is warm
    assert _kill_pooled_connections(ctx) >= 1
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)  # as if it sat idle for a while
    clock.advance(30)
    assert validate(ctx, "idle@example.com", app.at(clock.now)).accepted


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_busy_connection_killed_underneath_costs_no_answer(ctx, clock, monkeypatch) -> None:
    """A connection back in service within IDLE_PING_SECONDS is handed out unchecked (no round
    trip), so one killed in that instant fails its first statement: the validation runs once
    more on a fresh connection, and the code is accepted — once."""
    accounts.create_user(ctx, "busy@example.com")
    app = activate_app(ctx, clock, "busy@example.com")
    assert validate(ctx, "busy@example.com", app.at(clock.now)).accepted
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 3600.0)
    _kill_pooled_connections(ctx)
    clock.advance(30)
    code = app.at(clock.now)
    assert validate(ctx, "busy@example.com", code).accepted
    assert validate(ctx, "busy@example.com", code).reason == "replay"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_database_that_stays_down_is_an_error_not_a_reject(ctx, clock, monkeypatch) -> None:
    """Once more, not forever: a database that refuses every connection is an error (the API
    answers 503/500), never a silent reject that looks like a wrong code."""
    accounts.create_user(ctx, "down@example.com")
    app = activate_app(ctx, clock, "down@example.com")
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 3600.0)
    calls = []

    def broken(*args: object, **kwargs: object) -> None:
        calls.append(1)
        raise OperationalError(
            "SELECT", {}, Exception("server closed the connection"), connection_invalidated=True
        )

    monkeypatch.setattr(repo, "active_tokens_of", broken)
    with pytest.raises(OperationalError):
        validate(ctx, "down@example.com", app.at(clock.now))
    assert len(calls) == 2
