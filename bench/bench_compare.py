"""keyfob and privacyIDEA side by side, and every other figure of ``make bench`` (issue 16).

``make bench`` runs ``setup_privacyidea.py`` (once; cached) and then this, which stays within
``BENCH_BUDGET`` seconds (default 600) and writes ``bench/results/latest.md``, ``latest.json``
and the chart ``latest.png``:

- ``POST /api/v1/validate`` of keyfob (``keyfob serve --workers 2``, uvicorn) on SQLite and on
  PostgreSQL, and ``POST /validate/check`` of privacyIDEA (gunicorn, 2 sync workers, SQLite,
  its SQL user resolver) in its documented default and its tuned configuration — each driven
  by the same wrk script (``validate.lua``) at 1, 8 and 64 connections, ``BENCH_SECONDS``
  (default 5) a row: valid codes (every request a different user with that user's current
  code), replays (the same users and codes again, right after), wrong codes (users of their
  own, far below any lockout) and unknown users. Only real accepts count (the script reads
  every answer). Per row: answers and accepts a second, p50/p99, the server's CPU per answer
  (``/proc/PID/stat`` of the server's processes before and after; PostgreSQL's backends for
  the bench database separately) and the CPU other processes took meanwhile;
- scale: keyfob on SQLite with 1 000, 100 000 and 1 000 000 tokens in the store (one user
  each; made in bulk with keyfob's own key ring and cached in ``bench/.cache``): the same
  1 000 HOTP users validated round-robin with their next counter (a TOTP user can be accepted
  once a step, and 1 000 users give 33 a second);
- import of a 100 000-token PSKC file and a 100 000-row Entra CSV (``keyfob admin tokens
  import``: seconds, peak RSS of the process);
- ``bench_otp.py`` (decisions for ±1 and ±15 steps vs pyotp), ``bench_cli.py`` (start-up vs
  oathtool), ``bench_radius.py`` and ``bench_directory.py``, run as they are, their tables
  copied in — as long as the budget lasts (a part that would not fit is listed as skipped).

Everything listens on 127.0.0.1 and every process started here is stopped by its PID. The
header names the machine and every version; a run on a busy machine (load average or other
processes' CPU during the rows) is marked as a smoke run, not the figures.

Environment: ``BENCH_SECONDS``, ``BENCH_BUDGET``, ``BENCH_PARTS`` (comma-separated subset of
``keyfob-sqlite,keyfob-postgresql,privacyidea-default,privacyidea-tuned,scale,import,otp,cli,
radius,directory``), ``KEYFOB_BENCH_POSTGRES_URL`` (or ``KEYFOB_TEST_POSTGRES_URL``).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import math
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

import bench_server
from bench_server import free_port, serve_argv, wrk_argv
from keyfob.otp import hotp, to_base32, totp
from privacyidea_enroll import seed

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
CACHE = HERE / ".cache"
PI = HERE / ".privacyidea"
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
BUDGET = float(os.environ.get("BENCH_BUDGET", "600"))
FULL_SECONDS = 5  # a run with shorter rows is a smoke run whatever the load
CONCURRENCY = (1, 8, 64)
MODES = ("valid", "replay", "wrong", "unknown")
PERIOD = 30
PG_URL = (
    os.environ.get("KEYFOB_BENCH_POSTGRES_URL")
    or os.environ.get("KEYFOB_TEST_POSTGRES_URL")
    or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PG_DB = "keyfob_bench_compare"
SCALE_SIZES = (1_000, 100_000, 1_000_000)
SCALE_HOTP_USERS = 1_000
SCALE_VERSION = 1
IMPORT_ROWS = 100_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The most a server could answer a second, to size the users a row is given: a row that runs
# out says so ("exhausted") instead of sending replays as valid codes.
CAP = {"keyfob": 12_000, "privacyidea": 600}
# The heading of bench_radius.py's comparison with the REST figure of another run (latest.json):
# cut off here when this run measured REST itself.
RADIUS_OTHER_RUN = "### RADIUS beside REST of another run"
ALL_PARTS = (
    "keyfob-sqlite",
    "keyfob-postgresql",
    "privacyidea-default",
    "privacyidea-tuned",
    "scale",
    "import",
    "otp",
    "cli",
    "radius",
    "directory",
)


# --- processes and CPU ---------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a process, from /proc/PID/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2 :].split()
    return int(rest[1]), (int(rest[11]) + int(rest[12])) / CLK_TCK


def process_tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))):
            parents[int(entry)] = st[0]
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sorted(tree)


def cpu_of(pids: Iterable[int]) -> dict[int, float]:
    return {pid: st[1] for pid in pids if (st := _stat(pid))}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def machine_busy() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server this script started, by its PID (its workers follow their parent)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def settle(root: int, limit: float = 60.0) -> float:
    """Wait until a server is idle (its processes use under 5 % of a core over 0.5 s): a slow
    server still works through the requests a finished row left queued. Returns seconds."""
    started = time.time()
    while time.time() - started < limit:
        pids = process_tree(root)
        before = cpu_of(pids)
        time.sleep(0.5)
        if cpu_delta(before, cpu_of(pids)) < 0.025:
            break
    return time.time() - started


def step_now() -> int:
    return int(time.time() // PERIOD)


# --- users ---------------------------------------------------------------------------------------


@dataclass
class Pool:
    """Users of one kind on one server, handed out in order; a user's valid code is accepted
    once a step, so the pool starts over only in a later step than it was last used in."""

    prefix: str
    size: int
    cursor: int = 0
    last_step: int = -1

    def take(self, n: int, *, per_step: bool) -> range:
        n = min(n, self.size)
        if self.size - self.cursor < n:
            if per_step and step_now() <= self.last_step:
                time.sleep(PERIOD - time.time() % PERIOD + 0.5)
            self.cursor = 0
        return range(self.cursor, self.cursor + n)

    def used(self, count: int) -> None:
        self.cursor = min(self.size, self.cursor + count)
        self.last_step = step_now()


@dataclass
class Target:
    label: str
    kind: str  # keyfob | privacyidea
    url: str
    proc: subprocess.Popen[bytes]
    pools: dict[str, Pool]
    key: str = ""
    realm: str = ""
    backends: Callable[[], list[int]] | None = None
    last_valid: dict[str, Any] = field(default_factory=dict)

    def user(self, prefix: str, i: int) -> str:
        return f"{prefix}{i}@bench.example" if self.kind == "keyfob" else f"{prefix}{i}"


def user_lines(target: Target, names: list[str], columns: Callable[[str], list[str]]) -> str:
    return "".join(f"{name} {' '.join(columns(name))}\n" for name in names)


# --- wrk -----------------------------------------------------------------------------------------


def wrk(
    target: Target,
    mode: str,
    users_file: Path,
    connections: int,
    seconds: int,
    **env_extra: str,
) -> dict[str, Any]:
    """One wrk run through validate.lua, with the CPU every party took meanwhile."""
    threads = min(2, connections)
    env = dict(
        os.environ,
        BENCH_TARGET=target.kind,
        BENCH_USERS=str(users_file),
        BENCH_MODE=mode,
        BENCH_THREADS=str(threads),
        BENCH_PERIOD=str(PERIOD),
        BENCH_KEY=target.key,
        BENCH_REALM=target.realm,
        **env_extra,
    )
    settle(target.proc.pid)
    server = process_tree(target.proc.pid)
    backends = target.backends() if target.backends else []
    s0, b0, m0, me0 = cpu_of(server), cpu_of(backends), machine_busy(), sum(os.times()[:2])
    started = time.time()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            wrk_argv(target.url, connections, seconds, threads),
            env=env,
            stdout=out,
            stderr=err,
        )
        _, status, usage = os.wait4(proc.pid, 0)  # wrk's own CPU, from its rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    wall = time.time() - started
    s1 = cpu_of(process_tree(target.proc.pid))
    b1 = cpu_of((target.backends() if target.backends else []) + backends)
    m1, me1 = machine_busy(), sum(os.times()[:2])
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited {proc.returncode}: {stderr[-500:]}")
    line = next(ln for ln in stdout.splitlines() if ln.startswith("BENCH "))
    data: dict[str, Any] = json.loads(line.removeprefix("BENCH "))
    wrk_seconds = usage.ru_utime + usage.ru_stime
    answers = max(1, data["requests"])
    server_cpu, db_cpu = cpu_delta(s0, s1), cpu_delta(b0, b1)
    ours = server_cpu + db_cpu + wrk_seconds + (me1 - me0)
    data.update(
        server=target.label,
        mode=mode,
        connections=connections,
        per_s=round(data["requests"] / data["seconds"], 1),
        accepts_per_s=round(data["accepts"] / data["seconds"], 1),
        server_cpu_ms=round(server_cpu * 1000 / answers, 3),
        db_cpu_ms=round(db_cpu * 1000 / answers, 3) if target.backends else None,
        wrk_cpu_ms=round(wrk_seconds * 1000 / answers, 3),
        other_cores=round(max(0.0, (m1 - m0) - ours) / wall, 2),
    )
    return data


def thread_split(marks: str, lines: int, threads: int) -> int:
    """How many lines of the users file a step run used (each thread takes every n-th line)."""
    used = 0
    for t, part in enumerate(marks.split("|"), 1):
        sent = int(part.split(";", 1)[0] or 0)
        per_thread = len(range(t - 1, lines, threads))
        if sent:
            used = max(used, (min(sent, per_thread) - 1) * threads + t)
    return used


def run_row(target: Target, mode: str, connections: int, seconds: int, tmp: Path) -> dict:
    threads = min(2, connections)
    users_file = tmp / f"users-{mode}.txt"
    if mode == "valid":
        pool = target.pools["v"]
        wanted = CAP[target.kind] * seconds + 500
        indexes = pool.take(wanted, per_step=True)
        names = [target.user(pool.prefix, i) for i in indexes]
        step0 = step_now()
        users_file.write_text(
            user_lines(
                target, names, lambda n: [totp(seed(n), (step0 + k) * PERIOD) for k in range(4)]
            )
        )
        row = wrk(target, "step", users_file, connections, seconds, BENCH_STEP0=str(step0))
        pool.used(thread_split(row["marks"], len(names), threads))
        kept = tmp / "users-last-valid.txt"
        users_file.replace(kept)
        target.last_valid = {"file": kept, "marks": row["marks"], "connections": connections}
    elif mode == "replay":
        last = target.last_valid
        assert last and last["connections"] == connections, "a replay row follows its valid row"
        row = wrk(target, "replay", last["file"], connections, seconds, BENCH_MARKS=last["marks"])
    elif mode == "wrong":
        pool = target.pools["w"]
        indexes = pool.take(CAP[target.kind] * seconds + 500, per_step=False)
        names = [target.user(pool.prefix, i) for i in indexes]
        now = time.time()

        def wrong(name: str) -> list[str]:
            right = int(totp(seed(name), now))
            return [f"{(right + 500_000) % 1_000_000:06d}"]

        users_file.write_text(user_lines(target, names, wrong))
        row = wrk(target, "fixed", users_file, connections, seconds)
        pool.used(thread_split(row["marks"], len(names), threads) or row["sent"])
    else:
        rng = random.Random(connections)
        names = [target.user("nobody", i) for i in range(20_000)]
        users_file.write_text(
            user_lines(target, names, lambda _n: [f"{rng.randrange(1_000_000):06d}"])
        )
        row = wrk(target, "fixed", users_file, connections, seconds)
    row["load"] = mode
    expected_accepts = row["requests"] if mode == "valid" else 0
    row["unexpected"] = abs(row["accepts"] - expected_accepts) + row["others"]
    return row


def run_target(target: Target, seconds: int, tmp: Path, log: Callable[[str], None]) -> list:
    # warm-up: start-up costs, first connections, caches (valid codes: it uses up pool users)
    pool = target.pools["v"]
    names = [target.user(pool.prefix, i) for i in pool.take(CAP[target.kind] * 2, per_step=True)]
    step0 = step_now()
    warm = tmp / "users-warm.txt"
    warm.write_text(
        user_lines(target, names, lambda n: [totp(seed(n), (step0 + k) * PERIOD) for k in range(4)])
    )
    w = wrk(target, "step", warm, 8, 2, BENCH_STEP0=str(step0))
    pool.used(thread_split(w["marks"], len(names), 2))
    rows = []
    for connections in CONCURRENCY:
        for mode in MODES:
            row = run_row(target, mode, connections, seconds, tmp)
            rows.append(row)
            log(
                f"  {target.label:<22} {mode:<8} c={connections:<3} {row['per_s']:>8.1f}/s "
                f"accept {row['accepts']:>6} reject {row['rejects']:>6} other {row['others']:>3} "
                f"p50 {row['p50_ms']:>7.2f} p99 {row['p99_ms']:>8.2f} ms "
                f"cpu {row['server_cpu_ms']:.2f} ms/answer, others {row['other_cores']} cores"
            )
    return rows


# --- keyfob --------------------------------------------------------------------------------------


def bulk_store(
    db_url: str, key_file: Path, pools: dict[str, int], hotp_users: int = 0
) -> tuple[str, str]:
    """Users with one token each, inserted in bulk (secrets sealed by keyfob's key ring, as
    ``bench_server.populate`` does); returns (alembic revision, validate API key)."""
    from keyfob.server import accounts
    from keyfob.server.context import open_context
    from keyfob.server.settings import Settings
    from keyfob.server.store import repo
    from keyfob.server.store.schema import tokens, users

    ctx = open_context(Settings(db=db_url, key_file=key_file))
    now = datetime.now(UTC)
    specs = [("h", hotp_users, "hotp")] + [(p, n, "totp") for p, n in pools.items()]
    try:
        with ctx.engine.begin() as conn:
            for prefix, count, kind in specs:
                for start in range(0, count, 5000):
                    user_rows, token_rows = [], []
                    for i in range(start, min(count, start + 5000)):
                        uid, name = repo.new_id(), f"{prefix}{i}@bench.example"
                        user_rows.append(bench_server._user_row(uid, name, now))
                        row = bench_server._token_row(ctx, seed(name), uid, now)
                        row["type"] = kind
                        token_rows.append(row)
                    conn.execute(users.insert(), user_rows)
                    conn.execute(tokens.insert(), token_rows)
        _, key = accounts.create_api_key(ctx, "bench", "validate")
        with ctx.engine.connect() as conn:
            revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        ctx.engine.dispose()
    return str(revision), key


def start_keyfob(db_url: str, key_file: Path, label: str, log_file: Path) -> subprocess.Popen:
    port = free_port()
    proc = subprocess.Popen(
        serve_argv(db_url, port, "--host", "127.0.0.1"),
        env=dict(os.environ, KEYFOB_KEY_FILE=str(key_file)),
        stdin=subprocess.DEVNULL,  # never a first-start question
        stdout=log_file.open("ab"),
        stderr=subprocess.STDOUT,
    )
    proc.port = port  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            tail = log_file.read_text(errors="replace")[-800:]
            raise RuntimeError(f"{label}: keyfob serve exited {proc.returncode}: {tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc
        time.sleep(0.2)
    stop(proc)
    raise RuntimeError(f"{label}: keyfob serve did not answer /healthz in 60 s")


def pg_backends(db: str) -> Callable[[], list[int]]:
    def pids() -> list[int]:
        engine = sa.create_engine(PG_URL)
        try:
            with engine.connect() as conn:
                found = conn.execute(
                    sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": db}
                ).scalars()
                return [p for p in found if Path(f"/proc/{p}").exists()]
        finally:
            engine.dispose()

    return pids


def pg_unavailable() -> str | None:
    engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        return f"PostgreSQL at {PG_URL} did not answer ({type(exc).__name__})"
    finally:
        engine.dispose()
    return None


def keyfob_target(backend: str, tmp: Path, pool_size: int) -> Target:
    key_file = tmp / f"{backend}.key"
    if backend == "sqlite":
        db_url = f"sqlite:///{tmp / 'keyfob.db'}"
        backends = None
    else:
        bench_server.PG_URL = PG_URL
        db_url = bench_server._fresh_pg(PG_DB)
        backends = pg_backends(PG_DB)
    _, key = bulk_store(db_url, key_file, {"v": pool_size, "w": pool_size})
    label = f"keyfob {'SQLite' if backend == 'sqlite' else 'PostgreSQL'}"
    proc = start_keyfob(db_url, key_file, label, tmp / f"keyfob-{backend}.log")
    return Target(
        label=label,
        kind="keyfob",
        url=f"http://127.0.0.1:{proc.port}",  # type: ignore[attr-defined]
        proc=proc,
        pools={"v": Pool("v", pool_size), "w": Pool("w", pool_size)},
        key=key,
        backends=backends,
    )


# --- privacyIDEA ---------------------------------------------------------------------------------


def pi_stamp() -> dict[str, Any]:
    try:
        return json.loads((PI / "ready.json").read_text())
    except (OSError, ValueError):
        raise RuntimeError(
            "privacyIDEA is not set up: run `.venv/bin/python bench/setup_privacyidea.py` "
            "(or `make bench`) once"
        ) from None


def privacyidea_target(config: str, tmp: Path) -> Target:
    stamp = pi_stamp()
    instance = PI / "instance"
    cfg = instance / ("pi.cfg" if config == "default" else "pi-tuned.cfg")
    # every configuration starts from the state the setup left (the SQL resolver's stored
    # connection names this very file, so the copy goes back in place)
    db = instance / "privacyidea.sqlite"
    for leftover in instance.glob("privacyidea.sqlite*"):
        leftover.unlink()
    shutil.copyfile(instance / "pristine.sqlite", db)
    port = free_port()
    env = dict(
        os.environ,
        PRIVACYIDEA_CONFIGFILE=str(cfg),
        BENCH_PI_LOGFILE=str(tmp / f"privacyidea-{config}.log"),
    )
    log = tmp / f"gunicorn-{config}.log"
    proc = subprocess.Popen(
        [
            str(PI / "venv" / "bin" / "gunicorn"),
            "--no-control-socket",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            f"privacyidea.app:create_app(config_name='production', config_file='{cfg}', "
            "silent=True)",
        ],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited {proc.returncode}: {log.read_text()[-800:]}")
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.post(
                f"{url}/validate/check",
                data={"user": "nobody", "realm": stamp["realm"], "pass": "000000"},
                timeout=5,
            )
            if answer.status_code in (200, 400):
                break
        time.sleep(0.3)
    else:
        stop(proc)
        raise RuntimeError("privacyIDEA did not answer /validate/check in 90 s")
    pools = stamp["pools"]
    return Target(
        label=f"privacyIDEA {config}",
        kind="privacyidea",
        url=url,
        proc=proc,
        pools={"v": Pool("v", pools["v"]), "w": Pool("w", pools["w"])},
        realm=stamp["realm"],
    )


# --- scale ---------------------------------------------------------------------------------------


def scale_cached() -> bool:
    """Whether every scale store is in the cache already (its schema revision is checked later)."""
    return all((CACHE / f"scale-{size}.db").exists() for size in SCALE_SIZES)


def scale_store(size: int, tmp: Path, log: Callable[[str], None]) -> tuple[str, Path, Path]:
    """A store of ``size`` tokens (1 000 HOTP users, the rest TOTP), copied from the cache in
    bench/.cache, made there first when missing or made by another schema revision."""
    CACHE.mkdir(exist_ok=True)
    cached_db, cached_key = CACHE / f"scale-{size}.db", CACHE / f"scale-{size}.key"
    meta_file = CACHE / f"scale-{size}.json"
    probe = tmp / f"probe-{size}"
    probe.mkdir()
    head, _ = bulk_store(f"sqlite:///{probe / 'p.db'}", probe / "p.key", {})
    meta = {"revision": head, "version": SCALE_VERSION, "size": size}
    try:
        fresh = json.loads(meta_file.read_text()) == meta and cached_db.exists()
    except (OSError, ValueError):
        fresh = False
    if not fresh:
        started = time.time()
        for stale in (cached_db, cached_key, meta_file):
            stale.unlink(missing_ok=True)
        building = CACHE / f"scale-{size}.building.db"
        for leftover in CACHE.glob(f"scale-{size}.building.db*"):
            leftover.unlink()
        bulk_store(
            f"sqlite:///{building}",
            cached_key,
            {"f": size - SCALE_HOTP_USERS},
            hotp_users=SCALE_HOTP_USERS,
        )
        with contextlib.closing(sqlite3.connect(building)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        building.replace(cached_db)
        meta_file.write_text(json.dumps(meta) + "\n")
        log(f"  made the {size:,}-token store in {time.time() - started:.0f} s (cached)")
    db, key = tmp / f"scale-{size}.db", tmp / f"scale-{size}.key"
    shutil.copyfile(cached_db, db)
    shutil.copyfile(cached_key, key)
    key.chmod(0o600)
    db.chmod(0o600)
    return f"sqlite:///{db}", db, key


def scale_row(size: int, seconds: int, tmp: Path, log: Callable[[str], None]) -> dict:
    db_url, db, key_file = scale_store(size, tmp, log)
    from keyfob.server import accounts
    from keyfob.server.context import open_context
    from keyfob.server.settings import Settings

    ctx = open_context(Settings(db=db_url, key_file=key_file))
    try:
        _, key = accounts.create_api_key(ctx, f"bench-{size}", "validate")
    finally:
        ctx.engine.dispose()
    proc = start_keyfob(db_url, key_file, f"scale {size}", tmp / f"scale-{size}.log")
    target = Target(
        label=f"keyfob SQLite, {size:,} tokens",
        kind="keyfob",
        url=f"http://127.0.0.1:{proc.port}",  # type: ignore[attr-defined]
        proc=proc,
        pools={},
        key=key,
    )
    names = [f"h{i}@bench.example" for i in range(SCALE_HOTP_USERS)]
    next_counter = dict.fromkeys(names, 0)
    users_file = tmp / f"scale-{size}.txt"

    def hotp_run(secs: int) -> dict:
        columns = math.ceil(CAP["keyfob"] * secs / SCALE_HOTP_USERS) + 2
        users_file.write_text(
            user_lines(
                target,
                names,
                lambda n: [hotp(seed(n), next_counter[n] + k) for k in range(columns)],
            )
        )
        row = wrk(target, "cycle", users_file, 8, secs)
        # each thread cycles over its users: a user's counter moved once per round; HOTP's
        # look-ahead (10) covers the few requests still in flight when wrk stopped
        for t, part in enumerate(row["marks"].split("|"), 1):
            sent = int(part.split(";", 1)[0] or 0)
            mine = names[t - 1 :: 2]
            for j, name in enumerate(mine):
                next_counter[name] += sent // len(mine) + (1 if j < sent % len(mine) else 0)
        return row

    try:
        hotp_run(2)  # warm-up
        row = hotp_run(seconds)
    finally:
        stop(proc)
    row.update(tokens=size, load="valid (HOTP)", db_mb=round(db.stat().st_size / 2**20))
    row["unexpected"] = abs(row["accepts"] - row["requests"]) + row["others"]
    log(
        f"  {size:>9,} tokens: {row['accepts_per_s']:>8.1f} accepts/s p50 {row['p50_ms']:.2f} "
        f"p99 {row['p99_ms']:.2f} ms cpu {row['server_cpu_ms']:.2f} ms "
        f"(others {row['other_cores']} cores)"
    )
    return row


# --- imports -------------------------------------------------------------------------------------


def entra_csv(count: int) -> bytes:
    lines = ["upn,serial number,secret key,time interval,manufacturer,model"]
    lines += [
        f"e{i}@import.example,E{i:08d},{to_base32(os.urandom(20))},30,Bench,B1"
        for i in range(count)
    ]
    return ("\n".join(lines) + "\n").encode()


# The import's own peak, read by the process itself: ru_maxrss from wait4 would carry this
# process's high-water mark over into the child (Linux keeps it across vfork and exec), and
# this one holds the generated files and whatever the earlier parts left.
PEAK_REPORTING_CLI = (
    "import sys\n"
    "from keyfob.cli.main import run\n"
    "try:\n"
    "    run()\n"
    "finally:\n"
    "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
    "    print('vmhwm_kib', hwm.split()[1], file=sys.stderr)\n"
)


def import_row(name: str, data: bytes, suffix: str, tmp: Path) -> dict:
    work = tmp / f"import-{suffix}"
    work.mkdir()
    source = work / f"seeds.{suffix}"
    source.write_bytes(data)
    from keyfob.server.context import open_context
    from keyfob.server.settings import Settings

    # an empty, migrated store first (the CLI imports into an existing database only)
    open_context(
        Settings(db=f"sqlite:///{work / 'import.db'}", key_file=work / "import.key")
    ).engine.dispose()
    started = time.perf_counter()
    with (work / "out").open("w+b") as out_f, (work / "err").open("w+b") as err_f:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                PEAK_REPORTING_CLI,
                "admin",
                "--db",
                f"sqlite:///{work / 'import.db'}",
                "tokens",
                "import",
                str(source),
                "--json",
            ],
            env=dict(os.environ, KEYFOB_KEY_FILE=str(work / "import.key")),
            stdin=subprocess.DEVNULL,
            stdout=out_f,
            stderr=err_f,
        )
        proc.wait()
        elapsed = time.perf_counter() - started
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{name} import exited {proc.returncode}: {err[-500:]}")
    report = json.loads(out)
    return {
        "file": name,
        "rows": IMPORT_ROWS,
        "file_mb": round(len(data) / 2**20, 1),
        "created": report.get("created"),
        "seconds": round(elapsed, 1),
        "rows_per_s": round(IMPORT_ROWS / elapsed),
        "peak_rss_mib": round(int(err.rsplit("vmhwm_kib", 1)[1].split()[0]) / 1024),
    }


# --- the other bench scripts ---------------------------------------------------------------------


# the scripts' own settings within make bench: RADIUS with 2 processes, as REST has 2 workers
SCRIPT_ENV = {"radius": {"KEYFOB_BENCH_RADIUS_PROCESSES": "2", "KEYFOB_BENCH_WITHIN": "make-bench"}}
SCRIPTS = {  # part: (script, the result files it writes, the table latest.md quotes)
    "otp": ("bench_otp.py", ("otp.json", "otp.md"), "otp.md"),
    "cli": ("bench_cli.py", ("cli.json", "cli.md"), "cli.md"),
    "radius": ("bench_radius.py", ("radius.json", "radius.md"), "radius.md"),
    "directory": ("bench_directory.py", ("directory.md",), "directory.md"),
}


def run_script(name: str, timeout: float, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(
        [sys.executable, str(HERE / name)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{name} exited {proc.returncode}: {proc.stderr[-600:]}")


# --- versions and machine ------------------------------------------------------------------------


def command_output(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (out.stdout or out.stderr).strip()


def versions() -> dict[str, str]:
    def dist(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    rev = command_output(["git", "rev-parse", "--short", "HEAD"])
    dirty = command_output(["git", "status", "--porcelain", "--untracked-files=no"])
    pg = "-"
    with contextlib.suppress(Exception):
        engine = sa.create_engine(PG_URL)
        with engine.connect() as conn:
            pg = conn.execute(sa.text("SHOW server_version")).scalar_one().split()[0]
        engine.dispose()
    try:
        stamp = pi_stamp()
    except RuntimeError:
        stamp = {}
    return {
        "keyfob": f"{rev}{' (working tree modified)' if dirty else ''}",
        "python": platform.python_version(),
        "privacyidea": stamp.get("privacyidea", "not set up"),
        "privacyidea_stack": (
            f"gunicorn {stamp.get('gunicorn', '?')}, Flask {stamp.get('flask', '?')}, "
            f"SQLAlchemy {stamp.get('sqlalchemy', '?')}"
        ),
        "keyfob_stack": (
            f"uvicorn {dist('uvicorn')}, FastAPI {dist('fastapi')}, "
            f"SQLAlchemy {dist('sqlalchemy')}, psycopg {dist('psycopg')}"
        ),
        "wrk": " ".join(command_output(["wrk", "-v"]).split()[:2]) if shutil.which("wrk") else "-",
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg,
        "pyotp": dist("pyotp"),
        "oathtool": (command_output(["oathtool", "--version"]).splitlines() or ["-"])[0],
    }


def machine() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


# --- report --------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    return f"{a / b:,.0f}x" if a / b >= 10 else f"{a / b:,.1f}x"


def report(results: dict[str, Any]) -> str:
    meta, rows = results["meta"], results["http"]
    by = {(r["server"], r["load"], r["connections"]): r for r in rows}
    servers = [s for s in results["servers"] if any(r["server"] == s for r in rows)]
    out = [f"# `make bench`: keyfob and privacyIDEA side by side ({meta['when']})", ""]
    if not meta["quiet"]:
        out += [
            f"> **SMOKE RUN UNDER LOAD — NOT THE FIGURES.** {meta['why_not_quiet']} Rerun "
            "`make bench` on a quiet machine for the figures.",
            "",
        ]
    v, m = meta["versions"], meta["machine"]
    out += [
        "| | |",
        "|---|---|",
        f"| machine | {m['cores']} cores, {m['cpu']}, {m['memory_gib']} GiB, Linux {m['kernel']} |",
        f"| load average before the run | {meta['load_before']} (1 min), during the HTTP rows "
        f"other processes took {meta['other_cores_mean']} cores on average, "
        f"{meta['other_cores_max']} at most |",
        f"| keyfob | git {v['keyfob']}, Python {v['python']}, {v['keyfob_stack']} |",
        f"| privacyIDEA | {v['privacyidea']} ({v['privacyidea_stack']}), same Python |",
        f"| load generator | {v['wrk']}, `bench/validate.lua`, on the same machine |",
        f"| databases | SQLite {v['sqlite']} (WAL), PostgreSQL {v['postgresql']} on the same "
        "machine |",
        f"| others | pyotp {v['pyotp']}, {v['oathtool']} |",
        f"| run | parts: {meta['parts']}; {meta['seconds']} s a row, "
        f"{meta['elapsed']:.0f} s in all "
        f"(budget {meta['budget']:.0f} s); one-time privacyIDEA setup took "
        f"{meta.get('privacyidea_setup_seconds', '?')} s |",
        "| seconds per part | "
        + ", ".join(f"{k} {v:.0f}" for k, v in meta.get("part_seconds", {}).items())
        + " |",
        "",
    ]
    if meta["skipped"] or meta["failed"]:
        for name, why in meta["skipped"].items():
            out.append(f"- skipped **{name}**: {why}")
        for name, why in meta["failed"].items():
            out.append(f"- failed **{name}**: {why}")
        out.append("")
    if rows:
        sqlite_label, pg_label = "keyfob SQLite", "keyfob PostgreSQL"
        out += [
            "## Valid codes: accepts per second",
            "",
            "Every request a different user with that user's current code; only real accepts "
            "count. Each server runs 2 worker processes; privacyIDEA on SQLite with its SQL "
            "user resolver; *tuned* = internal metrics, audit signing and response signing "
            "off.",
            "",
            "| clients | " + " | ".join(servers) + " | keyfob SQLite ÷ privacyIDEA default "
            "| ÷ tuned | PostgreSQL ÷ SQLite |",
            "|---:|" + "---:|" * (len(servers) + 3),
        ]
        for c in CONCURRENCY:
            cells = [fmt(by.get((s, "valid", c), {}).get("accepts_per_s")) for s in servers]
            k = by.get((sqlite_label, "valid", c), {}).get("accepts_per_s")
            kp = by.get((pg_label, "valid", c), {}).get("accepts_per_s")
            d = by.get(("privacyIDEA default", "valid", c), {}).get("accepts_per_s")
            t = by.get(("privacyIDEA tuned", "valid", c), {}).get("accepts_per_s")
            pg_share = f"{kp / k:.0%}" if k and kp else "-"
            out.append(
                f"| {c} | " + " | ".join(cells) + f" | {ratio(k, d)} | {ratio(k, t)} | {pg_share} |"
            )
        out += [
            "",
            "![accepts per second and p99](latest.png)",
            "",
            "## Every row",
            "",
            "*answers/s*: all answers (accepts for valid codes, refusals otherwise); *CPU*: the "
            "server's processes (user + system) per answer, and PostgreSQL's backends for the "
            "bench database; *other load*: cores busy with processes that are neither the "
            "servers, the database backends, wrk nor the bench; *keyfob ÷*: keyfob SQLite's "
            "answers/s over this row's (privacyIDEA rows).",
            "",
            "| load | clients | server | answers/s | accepted | refused | other | p50 ms | "
            "p99 ms | CPU ms/answer | DB CPU ms | other load | keyfob ÷ |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for mode in MODES:
            for c in CONCURRENCY:
                base = by.get((sqlite_label, mode, c), {}).get("per_s")
                for s in servers:
                    r = by.get((s, mode, c))
                    if not r:
                        continue
                    vs = ratio(base, r["per_s"]) if s.startswith("privacyIDEA") else ""
                    other = str(r["others"]) + (
                        f" ({r['other_status'].strip()})" if r["other_status"] else ""
                    )
                    if r.get("exhausted"):
                        other += f", {r['exhausted']} past the fresh users"
                    out.append(
                        f"| {mode} | {c} | {s} | {fmt(r['per_s'])} | {r['accepts']:,} | "
                        f"{r['rejects']:,} | {other} | {fmt(r['p50_ms'], 2)} | "
                        f"{fmt(r['p99_ms'], 2)} | {fmt(r['server_cpu_ms'], 2)} | "
                        f"{fmt(r['db_cpu_ms'], 2)} | {r['other_cores']} | {vs} |"
                    )
        out.append("")
    if results.get("scale"):
        base = results["scale"][0]
        out += [
            "## Store size",
            "",
            "keyfob on SQLite, 8 clients; the store holds N tokens, one user each, made in bulk; "
            f"the same {SCALE_HOTP_USERS:,} HOTP users are validated round-robin, each request "
            "with that user's next counter (a store of 1 000 TOTP users gives only 1 000 "
            "accepts a step).",
            "",
            "| tokens in the store | database MB | accepts/s | p50 ms | p99 ms | CPU ms/answer "
            "| ÷ 1 000-token figure |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["scale"]:
            share = (
                f"{r['accepts_per_s'] / base['accepts_per_s']:.0%}"
                if base["accepts_per_s"] and base["tokens"] == SCALE_SIZES[0]
                else "-"
            )
            out.append(
                f"| {r['tokens']:,} | {r['db_mb']:,} | {fmt(r['accepts_per_s'])} | "
                f"{fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} | {fmt(r['server_cpu_ms'], 2)} "
                f"| {share} |"
            )
        out.append("")
    if results.get("import"):
        out += [
            "## Import",
            "",
            "`keyfob admin tokens import FILE` into an empty SQLite store, as one process "
            "(start-up included); peak RSS of that process (its VmHWM).",
            "",
            "| file | rows | MB | seconds | rows/s | peak RSS MiB |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        out += [
            f"| {r['file']} | {r['rows']:,} | {r['file_mb']} | {r['seconds']} | "
            f"{r['rows_per_s']:,} | {r['peak_rss_mib']} |"
            for r in results["import"]
        ]
        out.append("")
    for part, title in (
        ("otp", "In-process code checks vs pyotp (`bench_otp.py`)"),
        ("cli", "CLI start-up vs oathtool (`bench_cli.py`)"),
        ("radius", "RADIUS (`bench_radius.py`)"),
        ("directory", "Directory users (`bench_directory.py`)"),
    ):
        if part in results["scripts"]:
            lines = results["scripts"][part].splitlines()
            if part == "radius" and RADIUS_OTHER_RUN in lines and radius_pairs(results):
                # bench_radius.py's comparison with another run's REST: this run has its own
                lines = lines[: lines.index(RADIUS_OTHER_RUN)]
            body = "\n".join("##" + ln if ln.startswith("# ") else ln for ln in lines).rstrip()
            out += [f"## {title}", "", body, ""]
            if part == "radius":
                out += [*radius_vs_rest(results), ""]
    return "\n".join(out)


def radius_pairs(results: dict[str, Any]) -> list[tuple[str, int, dict, dict]]:
    """(backend, N, REST row, RADIUS row) of this run: ``keyfob serve --workers 2`` under wrk
    with N connections, valid codes, and two ``keyfob radius`` processes under ``radclient -p
    N``."""
    radius = {
        (r["backend"], r["parallel"]): r
        for r in results.get("radius", {}).get("runs", [])
        if r["processes"] == 2
    }
    rest = {(r["server"], r["connections"]): r for r in results["http"] if r["load"] == "valid"}
    return [
        (backend, c, rest[(label, c)], radius[(backend, c)])
        for backend, label in (("sqlite", "keyfob SQLite"), ("postgresql", "keyfob PostgreSQL"))
        for c in (8, 64)
        if (label, c) in rest and (backend, c) in radius and rest[(label, c)]["accepts_per_s"]
    ]


def radius_vs_rest(results: dict[str, Any]) -> list[str]:
    """Issue 11's target, RADIUS ≥ REST, as a ratio of this run only: both load generators in
    C on this machine, at the same ceiling of requests in flight. A REST figure from another
    run (another load) would not be a fair ratio (issue 16)."""
    pairs = radius_pairs(results)
    if not pairs:
        return [
            "REST or RADIUS was not measured in this run (parts keyfob-sqlite, "
            "keyfob-postgresql, radius): no RADIUS ÷ REST ratio of this run."
        ]
    lines = [
        "### RADIUS ÷ REST, both measured in this run",
        "",
        "RADIUS: 2 `keyfob radius` processes, `radclient -p N`; REST: `keyfob serve --workers "
        "2`, wrk with N connections; valid codes, only accepts count in both. *CPU*: ms per "
        "answer of the servers and of the load generator (radclient busy-polls: its CPU is a "
        "share of a core for the whole run, taken from the servers on this machine).",
        "",
        "| backend | N | REST accepts/s | REST CPU ms | wrk CPU ms | RADIUS pairs/s | "
        "RADIUS CPU ms | radclient CPU ms | RADIUS ÷ REST |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    best: dict[str, tuple[float, float]] = {}
    for backend, c, h, r in pairs:
        rest_best, radius_best = best.get(backend, (0.0, 0.0))
        best[backend] = (max(rest_best, h["accepts_per_s"]), max(radius_best, r["pairs_per_s"]))
        lines.append(
            f"| {backend} | {c} | {fmt(h['accepts_per_s'])} | {fmt(h['server_cpu_ms'], 2)} | "
            f"{fmt(h['wrk_cpu_ms'], 2)} | {fmt(r['pairs_per_s'])} | "
            f"{fmt(r['server_cpu_ms'], 2)} | {fmt(r['radclient_cpu_ms'], 2)} | "
            f"{r['pairs_per_s'] / h['accepts_per_s']:.2f} |"
        )
    for backend, (rest_best, radius_best) in best.items():
        lines.append(
            f"| **{backend}, best of 8/64** | | {fmt(rest_best)} | | | {fmt(radius_best)} | | | "
            f"**{radius_best / rest_best:.2f}** |"
        )
    return lines


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["http"] if r["load"] == "valid"]
    servers = [s for s in results["servers"] if any(r["server"] == s for r in rows)]
    if not rows:
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(servers)
    for k, server in enumerate(servers):
        mine = {r["connections"]: r for r in rows if r["server"] == server}
        xs = [i + k * width for i in range(len(CONCURRENCY))]
        for ax, key in ((left, "accepts_per_s"), (right, "p99_ms")):
            values = [mine.get(c, {}).get(key, 0) for c in CONCURRENCY]
            bars = ax.bar(xs, values, width, label=server)
            ax.bar_label(bars, fmt="%.0f", fontsize=7)
    for ax, title in ((left, "accepts/s (log)"), (right, "p99 latency, ms (log)")):
        ax.set_xticks([i + width * (len(servers) - 1) / 2 for i in range(len(CONCURRENCY))])
        ax.set_xticklabels([f"{c} client{'s' if c > 1 else ''}" for c in CONCURRENCY])
        ax.set_yscale("log")
        ax.set_ylim(bottom=1, top=max(10.0, ax.get_ylim()[1]) * 3)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(servers), fontsize=8, frameon=False)
    smoke = "" if results["meta"]["quiet"] else "  [SMOKE RUN UNDER LOAD — not the figures]"
    fig.suptitle(f"POST validate, valid codes, 2 workers each{smoke}", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def isolate(tmp: Path) -> None:
    """keyfob with its defaults only: no KEYFOB_* settings from the caller's environment and no
    config file (~/.config/keyfob or /etc/keyfob), for this process and the servers it starts."""
    kept = {"KEYFOB_BENCH_POSTGRES_URL", "KEYFOB_TEST_POSTGRES_URL"}
    dropped = sorted(k for k in os.environ if k.startswith("KEYFOB_") and k not in kept)
    for name in dropped:
        del os.environ[name]
    if dropped:
        print(f"bench: ignoring {', '.join(dropped)} (keyfob runs on its defaults here)")
    empty = tmp / "keyfob.toml"
    empty.write_text("# the bench's keyfob runs on its defaults\n")
    os.environ["KEYFOB_CONFIG"] = str(empty)


# --- main ----------------------------------------------------------------------------------------


def main() -> int:
    started = time.time()
    load_before = os.getloadavg()[0]
    parts = [p for p in os.environ.get("BENCH_PARTS", ",".join(ALL_PARTS)).split(",") if p]
    deadline = started + BUDGET
    # rough cost of each part in seconds, to skip what would not fit in the budget
    row_cost = SECONDS + 2.5
    cost = {
        "keyfob-sqlite": 12 * row_cost + 25,
        "keyfob-postgresql": 12 * row_cost + 35,
        "privacyidea-default": 12 * row_cost - 5,
        "privacyidea-tuned": 12 * row_cost - 5,
        "scale": 3 * (SECONDS + 12) + (0 if scale_cached() else 75),
        "import": 35,
        "otp": 15,
        "cli": 10,
        "radius": 60,
        "directory": 10,
    }
    results: dict[str, Any] = {"http": [], "scale": [], "import": [], "scripts": {}}
    kept: dict[str, bytes] = {}  # the other scripts' result files as they were
    results["servers"] = [
        "keyfob SQLite",
        "keyfob PostgreSQL",
        "privacyIDEA default",
        "privacyIDEA tuned",
    ]
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    part_seconds: dict[str, float] = {}  # what each part took, to keep the estimates honest
    if not shutil.which("wrk"):
        print(
            "wrk is not installed: `apt-get install wrk` (Debian package wrk); "
            "the HTTP rows are skipped",
            file=sys.stderr,
        )

    def log(text: str) -> None:
        print(text, flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="keyfob-compare-"))
    isolate(tmp)
    for part in parts:
        left = deadline - time.time()
        if part not in cost:
            skipped[part] = "unknown part"
            continue
        if cost[part] > left:
            skipped[part] = f"would not fit in the budget ({left:.0f} s left, needs ~{cost[part]})"
            log(f"{part}: skipped, {skipped[part]}")
            continue
        if part == "keyfob-postgresql" and (why := pg_unavailable()):
            skipped[part] = why
            log(f"{part}: skipped, {why}")
            continue
        log(f"{part} …")
        part_started = time.time()
        work = tmp / part
        work.mkdir()
        target: Target | None = None
        try:
            if part.startswith(("keyfob-", "privacyidea-")) and not shutil.which("wrk"):
                raise RuntimeError("wrk is not installed (apt-get install wrk)")
            if part == "keyfob-sqlite":
                target = keyfob_target("sqlite", work, max(60_000, 12_000 * SECONDS))
            elif part == "keyfob-postgresql":
                target = keyfob_target("postgresql", work, max(60_000, 12_000 * SECONDS))
            elif part.startswith("privacyidea-"):
                target = privacyidea_target(part.removeprefix("privacyidea-"), work)
            if target is not None:
                results["http"] += run_target(target, SECONDS, work, log)
            elif part == "scale":
                for size in SCALE_SIZES:
                    results["scale"].append(scale_row(size, SECONDS, work, log))
            elif part == "import":
                pskc = bench_server.pskc_document(IMPORT_ROWS)
                results["import"].append(import_row("PSKC (plain values)", pskc, "pskc", work))
                log(f"  {results['import'][-1]}")
                del pskc
                csv = entra_csv(IMPORT_ROWS)
                results["import"].append(import_row("Entra CSV (with UPNs)", csv, "csv", work))
                log(f"  {results['import'][-1]}")
            else:
                script, files, table = SCRIPTS[part]
                for name in files:  # put back at the end if this turns out a smoke run
                    with contextlib.suppress(OSError):
                        kept.setdefault(name, (RESULTS / name).read_bytes())
                run_script(script, max(30.0, deadline - time.time()), SCRIPT_ENV.get(part))
                results["scripts"][part] = (RESULTS / table).read_text().strip()
                if part == "radius":  # its rows, for the ratio with this run's REST rows
                    results["radius"] = json.loads((RESULTS / "radius.json").read_text())
        except Exception as exc:  # a part that fails is reported; the others still run
            failed[part] = f"{type(exc).__name__}: {str(exc)[-400:]}"
            log(f"{part}: FAILED {failed[part]}")
        finally:
            if target is not None:
                stop(target.proc)
        if part == "keyfob-postgresql":
            with contextlib.suppress(Exception):
                engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
                with engine.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)'))
                engine.dispose()
        shutil.rmtree(work, ignore_errors=True)
        part_seconds[part] = round(time.time() - part_started, 1)
        log(f"{part}: {part_seconds[part]:.0f} s (estimated {cost[part]:.0f})")
    shutil.rmtree(tmp, ignore_errors=True)

    others = [r["other_cores"] for r in results["http"] + results["scale"]]
    mean_other = round(sum(others) / len(others), 2) if others else 0.0
    max_other = max(others) if others else 0.0
    why = []
    if SECONDS < FULL_SECONDS:
        why.append(f"Rows of {SECONDS} s (BENCH_SECONDS), not {FULL_SECONDS}.")
    if load_before > 0.5:
        why.append(f"Load average {load_before:.2f} before the run.")
    if mean_other > 0.15:
        why.append(f"Other processes took {mean_other} cores on average during the rows.")
    if failed or skipped:
        why.append("Parts failed or were skipped.")
    try:
        setup_seconds = pi_stamp().get("setup_seconds")
    except RuntimeError:
        setup_seconds = None
    results["meta"] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "versions": versions(),
        "parts": "all" if tuple(parts) == ALL_PARTS else ", ".join(parts),
        "seconds": SECONDS,
        "budget": BUDGET,
        "elapsed": time.time() - started,
        "load_before": round(load_before, 2),
        "other_cores_mean": mean_other,
        "other_cores_max": max_other,
        "quiet": not why,
        "why_not_quiet": " ".join(why),
        "skipped": skipped,
        "failed": failed,
        "part_seconds": part_seconds,
        "privacyidea_setup_seconds": setup_seconds,
    }
    RESULTS.mkdir(exist_ok=True)
    if not results["meta"]["quiet"]:
        # a smoke run does not replace figures measured on a quiet machine: its tables are
        # in latest.md only
        for name, data in kept.items():
            (RESULTS / name).write_bytes(data)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    try:
        chart(results, RESULTS / "latest.png")
    except Exception as exc:
        failed["chart"] = f"{type(exc).__name__}: {exc}"
    (RESULTS / "latest.md").write_text(report(results) + "\n")
    log(f"wrote {RESULTS / 'latest.md'} in {time.time() - started:.0f} s")
    if not results["meta"]["quiet"]:
        log(f"SMOKE RUN UNDER LOAD — not the figures: {results['meta']['why_not_quiet']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
