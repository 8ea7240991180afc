"""Where a validation's server CPU goes (issue 16: "show the profile that says what bounds it").

``make profile`` serves keyfob on SQLite (``keyfob serve --workers 2``, the bench's settings),
drives it with the bench's wrk script at 8 connections (every request a different user with
that user's current code: real accepts), and samples both workers with py-spy meanwhile. It
then sorts every sample into one bucket by the innermost frame that belongs to a known layer,
and writes ``bench/results/profile.md``: the share of the server's busy time per layer, the
busiest functions, and — for scale — what ``validation.validate`` costs called in process
with no HTTP in front of it.

py-spy is a sampling profiler that reads the workers' memory from outside (no
instrumentation, so the figures are not bent by the profiler's own cost); it is installed
once into the git-ignored ``bench/.tools`` virtualenv, not into the project's. Samples are
Python stacks: time inside C code (SQLite, HMAC, the socket send) counts for the Python frame
that called it, which is what the buckets want.

Environment: ``PROFILE_DB`` (``sqlite``, the default, or ``postgresql``: a fresh database
``keyfob_profile`` on ``KEYFOB_BENCH_POSTGRES_URL``'s server), ``PROFILE_SECONDS`` (default
15), ``PROFILE_USERS`` (default 60000: none asked twice).
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import tempfile
import time
import venv
from datetime import UTC, datetime
from pathlib import Path

import bench_server
from bench_compare import cpu_delta, cpu_of, process_tree, start_keyfob, stop
from keyfob.server import accounts
from keyfob.server.context import open_context
from keyfob.server.settings import Settings

HERE = Path(__file__).resolve().parent
TOOLS = HERE / ".tools"
OUT = HERE / "results" / "profile.md"
SECONDS = int(os.environ.get("PROFILE_SECONDS", "15"))
USERS = int(os.environ.get("PROFILE_USERS", "60000"))  # no user asked twice: all accepts
BACKEND = os.environ.get("PROFILE_DB", "sqlite")  # or postgresql (KEYFOB_BENCH_POSTGRES_URL)
RATE = 250  # samples a second per process

# (bucket, pattern on "function (file:line)"): the innermost frame that matches decides.
LAYERS: list[tuple[str, re.Pattern[str]]] = [
    # the answer's one write: uvloop's send system call, which on loopback also runs the
    # receiving side's TCP path
    ("socket send of the answer (system call)", re.compile(r"one_write\.py")),
    ("OTP maths (HMAC, window search)", re.compile(r"keyfob/otp/|/hmac\.py|/hashlib")),
    ("database (SQLAlchemy + sqlite3 C calls)", re.compile(r"sqlalchemy/|sqlite3/|psycopg")),
    ("JSON encode/decode", re.compile(r"/json/|orjson|ujson")),
    ("keyfob validation logic", re.compile(r"keyfob/server/(?!api/)")),
    ("keyfob HTTP route (lean validate, auth)", re.compile(r"keyfob/server/api/")),
    ("framework (Starlette, FastAPI, pydantic)", re.compile(r"starlette/|fastapi/|pydantic")),
    ("HTTP protocol (uvicorn, httptools)", re.compile(r"uvicorn/|httptools|h11/")),
    (
        "event loop: socket send/receive, scheduling",
        re.compile(r"asyncio/|uvloop|selectors\.py|/socket\.py"),
    ),
    ("thread pool hand-off", re.compile(r"concurrent/futures|threading\.py|anyio/")),
]
OTHER = "other"
WAITING = "waiting"
# Leaves where a thread waits rather than works (a worker thread for the next job, psycopg for
# the database's answer): py-spy's idle detection does not always see these as idle.
WAITS = re.compile(r"^(Condition\.wait|wait) \(.*threading\.py|^Connection\.wait \(.*psycopg")


def py_spy() -> Path:
    """py-spy from PyPI in its own git-ignored virtualenv (created on the first run)."""
    exe = TOOLS / "bin" / "py-spy"
    if not exe.exists():
        venv.create(TOOLS, with_pip=True)
        subprocess.run([TOOLS / "bin" / "pip", "install", "-q", "py-spy"], check=True)
    return exe


def classify(stack: list[str]) -> str:
    """The bucket of one sample: the innermost frame that belongs to a known layer."""
    for frame in reversed(stack):
        for bucket, pattern in LAYERS:
            if pattern.search(frame):
                return bucket
    return OTHER


def read_samples(raw: Path) -> tuple[collections.Counter[str], collections.Counter[str], int]:
    """py-spy's raw (collapsed) output: ``frame;frame;… COUNT`` a line, outermost first."""
    buckets: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        stack = [f for f in stack_text.split(";") if not f.startswith("process ")]
        if stack and WAITS.search(stack[-1]):
            buckets[WAITING] += count
            continue
        buckets[classify(stack)] += count
        leaves[_short(stack[-1]) if stack else "?"] += count
        total += count
    return buckets, leaves, total


def _short(frame: str) -> str:
    """``func (…/site-packages/pkg/mod.py:12)`` → ``func (pkg/mod.py)``."""
    match = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not match:
        return frame
    func, path = match.groups()
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{func} ({path})"


def in_process_ms() -> float:
    """Mean wall time of an accepting ``validation.validate`` called directly (SQLite)."""
    return float(bench_server.in_process(per_user=1, samples=2000)["mean_ms"])


def profile(tmp: Path) -> dict[str, object]:
    """Serve, load, sample: the samples file and the accepts and CPU of the sampled run."""
    db = f"sqlite:///{tmp / 'profile.db'}"
    if BACKEND == "postgresql":
        db = bench_server._fresh_pg("keyfob_profile")
    ctx = open_context(Settings(db=db, key_file=tmp / "profile.key"))
    population = bench_server.populate(ctx, USERS)
    _, key = accounts.create_api_key(ctx, "profile", "validate")
    ctx.engine.dispose()
    server = start_keyfob(db, tmp / "profile.key", "profile", tmp / "serve.log")
    url = f"http://127.0.0.1:{server.port}"  # type: ignore[attr-defined]
    raw = tmp / "profile.txt"
    try:
        bench_server._wrk(url, key, population[:4000], 3, 8)  # warm-up
        workers = [pid for pid in process_tree(server.pid) if pid != server.pid]
        spies = [spy_on(pid, raw.with_suffix(f".{pid}.txt")) for pid in workers]
        time.sleep(1)
        before = cpu_of(workers)
        result = bench_server._wrk(url, key, population[4000:], SECONDS, 8)
        cpu = cpu_delta(before, cpu_of(workers))
        for spy in spies:
            _, err = spy.communicate(timeout=SECONDS + 60)
            if spy.returncode != 0:
                raise SystemExit(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
        raw.write_text("".join(p.read_text() for p in raw.parent.glob("profile.*.txt")))
    finally:
        stop(server)
    return {
        "raw": raw,
        "requests": result["requests"],
        "accepts": result.get("accepts", "?"),
        "cpu": cpu,
        "seconds": result["seconds"],
    }


def spy_on(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling one worker (one per worker: ``--subprocesses`` can miss them)."""
    argv = [str(py_spy()), "record", "--pid", str(pid), "--nonblocking", "--rate", str(RATE)]
    argv += ["--duration", str(SECONDS + 2), "--format", "raw", "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def report(run: dict[str, object], direct_ms: float) -> str:
    buckets, leaves, total = read_samples(Path(str(run["raw"])))
    requests, cpu = int(str(run["requests"])), float(str(run["cpu"]))
    per_request = cpu / requests * 1000 if requests else float("nan")
    load = os.getloadavg()[0]
    waits = buckets.pop(WAITING, 0)
    lines = [
        f"# Where a validation's server CPU goes ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`make profile`: `keyfob serve --workers 2` on {BACKEND}, {USERS:,} users, wrk at 8",
        f"connections for {SECONDS} s (every request a different user with a current code),",
        f"both workers sampled by py-spy at {RATE} Hz. Load average {load:.2f} at the end.",
        "",
        f"- requests: {requests:,} in {float(str(run['seconds'])):.1f} s, {run['accepts']:,} "
        "of them accepted; "
        f"server CPU {per_request:.2f} ms per request",
        f"- `validation.validate` called in process (no HTTP): {direct_ms:.3f} ms per accept",
        f"- busy samples: {total:,} (py-spy leaves idle threads out; {waits:,} more samples "
        "blocked in a thread wait or on the database's answer are left out too)",
        "",
        "| layer (innermost known frame of each sample) | share of busy samples |",
        "|---|---:|",
    ]
    for bucket, count in buckets.most_common():
        lines.append(f"| {bucket} | {count / total:.1%} |")
    lines += ["", "Busiest functions (self time):", "", "| function | share |", "|---|---:|"]
    for leaf, count in leaves.most_common(15):
        lines.append(f"| `{leaf}` | {count / total:.1%} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    py_spy()
    with tempfile.TemporaryDirectory(prefix="keyfob-profile-") as name:
        run = profile(Path(name))
        direct = in_process_ms()
        text = report(run, direct)
    (OUT if BACKEND == "sqlite" else OUT.with_name(f"profile-{BACKEND}.md")).write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
