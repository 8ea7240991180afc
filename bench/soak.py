"""Soak (issue 17): ``SOAK_SECONDS`` (default 600) of mixed load against 2 ``keyfob serve``
processes on one PostgreSQL, then every invariant. Figures: ``bench/results/soak.md`` and
``soak.json``. Run with ``make soak``; not part of ``make test``.

The load, from a few client threads on loopback, each request sent to either server at random:
validations with the current code (accepted once per step — the other server must refuse the
same code), replays of accepted codes, wrong codes for a separate set of users (who lock out),
enrolments, seed-file imports, admin reads and web sign-ins. Each enrolled user is deleted
again, so the users stay as many as at the start. Why: ``GET /api/v1/users`` answers every user
at once, and with a user more every 20 actions its answer grew with the run, and with it the
memory the allocators keep after building one (about 3.6 KB of RSS per user: 20 MB in 25
minutes). That is growth with the data, not a leak, and a soak must not mistake one for the
other. Afterwards:

- no answer was a 5xx and no request failed;
- each code was accepted at most once across both servers, and each accept a client saw is in
  the audit (no more, no less) and under the token's ``last_step``;
- every token's ``fail_count`` is what its audit rows add up to;
- every stored secret opens with a freshly started key ring;
- the servers' memory levelled off (:func:`_judge_memory` says how, and why that way).

Every request loop is bounded in time and stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyotp
import sqlalchemy as sa

# The throwaway PostgreSQL database and the audit's account of validations are the tests' own
# (tests/testkit.py): the soak checks the same invariants as the crash-safety test.
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from keyfob.server import accounts, enrolment
from keyfob.server.context import open_context
from keyfob.server.settings import Settings
from keyfob.server.store.schema import tokens, users
from testkit import TempDatabase, fail_counts, validation_audit

RESULTS = Path(__file__).parent / "results"
KEYFOB = [sys.executable, "-c", "from keyfob.cli.main import run; run()"]
# SOAK_TRACEMALLOC=DIR (a diagnosis aid, off by default): each server traces its allocations
# (tracemalloc, 12 frames, started after the imports, which it would slow to a minute) and
# dumps a snapshot to DIR/<pid>-<seconds>.snap every minute, to compare with
# tracemalloc.Snapshot.load(...).compare_to(...). It slows the servers about twofold.
TRACED = """
import os, threading, time, tracemalloc
import keyfob.cli.main, keyfob.server.api.app, keyfob.server.web.admin_pages
where, began = os.environ["SOAK_TRACEMALLOC"], time.monotonic()
tracemalloc.start(12)
def dump():
    while True:
        time.sleep(60)
        t = round(time.monotonic() - began)
        tracemalloc.take_snapshot().dump(f"{where}/{os.getpid()}-{t:04d}.snap")
threading.Thread(target=dump, daemon=True).start()
keyfob.cli.main.run()
"""
WEB_PASSWORD = "soak web password 1"
WORKERS = 6
ACTIONS = {  # action -> weight
    "validate": 40,
    "replay": 8,
    "wrong": 8,
    "enrol": 4,
    "import": 1,
    "admin_read": 10,
    "web_signin": 3,
}


@dataclass
class Log:
    """Everything the clients saw, under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    status: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    accepts: dict[tuple[str, int], str] = field(default_factory=dict)  # (user, step) -> code
    # A code accepted again: (user, step the client made it for, code, when it was sent).
    double: list[tuple[str, int, str, float]] = field(default_factory=list)
    rss: dict[int, list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))
    load: list[tuple[float, float]] = field(default_factory=list)  # (seconds, 1-min load avg)
    started: float = field(default_factory=time.monotonic)  # set again as the load starts
    by_minute: Counter[int] = field(default_factory=Counter)  # actions done in each minute

    def record(self, action: str, seconds: float, status: int) -> None:
        with self.lock:
            self.by_minute[int((time.monotonic() - self.started) // 60)] += 1
            self.latency[action].append(seconds)
            self.status[status] += 1
            if status >= 500:
                self.errors.append(f"{action}: HTTP {status}")


# --- set-up -----------------------------------------------------------------------------------


def _setup(settings: Settings) -> dict[str, Any]:
    """An admin key, users with app tokens (one set only ever gets good codes, one gets wrong
    ones), and a web user with a password and no method (one-step sign-in)."""
    ctx = open_context(settings)
    _, key = accounts.create_api_key(ctx, "soak", "admin")
    good, bad = {}, {}
    for pool, prefix, n in ((good, "g", 40), (bad, "b", 10)):
        for i in range(n):
            name = f"{prefix}{i}@soak.example"
            accounts.create_user(ctx, name)
            begun = enrolment.begin(ctx, name, "app", actor="soak")
            uri = begun["otpauth_uri"] if isinstance(begun, dict) else begun.otpauth_uri
            tid = begun["id"] if isinstance(begun, dict) else begun.id
            totp = pyotp.parse_uri(uri)
            enrolment.verify_enrolment(ctx, name, tid, totp.at(time.time() - 30), actor="soak")
            pool[name] = totp
    for i in range(WORKERS):  # one per client thread: one person does not sign in 6 times at once
        accounts.create_user(ctx, f"web{i}@soak.example", password=WEB_PASSWORD, one_time=False)
    ctx.engine.dispose()
    return {"key": key, "good": good, "bad": bad}


def _start_server(db: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launcher = [sys.executable, "-c", TRACED] if env.get("SOAK_TRACEMALLOC") else KEYFOB
    argv = [*launcher, "serve", "--db", db, "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"keyfob serve on port {port} did not start")


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- the load ---------------------------------------------------------------------------------


class Worker:
    """One client thread: a session per server, a random action per request."""

    def __init__(self, urls: list[str], setup: dict[str, Any], log: Log, seed: int) -> None:
        self.rng = random.Random(seed)
        self.auth = {"Authorization": f"Bearer {setup['key']}"}
        self.clients = [httpx.Client(base_url=u, headers=self.auth, timeout=30) for u in urls]
        self.urls, self.setup, self.log, self.seed, self.n = urls, setup, log, seed, 0

    def run(self, deadline: float) -> None:
        names, weights = list(ACTIONS), list(ACTIONS.values())
        while time.monotonic() < deadline:
            action = self.rng.choices(names, weights)[0]
            client = self.rng.choice(self.clients)
            started = time.monotonic()
            try:
                status = getattr(self, "import_" if action == "import" else action)(client)
            except (httpx.HTTPError, AssertionError, KeyError, ValueError) as exc:
                with self.log.lock:
                    self.log.errors.append(f"{action}: {type(exc).__name__}: {exc}"[:300])
                continue
            self.log.record(action, time.monotonic() - started, status)

    def _expect(self, resp: httpx.Response, *ok: int) -> int:
        assert resp.status_code in ok or resp.status_code >= 500, (
            f"HTTP {resp.status_code} {resp.request.url.path}: {resp.text[:200]}"
        )
        return resp.status_code

    def validate(self, client: httpx.Client) -> int:
        name, totp = self.rng.choice(list(self.setup["good"].items()))
        now = time.time()
        code = totp.at(now)
        resp = client.post("/api/v1/validate", json={"username": name, "code": code})
        if resp.status_code == 200 and resp.json()["result"] == "accept":
            with self.log.lock:
                key = (name, int(now // 30))
                if key in self.log.accepts:
                    self.log.double.append((*key, code, now))
                self.log.accepts[key] = code
        return self._expect(resp, 200)

    def replay(self, client: httpx.Client) -> int:
        with self.log.lock:
            if not self.log.accepts:
                return 200
            (name, step), code = self.rng.choice(list(self.log.accepts.items()))
        sent = time.time()
        resp = client.post("/api/v1/validate", json={"username": name, "code": code})
        if resp.status_code == 200 and resp.json()["result"] == "accept":
            with self.log.lock:
                self.log.double.append((name, step, code, sent))
        return self._expect(resp, 200)

    def wrong(self, client: httpx.Client) -> int:
        name, totp = self.rng.choice(list(self.setup["bad"].items()))
        now = time.time()
        near = {totp.at(now + 30 * k) for k in range(-250, 251)}
        code = next(
            c for c in (f"{self.rng.randrange(10**6):06d}" for _ in range(99)) if c not in near
        )
        resp = client.post("/api/v1/validate", json={"username": name, "code": code})
        assert resp.status_code >= 500 or resp.json()["result"] == "reject", "wrong code accepted"
        return self._expect(resp, 200)

    def enrol(self, client: httpx.Client) -> int:
        self.n += 1
        name = f"e{self.seed}-{self.n}@soak.example"
        self._expect(client.post("/api/v1/users", json={"username": name}), 201)
        begun = client.post(f"/api/v1/users/{name}/tokens", json={"kind": "app"})
        self._expect(begun, 201)
        totp = pyotp.parse_uri(begun.json()["otpauth_uri"])
        path = f"/api/v1/users/{name}/tokens/{begun.json()['id']}/verify"
        self._expect(client.post(path, json={"code": totp.at(time.time() - 30)}), 200)
        return self._expect(client.delete(f"/api/v1/users/{name}"), 200)

    def import_(self, client: httpx.Client) -> int:
        rows = [
            f"SOAK{self.seed:02d}{self.n:06d}{i},{os.urandom(20).hex()},totp,6,30" for i in range(3)
        ]
        self.n += 1
        body = {"content": "\n".join(rows) + "\n", "format": "oath-csv"}
        return self._expect(client.post("/api/v1/tokens/import", json=body), 200)

    def admin_read(self, client: httpx.Client) -> int:
        path = self.rng.choice(
            ["/api/v1/tokens?limit=20", "/api/v1/audit?limit=20", "/api/v1/users"]
        )
        return self._expect(client.get(path), 200)

    def web_signin(self, client: httpx.Client) -> int:
        with httpx.Client(base_url=str(client.base_url), timeout=30) as web:
            self._expect(web.get("/login"), 200)
            form = {"username": f"web{self.seed}@soak.example", "password": WEB_PASSWORD}
            form["csrf"] = web.cookies["kf_login_csrf"]
            signed = web.post("/login", data=form)
            where = signed.headers.get("location")
            assert where == "/", (
                f"sign-in: HTTP {signed.status_code} to {where}: {signed.text[:300]}"
            )
            self._expect(signed, 303)
            return self._expect(web.get("/"), 200)


def _load_average() -> float:
    """The machine's 1-minute load average: the soak shares its 2 cores with whatever else runs."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def _sample_memory(pids: list[int], log: Log, stop: threading.Event) -> None:
    """Every second: each server's RSS and the load average. Each second, not every few: the
    memory judgement takes each minute's lowest RSS, which needs many samples a minute."""
    while not stop.wait(1):
        now = time.monotonic() - log.started
        for pid in pids:
            log.rss[pid].append((now, _rss_kb(pid)))
        log.load.append((now, _load_average()))


# --- afterwards ---------------------------------------------------------------------------------


def _doubles(setup: dict[str, Any], log: Log) -> tuple[list[str], Counter[str]]:
    """The codes accepted twice that break the rule, and per user those that do not.

    A step's code is accepted once; but 6 digits are also another step's code one time in a
    million, and a replay whose digits are the code of a step near the time it was sent is
    that step's code, rightly accepted (an accept the audit holds, so it is counted as one)."""
    broken: list[str] = []
    again: Counter[str] = Counter()
    for name, step, code, sent in log.double:
        totp = setup["good"][name]
        near = {s for s in range(int(sent // 30) - 3, int(sent // 30) + 4) if s != step}
        if any(totp.at(s * 30) == code for s in near):
            again[name] += 1
        else:
            broken.append(f"accepted twice: {name}, step {step}")
    return broken, again


def _invariants(settings: Settings, setup: dict[str, Any], log: Log) -> dict[str, Any]:
    """The database against what the clients saw; every broken invariant is a line."""
    ctx = open_context(settings)
    with ctx.engine.connect() as conn:
        rows = validation_audit(conn)
        people = conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one()
        toks = conn.execute(
            sa.select(users.c.username, tokens.c.id, tokens.c.secret_enc)
            .add_columns(tokens.c.last_step, tokens.c.fail_count, tokens.c.owner_id)
            .outerjoin(users, users.c.id == tokens.c.owner_id)
        ).all()
    broken, again = _doubles(setup, log)
    for t in toks:
        ctx.ring.open(bytes(t.secret_enc), t.id)  # raises if any secret does not open
    audited = Counter(r.target_user for r in rows if r.outcome == "success")
    seen = Counter(name for name, _ in log.accepts) + again
    counted = fail_counts(rows)
    for t in toks:
        if t.username is None or t.username.startswith(("e", "web")):
            continue  # enrolled during the soak or the web user: no client-side ledger
        if audited[t.username] != seen[t.username]:
            broken.append(
                f"{t.username}: {audited[t.username]} accepts audited, {seen[t.username]} seen"
            )
        steps = [s for (n, s) in log.accepts if n == t.username]
        if steps and t.last_step < max(steps):
            broken.append(f"{t.username}: last_step {t.last_step} below an accepted step")
        if t.fail_count != counted[t.username]:
            broken.append(
                f"{t.username}: fail_count {t.fail_count}, audit says {counted[t.username]}"
            )
    ctx.engine.dispose()
    checks = {"broken": broken, "tokens": len(toks), "audit_validations": len(rows)}
    checks["users"] = people
    return checks | {"accepted_again_as_another_step": sum(again.values())}


JUDGED_MINUTES = 4  # a shorter run is all warm-up: its memory is shown, not judged
GROWTH_LIMIT = (1.25, 40.0)  # the second half's floor may grow by 25 % or 40 MB, not both
SLOPE_LIMIT = 0.1  # MB per 1000 actions (both servers'): 100 bytes an action


def _per_minute(samples: list[tuple[float, int]], minutes: int) -> list[list[float]]:
    """Each whole minute's RSS samples in MB (a last, partial minute is left out)."""
    out: list[list[float]] = [[] for _ in range(minutes)]
    for t, kb in samples:
        if int(t // 60) < minutes:
            out[int(t // 60)].append(kb / 1024)
    return [values for values in out if values]


def _judge_memory(floors: list[float], actions: list[int]) -> tuple[dict[str, Any], list[str]]:
    """Whether the per-minute floors of RSS levelled off (``actions``: how many both servers
    had done by the end of each minute); a broken invariant per way they did not.

    The floor, not the RSS at one moment: a web sign-in's argon2 hash takes 64 MiB while it
    runs (up to ``accounts.HASH_SLOTS`` = 3 at once, so +64 to +192 MB), which malloc maps and
    gives back, so any sample may land on a peak; the lowest of each minute's 60 samples is
    the resident size that stays. The baseline is the floor of the first minute of the run's
    second half, not of the first minute: warm-up (connection pools, prepared statements,
    compiled-statement caches, the thread pool's malloc arenas) goes on past the first minute,
    and a first-minute baseline would call it growth.

    Two checks. The issue's rule (the end within 25 % or 40 MB of that baseline) alone is too
    loose for 5 minutes: the import leak fixed in ``repo.Staging`` (~1.5 MB per 1000 actions)
    added about 20 MB in them. So also the least-squares slope of the second half's floors
    against the actions done, at most ``SLOPE_LIMIT`` MB per 1000 actions. Per action, not per
    minute: a leak grows with the work done, and a quiet machine does twice the actions a
    minute of a busy one, so a limit per minute would make the verdict depend on the load.
    Measured: under 0.01 MB per 1000 actions with the users kept as many (``make soak``, 60 000
    actions: the floor moved 0.2 MB over the second half), 0.2 with a user more every 20
    actions (the module docstring), 1.5 with the import leak."""
    half = len(floors) // 2
    base, end = floors[half], floors[-1]
    done = [n / 1000 for n in actions[half:]]
    per_action = statistics.linear_regression(done, floors[half:]).slope
    per_minute = statistics.linear_regression(range(len(floors) - half), floors[half:]).slope
    broken = []
    if end > base * GROWTH_LIMIT[0] and end - base > GROWTH_LIMIT[1]:
        broken.append(f"grew from {base:.0f} MB to {end:.0f} MB over the second half")
    if per_action > SLOPE_LIMIT:
        broken.append(f"still growing {per_action:.2f} MB per 1000 actions in the second half")
    verdict = {"baseline_minute": half + 1, "baseline_mb": base, "end_mb": end}
    slopes = {"mb_per_1000_actions": round(per_action, 3), "mb_per_min": round(per_minute, 2)}
    return {**verdict, **slopes, "levelled": not broken}, broken


def _memory(log: Log, seconds: float) -> tuple[list[dict[str, Any]], list[str]]:
    """Per server: the floor (lowest) and peak RSS of each minute, and the verdict on runs of
    ``JUDGED_MINUTES`` minutes or more."""
    out: list[dict[str, Any]] = []
    broken: list[str] = []
    whole = int(seconds // 60)
    actions = [sum(log.by_minute[m] for m in range(end + 1)) for end in range(whole)]
    for number, samples in enumerate(log.rss.values(), 1):
        minutes = _per_minute(samples, whole)
        floors = [round(min(m), 1) for m in minutes]
        entry: dict[str, Any] = {"server": number, "floor_mb": floors}
        entry["peak_mb"] = [round(max(m), 1) for m in minutes]
        if len(floors) >= JUDGED_MINUTES:
            verdict, problems = _judge_memory(floors, actions[: len(floors)])
            entry.update(verdict)
            broken += [f"server {number} memory {problem}" for problem in problems]
        out.append(entry)
    return out, broken


def _load(log: Log, seconds: float, before: float) -> dict[str, Any]:
    """The 1-minute load average before the soak started and in each of its minutes (mean)."""
    minutes = [[v for t, v in log.load if int(t // 60) == m] for m in range(int(seconds // 60))]
    during = [round(statistics.mean(m), 2) for m in minutes if m]
    peak = max((v for _, v in log.load), default=0.0)
    return {"before": before, "per_minute": during, "max": peak}


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000 if ordered else 0.0


def _report(seconds: float, log: Log, checks: dict[str, Any], **more: Any) -> dict[str, Any]:
    total = sum(len(v) for v in log.latency.values())
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "requests": total,
        "per_second": round(total / seconds, 1),
        "status": dict(sorted(log.status.items())),
        "accepts": len(log.accepts),
        "errors": log.errors[:20],
        "error_count": len(log.errors),
        "actions": {
            a: {
                "count": len(v),
                "p50_ms": round(_pct(v, 50), 1),
                "p95_ms": round(_pct(v, 95), 1),
                "p99_ms": round(_pct(v, 99), 1),
            }
            for a, v in sorted(log.latency.items())
        },
        **more,
        **checks,
    }


def _markdown(r: dict[str, Any]) -> str:
    load = r["load"]
    lines = [
        "# Soak: mixed load against 2 servers on one PostgreSQL",
        "",
        f"Run {r['date']}, {r['seconds']} s (`SOAK_SECONDS`), {r['machine']}. Load and servers "
        "share the machine (loopback); written by `bench/soak.py` (`make soak`).",
        "",
        f"- {r['requests']} actions, {r['per_second']}/s (an action is 1 to 4 requests); "
        f"final status of each: {r['status']}",
        f"- {r['accepts']} codes accepted (each at most once across both servers); "
        f"{r['audit_validations']} validations audited; {r['tokens']} tokens and "
        f"{r['users']} users at the end; "
        f"{r['accepted_again_as_another_step']} replays accepted as the code of another step "
        "(the same 6 digits: right, and counted as that step's accept)",
        f"- request errors: {r['error_count']}; broken invariants: {len(r['broken'])}",
        f"- machine load (1-minute load average): {load['before']} before the soak started, "
        f"{min(load['per_minute'], default=0)} to {max(load['per_minute'], default=0)} "
        f"(minute means) during it, at most {load['max']}",
        "",
        *_memory_lines(r["memory"], load["per_minute"]),
        "",
        "Latencies depend on the machine's load, the memory verdict does not: the soak's own "
        "2 servers, 6 client threads and PostgreSQL share the cores with whatever else runs. "
        "A load above the core count means requests waited for a CPU.",
        "",
        "| action | requests | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for action, a in r["actions"].items():
        lines.append(f"| {action} | {a['count']} | {a['p50_ms']} | {a['p95_ms']} | {a['p99_ms']} |")
    lines += [
        "",
        "Invariants checked afterwards: no 5xx and no failed request; each code accepted "
        "at most once; every accept a client saw audited, none more, and under the token's "
        "last_step; every fail_count equal to its audit; every secret opens with a fresh "
        f"key ring; memory levelled off (runs of {JUDGED_MINUTES} minutes or more).",
    ]
    for line in r["broken"] + r["errors"]:
        lines.append(f"- BROKEN: {line}")
    return "\n".join(lines) + "\n"


def _memory_lines(memory: list[dict[str, Any]], load: list[float]) -> list[str]:
    """The RSS table (floor / peak of each minute, per server) and the verdicts."""
    lines = [
        "Server memory, each minute: the floor (lowest RSS of the minute's 60 samples) / the "
        "peak. A peak is the floor plus one to three web sign-ins' argon2 hashes (64 MiB each "
        "while it runs, given back after); the floor is what stays.",
        "",
        "| minute | " + " | ".join(f"server {m['server']} MB" for m in memory) + " | load |",
        "|---|" + "---|" * len(memory) + "---|",
    ]
    for i, minute_load in enumerate(load):
        cells = [
            f"{m['floor_mb'][i]} / {m['peak_mb'][i]}" if i < len(m["floor_mb"]) else "n/a"
            for m in memory
        ]
        lines.append(f"| {i + 1} | " + " | ".join(cells) + f" | {minute_load} |")
    lines.append("")
    for m in memory:
        if "levelled" not in m:
            lines.append(f"- server {m['server']}: not judged (under {JUDGED_MINUTES} minutes)")
            continue
        lines.append(
            f"- server {m['server']}: floor {m['baseline_mb']} MB in minute "
            f"{m['baseline_minute']} (the baseline: start of the second half), "
            f"{m['end_mb']} MB in the last; slope over the second half "
            f"{m['mb_per_1000_actions']} MB per 1000 actions (limit {SLOPE_LIMIT}; "
            f"{m['mb_per_min']} MB/min): "
            + ("levelled off" if m["levelled"] else "NOT levelled off")
        )
    return lines


def _soak(settings: Settings, setup: dict[str, Any], seconds: float) -> tuple[Log, float]:
    """Start the 2 servers, load them for ``seconds`` while sampling, stop them."""
    env = dict(os.environ, KEYFOB_KEY_FILE=str(settings.key_file), PYTHONUNBUFFERED="1")
    servers = [_start_server(settings.db, env) for _ in range(2)]
    log, stop = Log(), threading.Event()
    sampler = threading.Thread(target=_sample_memory, args=([p.pid for p, _ in servers], log, stop))
    started = log.started = time.monotonic()
    sampler.start()
    deadline = started + seconds
    urls = [u for _, u in servers]
    workers = [
        threading.Thread(target=Worker(urls, setup, log, i).run, args=(deadline,))
        for i in range(WORKERS)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=seconds + 120)
    elapsed = time.monotonic() - started
    stop.set()
    sampler.join()
    for proc, _ in servers:
        proc.terminate()
        proc.wait(timeout=30)
    return log, elapsed


def main() -> int:
    """Soak, check, write the figures. A database with a broken invariant (memory aside) is
    kept for the post-mortem: its name is printed (the key file is not kept)."""
    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    load_before = _load_average()  # others' work only: nothing of the soak runs yet
    database = TempDatabase("keyfob_soak")
    keep = False
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(db=database.url, key_file=Path(tmp) / "keyfob.key")
        try:
            setup = _setup(settings)
            log, elapsed = _soak(settings, setup, seconds)
            checks = _invariants(settings, setup, log)
            keep = bool(checks["broken"])
            memory, grown = _memory(log, elapsed)
            checks["broken"] += grown
            load = _load(log, elapsed, load_before)
            result = _report(elapsed, log, checks, memory=memory, load=load)
        finally:
            if keep:
                print(f"kept the database for a post-mortem: {database.url}", file=sys.stderr)
            else:
                database.drop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "soak.md").write_text(_markdown(result))
    print(_markdown(result))
    return 1 if result["broken"] or result["error_count"] else 0


if __name__ == "__main__":
    sys.exit(main())
