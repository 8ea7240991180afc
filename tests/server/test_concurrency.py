"""A code is accepted at most once: 20 threads racing in one process, and two `keyfob serve`
processes racing on one PostgreSQL. Two admins taken away at once leave one."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pyotp
import pytest

from keyfob.server import accounts, enrolment
from keyfob.server.context import ServerContext, open_context
from keyfob.server.errors import Conflict
from keyfob.server.settings import Settings
from keyfob.server.store import repo
from keyfob.server.validation import validate
from testkit import serve

from .conftest import reset_postgres


def _enrolled(ctx, clock_now: float, user: str = "racer@example.com") -> pyotp.TOTP:
    accounts.create_user(ctx, user)
    begun = enrolment.begin(ctx, user, "app", actor="test")
    totp = pyotp.parse_uri(begun.otpauth_uri)
    # Verify with the previous step's code, so that the current step's code is still fresh.
    enrolment.verify_enrolment(ctx, user, begun.id, totp.at(clock_now - 30), actor="test")
    return totp


def test_twenty_threads_one_accept(ctx, clock) -> None:
    totp = _enrolled(ctx, clock.now)
    code = totp.at(clock.now)
    barrier = threading.Barrier(20)

    def attempt(_: int) -> bool:
        barrier.wait()
        return validate(ctx, "racer@example.com", code).accepted

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(attempt, range(20)))
    assert results.count(True) == 1
    assert results.count(False) == 19


def test_two_server_processes_on_one_postgresql(pg_database, tmp_path, leak_watch) -> None:
    key_file = tmp_path / "shared.key"
    reset_postgres(pg_database)
    ctx = open_context(Settings(db=pg_database, key_file=key_file))
    now = time.time()
    if now % 30 > 25:  # keep the whole race inside one time step
        time.sleep(30 - now % 30 + 0.5)
        now = time.time()
    totp = _enrolled(ctx, now)
    _, key = accounts.create_api_key(ctx, "race", "validate")
    leak_watch.secrets.add(key)
    env = dict(os.environ, KEYFOB_KEY_FILE=str(key_file))
    try:
        with serve(pg_database, env=env) as one, serve(pg_database, env=env) as two:
            urls = [one.url, two.url]
            code = totp.now()
            leak_watch.codes.add(code)
            barrier = threading.Barrier(20)

            def attempt(i: int) -> str:
                barrier.wait()
                resp = httpx.post(
                    f"{urls[i % 2]}/api/v1/validate",
                    timeout=30,
                    headers={"Authorization": f"Bearer {key}"},
                    json={"username": "racer@example.com", "code": code},
                )
                return resp.json()["result"]

            with ThreadPoolExecutor(max_workers=20) as pool:
                results = list(pool.map(attempt, range(20)))
            assert results.count("accept") == 1, results
        leak_watch.log.write(one.output + two.output)
    finally:
        ctx.engine.dispose()


def _take_away(ctx: ServerContext, change: str, username: str) -> None:
    if change == "delete":
        accounts.delete_user(ctx, username, actor="test")
    else:
        accounts.set_disabled(ctx, username, True, actor="test")


@pytest.mark.parametrize(
    "changes",
    [("delete", "delete"), ("disable", "disable"), ("delete", "disable")],
    ids=["two deletes", "two disables", "a delete and a disable"],
)
def test_two_admins_taken_away_at_once_leave_one(ctx, clock, monkeypatch, changes) -> None:
    """Two threads, each with its own context (its own engine, and on SQLite its own write
    mutex: as two processes would be), each take one of the only two enabled admins away.
    Each holds its transaction open a while after the last-admin check, so that a check that
    did not lock would let both pass; with the lock, the second waits, sees the first's
    change, and is refused with the usual 409."""
    admins = ["first@example.com", "second@example.com"]
    for name in admins:
        accounts.create_user(ctx, name, role="admin")
    checked = accounts.keep_an_admin

    def slow_check(conn, user) -> None:
        checked(conn, user)
        time.sleep(0.3)  # the change and the commit come after this

    monkeypatch.setattr(accounts, "keep_an_admin", slow_check)
    other = open_context(ctx.settings, clock=clock)
    barrier = threading.Barrier(2)

    def attempt(i: int) -> Conflict | None:
        barrier.wait()
        try:
            _take_away((ctx, other)[i], changes[i], admins[i])
        except Conflict as refused:
            return refused
        return None

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(attempt, range(2)))
    finally:
        other.engine.dispose()
    refused = [(admins[i], r) for i, r in enumerate(results) if r is not None]
    assert len(refused) == 1, results
    ((kept, error),) = refused
    assert error.message == f"{kept!r} is the only enabled admin"
    assert error.hint == "make another admin first, or nobody could administer keyfob"
    with ctx.begin() as conn:  # what the last-admin check counts, as it counts it
        assert len(repo.lock_enabled_admins(conn)) == 1
    assert accounts.get_user(ctx, kept).disabled is False
