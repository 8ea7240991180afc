"""A code is accepted at most once: 20 threads racing in one process, and two `keyfob serve`
processes racing on one PostgreSQL."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pyotp

from keyfob.server import accounts, enrolment
from keyfob.server.context import open_context
from keyfob.server.settings import Settings
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
