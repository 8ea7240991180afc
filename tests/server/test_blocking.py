"""api/blocking.run_db's cap on PostgreSQL: a CapacityLimiter belongs to the event loop that
made it. Starlette's TestClient runs each request in an event loop of its own, in the calling
thread: with one limiter for the app, shared by every loop, a request waiting for a slot was
woken from another thread's loop and never ran — more callers than the pool size hung for good.
"""

from __future__ import annotations

import threading
import time

import pytest

from .conftest import Api

CALLERS = 40  # more than the pool's 10 slots, so that some wait for one


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_more_callers_than_slots_from_several_event_loops(api: Api) -> None:
    headers = api.headers("validate")
    barrier = threading.Barrier(CALLERS)
    answers: list[int] = []

    def caller(i: int) -> None:
        barrier.wait()
        for _ in range(5):
            body = {"username": f"nobody{i}@example.com", "code": "123456"}
            resp = api.client.post("/api/v1/validate", json=body, headers=headers)
            answers.append(resp.status_code)

    threads = [threading.Thread(target=caller, args=(i,), daemon=True) for i in range(CALLERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "requests waiting for a slot never woke"
    assert answers == [200] * (CALLERS * 5)
