"""What many tests share: the one controllable clock, codes computed to be wrong, a scripted
person at the reader, throwaway PostgreSQL databases and the audit's account of validations,
and live keyfob servers (a `keyfob serve` process — or any process, waited for until it
answers and stopped by its PID — or uvicorn in a thread) that answer before a test goes on.

The ``clock`` fixture (tests/conftest.py) hands out a :class:`Clock`; import the rest from here
(``from testkit import wrong_code``): ``tests/`` is on ``sys.path`` under pytest (a bench
script such as bench/soak.py puts it there itself).
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from keyfob.otp import Algorithm, hotp
from keyfob.otp.verify import Policy

T0 = 1_800_000_000  # a fixed "now" (2027-01-15 08:00 UTC), 0 s into a 30 s step
KEYFOB = [sys.executable, "-c", "from keyfob.cli.main import run; run()"]


def keyfob(
    *args: str,
    stdin: str | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``keyfob ARGS`` in its own process (as a user runs it): text output captured; a non-zero
    exit raises unless ``check=False``."""
    return subprocess.run(
        [*KEYFOB, *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=check,
        env=env,
        timeout=120,
    )


class Clock:
    """A clock the test moves by hand. Whatever reads the time calls it — the server context
    (``open_context(..., clock=clock)``), an emulated token's RTC (``host_clock=clock``), the
    burner — so one object keeps them all in step."""

    def __init__(self, now: float = T0) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def set(self, now: float) -> None:
        self.now = float(now)

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- codes that are wrong on purpose ----------------------------------------------------------

# Every step a verifier may look at around "now": the resync range (±120 steps by default)
# around a learned drift of up to as much again, which also covers enrolment (±15), the HOTP
# look-ahead (10) and the HOTP resync range (100).
SPAN = 2 * Policy().resync_window


def _key(secret: Any) -> bytes:
    """Raw key bytes of ``bytes``, a base32 string, or a pyotp object."""
    if isinstance(secret, bytes):
        return secret
    if hasattr(secret, "byte_secret"):
        return secret.byte_secret()
    text = str(secret).upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


@functools.lru_cache(maxsize=64)
def _codes_near(
    key: bytes, step: int, span: int, digits: int, algorithm: Algorithm
) -> frozenset[str]:
    steps = range(max(0, step - span), step + span + 1)
    return frozenset(hotp(key, s, digits, algorithm) for s in steps)


def wrong_code(
    *secrets: Any,
    at: float | None = None,
    step: int | None = None,
    period: int = 30,
    digits: int = 6,
    algorithm: Algorithm = Algorithm.SHA1,
    span: int = SPAN,
    pick: int = 0,
) -> str:
    """A well-formed code that no step within ±``span`` of ``at`` (a time) or ``step`` (a TOTP
    step or a HOTP counter) gives for any of ``secrets`` — so a test that expects a refusal (and
    the reason ``wrong_code``, not ``resync_pending``) cannot pass or fail by chance.

    ``pick`` chooses among such codes: the first candidate is ``pick`` as ``digits`` digits.
    """
    if (at is None) == (step is None):
        raise TypeError("give either at= (a time) or step= (a step or counter)")
    center = int(at // period) if at is not None else step
    assert center is not None
    taken = frozenset().union(
        *(_codes_near(_key(s), center, span, digits, algorithm) for s in secrets)
    )
    for n in itertools.count(pick):
        code = f"{n % 10**digits:0{digits}d}"
        if code not in taken:
            return code
    raise AssertionError("unreachable: itertools.count never ends")


# --- the person at the reader -----------------------------------------------------------------


class ScriptedUi:
    """The burner's ``Ui``, scripted: at each prompt it types the next of ``codes`` (a string,
    or a callable that computes one then, such as a code wrong for the seed just burned), and
    once those run out presses ``card``'s button and types what it shows — or hits Ctrl-C when
    ``interrupt``. Everything said, warned and asked is kept in ``said``."""

    def __init__(
        self,
        codes: list[str | Callable[[], str]] | None = None,
        card: Any = None,
        interrupt: bool = False,
    ) -> None:
        self.codes = list(codes or [])
        self.card, self.interrupt = card, interrupt
        self.said: list[str] = []

    def say(self, message: str) -> None:
        self.said.append(message)

    def warn(self, message: str) -> None:
        self.said.append("WARN " + message)

    def ask_code(self, prompt: str) -> str:
        self.said.append("ASK " + prompt)
        if self.interrupt:
            raise KeyboardInterrupt
        if self.codes:
            code = self.codes.pop(0)
            return code() if callable(code) else code
        if self.card is None:
            raise AssertionError(f"no code scripted for the prompt {prompt!r}")
        return self.card.press()


# --- servers ---------------------------------------------------------------------------------


def statements(ctx: Any, fn: Callable[[], object]) -> tuple[int, int]:
    """How many SQL statements and commits ``fn()`` costs on ``ctx``'s engine."""
    from sqlalchemy import event

    seen: list[str] = []
    commits: list[int] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    def on_commit(conn: Any) -> None:
        commits.append(1)

    event.listen(ctx.engine, "before_cursor_execute", on_execute)
    event.listen(ctx.engine, "commit", on_commit)
    try:
        fn()
    finally:
        event.remove(ctx.engine, "before_cursor_execute", on_execute)
        event.remove(ctx.engine, "commit", on_commit)
    return len(seen), len(commits)


def activate_app(ctx: Any, clock: Clock, name: str) -> Any:
    """Begins a TOTP app for ``name`` on ``ctx`` and activates it with the code of the clock's
    now, then moves the clock a step on (the next code is not a replay). Returns the
    ``pyotp.TOTP``."""
    import pyotp

    from keyfob.server import enrolment

    begun: Any = enrolment.begin(ctx, name, "app", actor="test")
    app = pyotp.parse_uri(begun.otpauth_uri)
    enrolment.verify_enrolment(ctx, name, begun.id, app.at(clock.now), actor="test")
    clock.advance(30)
    return app


# --- databases ---------------------------------------------------------------------------------

PG_URL = os.environ.get(
    "KEYFOB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


class TempDatabase:
    """A database of its own on the PostgreSQL server at ``PG_URL``, named ``prefix`` and random
    hex; ``drop()`` ends whatever is still connected to it and drops it. ``connect_args`` go to
    the administrative connection (``connect_timeout=3``: fail fast when no server answers)."""

    def __init__(self, prefix: str, **connect_args: Any) -> None:
        import sqlalchemy as sa

        self.name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.admin = sa.create_engine(
            PG_URL, isolation_level="AUTOCOMMIT", connect_args=connect_args
        )
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        self.url = PG_URL.rsplit("/", 1)[0] + f"/{self.name}"

    def drop(self) -> None:
        import sqlalchemy as sa

        with self.admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": self.name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}"'))
        self.admin.dispose()


def backend_db(request: Any, tmp_path: Path, postgres: str, reset: Callable[[str], None]) -> str:
    """The URL of a fresh database on the backend a parametrized fixture stands for
    (``request.param``): ``keyfob.db`` in ``tmp_path`` for "sqlite"; else the session database of
    the fixture named ``postgres``, emptied by ``reset``."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'keyfob.db'}"
    url = str(request.getfixturevalue(postgres))
    reset(url)
    return url


def backend_fixture(postgres: str, reset: Callable[[str], None]) -> Any:
    """A ``db_url`` fixture for a conftest (``db_url = backend_fixture(...)``): parametrized
    over "sqlite" and "postgresql", each test gets the URL of a fresh database on that backend
    (:func:`backend_db` with the session database fixture named ``postgres`` and ``reset``)."""
    import pytest

    @pytest.fixture(params=["sqlite", "postgresql"])
    def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
        """The URL of a fresh database on each backend: a file in ``tmp_path``, or the
        session's PostgreSQL database emptied."""
        return backend_db(request, tmp_path, postgres, reset)

    return db_url


def pg_available() -> bool:
    """Whether the PostgreSQL server at ``PG_URL`` answers (within 3 s)."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def session_database(prefix: str) -> Iterator[str]:
    """The body of a session fixture (``yield from session_database("keyfob_test")``): the URL
    of a :class:`TempDatabase` named ``prefix``, dropped afterwards. When PostgreSQL does not
    answer the test skips with the reason, or fails under ``KEYFOB_STRICT=1``."""
    import pytest

    if not pg_available():
        reason = f"PostgreSQL does not answer at {PG_URL}"
        if os.environ.get("KEYFOB_STRICT") == "1":
            pytest.fail(f"KEYFOB_STRICT=1: {reason}")
        pytest.skip(reason)
    database = TempDatabase(prefix)
    yield database.url
    database.drop()


def migrate_to(ctx: Any, target: str, *, down: bool = False) -> None:
    """Move ``ctx``'s database to Alembic revision ``target`` (``head``, ``0008``…), upgrading
    or (``down``) downgrading, as ``db.migrate`` runs the revisions: for the tests of one
    revision's data moves."""
    from alembic import command
    from alembic.config import Config

    from keyfob.server.store.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with ctx.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, target)


# What adds one to a token's fail_count (docs/design.md §4.8); an accept sets it back to 0.
COUNTED = frozenset({"wrong_code", "replay", "malformed", "resync_pending"})


def validation_audit(conn: Any) -> list[Any]:
    """Every validation in the audit, oldest first: rows of target_user, outcome and reason."""
    import sqlalchemy as sa

    from keyfob.server.store.schema import audit

    return conn.execute(
        sa.select(audit.c.target_user, audit.c.outcome, audit.c.reason)
        .where(audit.c.action == "validate")
        .order_by(audit.c.id)
    ).all()


def fail_counts(rows: list[Any]) -> Counter[str]:
    """Each user's ``fail_count`` as the validation rows (:func:`validation_audit`) add it up;
    0 for a user without rows."""
    count: Counter[str] = Counter()
    for row in rows:
        if row.outcome == "success":
            count[row.target_user] = 0
        elif row.reason in COUNTED:
            count[row.target_user] += 1
    return count


# --- live servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def apikey_create(db: str, key_file: Path, role: str) -> list[str]:
    """The arguments of ``keyfob admin … apikey create --json`` against a server's database."""
    where = ["--db", db, "--key-file", str(key_file)]
    return ["admin", *where, "apikey", "create", "--role", role, "--json"]


def cli_api_key(db: str, key_file: Path, role: str) -> str:
    """A new API key made by the ``keyfob`` command in its own process."""
    return json.loads(keyfob(*apikey_create(db, key_file, role)).stdout)["key"]


@dataclass
class Served:
    """A `keyfob serve` process: its base URL and, once stopped, everything it printed."""

    proc: subprocess.Popen[str]
    url: str
    output: str = ""


def stop_process(proc: subprocess.Popen[Any], timeout: float = 20) -> str:
    """Stops ``proc`` by its PID: SIGTERM, then SIGKILL if it has not ended within ``timeout``
    seconds. Returns what it printed to its pipe (nothing without a pipe, or the second time)."""
    if proc.stdout is not None and proc.stdout.closed:
        return ""  # stopped before: its output went to the first call
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


def start_process(
    argv: list[str],
    ready: Callable[[], bool],
    *,
    what: str,
    log: Path | None = None,
    seconds: float = 30,
    pause: float = 0.1,
    **popen: Any,
) -> subprocess.Popen[Any]:
    """``argv`` in its own process, returned once ``ready()`` holds (asked every ``pause``
    seconds). A process that exits first or is not ready within ``seconds`` is stopped by its
    PID and fails the test with what it printed: to its pipe, or to ``log`` (a file that then
    takes its stdout and stderr). ``popen``: more arguments of ``subprocess.Popen``."""
    if log is not None:
        with log.open("w") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **popen)
    else:
        proc = subprocess.Popen(argv, **popen)
    try:
        deadline = time.monotonic() + seconds
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                code = proc.poll()
                printed = stop_process(proc) + (log.read_text() if log is not None else "")
                raise AssertionError(f"{what} did not answer (exit {code}): {printed}")
            time.sleep(pause)
    except BaseException:
        stop_process(proc)
        raise
    return proc


@contextmanager
def running(
    argv: list[str], ready: Callable[[], bool], *, stop_timeout: float = 20, **start: Any
) -> Iterator[subprocess.Popen[Any]]:
    """:func:`start_process` for the block, stopped by its PID afterwards (``stop_timeout``:
    how long it has to end after SIGTERM)."""
    proc = start_process(argv, ready, **start)
    try:
        yield proc
    finally:
        stop_process(proc, stop_timeout)


def healthy(url: str, **get: Any) -> bool:
    """Whether ``url``/healthz answers 200 within 2 s (``get``: more arguments of ``httpx.get``,
    such as ``verify``)."""
    try:
        return httpx.get(f"{url}/healthz", timeout=2, **get).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def serve(
    db: str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[Served]:
    """`keyfob serve --db DB ARGS` in its own process on a free loopback port. The block runs
    once /healthz answers (a server that exits or never answers fails the test with its output);
    afterwards the process is stopped by its PID and its output is in ``output``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [*KEYFOB, "serve", "--db", db, "--port", str(port), "--log-level", "warning", *args]
    proc = start_process(
        argv,
        lambda: healthy(url),
        what="keyfob serve",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
        env=dict(env if env is not None else os.environ, PYTHONUNBUFFERED="1"),
    )
    served = Served(proc, url)
    try:
        yield served
    finally:
        served.output += stop_process(proc)


def http_enrol(url: str, headers: dict[str, str], username: str, watch: Any = None) -> Any:
    """Adds an app method for ``username`` through a live server's REST API and activates it
    with the code of the step before now (real time: the server runs in its own process).
    Returns the ``pyotp.TOTP``; the secret and the code go on ``watch`` (the server tests'
    leak watch) when one is given."""
    import pyotp

    begun = httpx.post(
        f"{url}/api/v1/users/{username}/tokens", headers=headers, json={"kind": "app"}
    )
    assert begun.status_code == 201, begun.text
    totp = pyotp.parse_uri(begun.json()["otpauth_uri"])
    code = totp.at(time.time() - 30)
    if watch is not None:
        watch.secrets.add(begun.json()["secret"])
        watch.codes.add(code)
    verified = httpx.post(
        f"{url}/api/v1/users/{username}/tokens/{begun.json()['id']}/verify",
        headers=headers,
        json={"code": code},
    )
    assert verified.status_code == 200 and verified.json()["state"] == "active", verified.text
    return totp


class ThreadedServer:
    """The app of ``create_app`` behind uvicorn in a thread, on a free loopback port, with the
    test's clock: a real HTTP server whose time the test moves. ``name`` names its database
    and key file in ``tmp``."""

    def __init__(self, tmp: Path, clock: Clock, name: str = "keyfob") -> None:
        import uvicorn

        from keyfob.server.api.app import create_app
        from keyfob.server.context import open_context
        from keyfob.server.settings import Settings

        self.clock = clock
        settings = Settings(db=f"sqlite:///{tmp / f'{name}.db'}", key_file=tmp / f"{name}.key")
        self.ctx = open_context(settings, clock=clock)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(self.ctx), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive(), "the server thread ended before it started serving"
            assert time.monotonic() < deadline, "the server did not start in 20 s"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.ctx.engine.dispose()
