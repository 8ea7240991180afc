"""RADIUS fixtures: a keyfob RADIUS server in a thread on the test's clock (SQLite and
PostgreSQL), ``radclient`` and a recording relay (helpers in radiuskit.py).

``radclient`` (Debian freeradius-utils) comes through ``require_tool``: missing, the tests skip
with the reason, or fail under KEYFOB_STRICT=1.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from radiuskit import (
    STRICT,
    RadClient,
    Radius,
    Relay,
    free_udp_port,
    reset_postgres,
    run_radclient,
)

from keyfob.server.context import open_context
from keyfob.server.radius.server import RadiusServer, RadiusThread
from keyfob.server.settings import Settings
from testkit import PG_URL, Clock, TempDatabase, backend_fixture


@pytest.fixture(scope="session")
def radius_pg() -> Iterator[str]:
    """A database of its own on the test PostgreSQL, dropped at the end."""
    try:
        database = TempDatabase("keyfob_radius", connect_timeout=3)
    except Exception as exc:
        reason = f"PostgreSQL does not answer at {PG_URL}: {type(exc).__name__}"
        if STRICT:
            pytest.fail(f"KEYFOB_STRICT=1: {reason}")
        pytest.skip(reason)
    yield database.url
    database.drop()


db_url = backend_fixture("radius_pg", reset_postgres)


@pytest.fixture
def radius(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[Radius]:
    """keyfob's RADIUS server on 127.0.0.1, in a thread, on the test's clock."""
    settings = Settings(db=db_url, key_file=tmp_path / f"{uuid.uuid4().hex[:6]}.key")
    ctx = open_context(settings, clock=clock)
    env = Radius(ctx, clock, free_udp_port())
    env.thread = RadiusThread(RadiusServer(ctx), ["127.0.0.1"], env.port)
    env.thread.start()
    yield env
    env.thread.stop()
    ctx.engine.dispose()


@pytest.fixture
def radclient(require_tool: Callable[[str], str]) -> RadClient:
    """``radclient(port, User_Name=…, …)``: one request, its reply parsed."""
    return functools.partial(run_radclient, require_tool("radclient"))


@pytest.fixture
def relay(radius: Radius) -> Iterator[Relay]:
    r = Relay(radius.port)
    yield r
    r.close()
