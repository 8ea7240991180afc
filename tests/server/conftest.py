"""Server fixtures: a context per test on SQLite or on a real PostgreSQL (on the shared ``clock``
of tests/conftest.py), an API client, and a watch list of every secret and code used, checked
against audit rows and logs at the end of the suite (test_zz_no_leaks.py)."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from keyfob.server import accounts
from keyfob.server.api.app import create_app
from keyfob.server.context import ServerContext, open_context
from keyfob.server.settings import Settings
from keyfob.server.store.schema import audit
from testkit import T0 as T0  # re-exported: tests import the clock's start from here too
from testkit import Clock, backend_fixture, session_database


@dataclass
class LeakWatch:
    """Everything secret that went into or came out of the server during the suite."""

    secrets: set[str] = field(default_factory=set)
    codes: set[str] = field(default_factory=set)
    audit_text: list[str] = field(default_factory=list)
    log: io.StringIO = field(default_factory=io.StringIO)


_WATCH = LeakWatch()


@pytest.fixture(scope="session")
def leak_watch() -> Iterator[LeakWatch]:
    handler = logging.StreamHandler(_WATCH.log)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.DEBUG)
    yield _WATCH
    root.removeHandler(handler)
    root.setLevel(old)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL server for this session, dropped afterwards."""
    yield from session_database("keyfob_test")


_TABLES = (
    "web_sessions, audit, tokens, api_keys, radius_clients, radius_challenges, users, rate_events, "
    "server_nodes, access_passes, "
    "key_state"
)


def reset_postgres(url: str) -> None:
    """Empty every table of the shared test database, before a test opens its context (a
    previous test's sealing key id would otherwise refuse this test's new key file)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if sa.inspect(conn).has_table("key_state"):
                conn.exec_driver_sql(f"TRUNCATE {_TABLES} CASCADE")
    finally:
        engine.dispose()


def make_ctx(db: str, tmp_path: Any, clock: Clock, **overrides: Any) -> ServerContext:
    settings = Settings(db=db, key_file=tmp_path / f"{uuid.uuid4().hex[:6]}.key", **overrides)
    return open_context(settings, clock=clock)


db_url = backend_fixture("pg_database", reset_postgres)


@pytest.fixture
def ctx(db_url: str, tmp_path: Any, clock: Clock, leak_watch: LeakWatch) -> Iterator[ServerContext]:
    """A fresh server context on each backend."""
    yield from _watched(make_ctx(db_url, tmp_path, clock), leak_watch)


@pytest.fixture
def sqlite_ctx(tmp_path: Any, clock: Clock, leak_watch: LeakWatch) -> Iterator[ServerContext]:
    yield from _watched(
        make_ctx(f"sqlite:///{tmp_path / 'keyfob.db'}", tmp_path, clock), leak_watch
    )


def _watched(context: ServerContext, leak_watch: LeakWatch) -> Iterator[ServerContext]:
    """Yields the context; afterwards hands its audit rows to the leak watch and closes it."""
    yield context
    with context.engine.connect() as conn:
        rows = conn.execute(sa.select(audit)).all()
    # The timestamp column is ours; every other column could carry what a caller sent.
    leak_watch.audit_text += [
        " ".join(str(v) for k, v in r._mapping.items() if k != "at") for r in rows
    ]
    context.engine.dispose()


class Api:
    """A TestClient that records secrets and codes it sends or receives."""

    def __init__(self, ctx: ServerContext, watch: LeakWatch) -> None:
        self.ctx = ctx
        self.watch = watch
        self.client = TestClient(create_app(ctx), raise_server_exceptions=True)
        _, self.admin_key = accounts.create_api_key(ctx, "test-admin", "admin")
        _, self.validate_key = accounts.create_api_key(ctx, "test-validate", "validate")
        self.watch.secrets.update({self.admin_key, self.validate_key})

    def headers(self, role: str = "admin") -> dict[str, str]:
        key = self.admin_key if role == "admin" else self.validate_key
        return {"Authorization": f"Bearer {key}"}

    def _record(self, body: Any) -> None:
        if isinstance(body, dict):
            for k, v in body.items():
                if k in ("code", "code1", "code2") and isinstance(v, str):
                    self.watch.codes.add(v)
                elif k in ("secret", "password", "key") and isinstance(v, str) and len(v) >= 8:
                    self.watch.secrets.add(v)
                else:
                    self._record(v)
        elif isinstance(body, list):
            for v in body:
                self._record(v)

    def request(
        self,
        method: str,
        path: str,
        *,
        role: str | None = "admin",
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> Any:
        if "json" in kw:
            self._record(kw["json"])
        h = dict(self.headers(role) if role else {})
        h.update(headers or {})
        resp = self.client.request(method, path, headers=h, **kw)
        if resp.headers.get("content-type", "").startswith("application/json"):
            self._record(resp.json())
        return resp

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    def validate(self, username: str, code: str) -> str:
        resp = self.post(
            "/api/v1/validate", json={"username": username, "code": code}, role="validate"
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["result"]


@pytest.fixture
def api(ctx: ServerContext, leak_watch: LeakWatch) -> Api:
    return Api(ctx, leak_watch)


@pytest.fixture
def sqlite_api(sqlite_ctx: ServerContext, leak_watch: LeakWatch) -> Api:
    return Api(sqlite_ctx, leak_watch)
