"""Soak (issue 17): ``SOAK_SECONDS`` (default 600) of mixed load against 2 ``keyfob serve``
processes on one PostgreSQL, then every invariant. Figures: ``bench/results/soak.md`` and
``soak.json``. Run with ``make soak``; not part of ``make test``.

The load, from a few client threads on loopback, each request sent to either server at random:
validations with the current code (accepted once per step — the other server must refuse the
same code), replays of accepted codes, wrong codes for a separate set of users (who lock out),
enrolments, seed-file imports, admin reads and web sign-ins. Afterwards:

- no answer was a 5xx and no request failed;
- each code was accepted at most once across both servers, and each accept a client saw is in
  the audit (no more, no less) and under the token's ``last_step``;
- every token's ``fail_count`` is what its audit rows add up to;
- every stored secret opens with a freshly started key ring;
- the servers' memory is flat: resident size at the end within 25 % (and 40 MB) of the
  size after the first minute's warm-up.

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
    double: list[tuple[str, int]] = field(default_factory=list)
    rss: dict[int, list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))

    def record(self, action: str, seconds: float, status: int) -> None:
        with self.lock:
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
    argv = [*KEYFOB, "serve", "--db", db, "--port", str(port), "--log-level", "warning"]
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
                    self.log.double.append(key)
                self.log.accepts[key] = code
        return self._expect(resp, 200)

    def replay(self, client: httpx.Client) -> int:
        with self.log.lock:
            if not self.log.accepts:
                return 200
            (name, step), code = self.rng.choice(list(self.log.accepts.items()))
        resp = client.post("/api/v1/validate", json={"username": name, "code": code})
        if resp.status_code == 200 and resp.json()["result"] == "accept":
            with self.log.lock:
                self.log.double.append((name, step))
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
        return self._expect(client.post(path, json={"code": totp.at(time.time() - 30)}), 200)

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


def _sample_memory(pids: list[int], log: Log, stop: threading.Event) -> None:
    start = time.monotonic()
    while not stop.wait(5):
        for pid in pids:
            log.rss[pid].append((time.monotonic() - start, _rss_kb(pid)))


# --- afterwards ---------------------------------------------------------------------------------


def _invariants(settings: Settings, log: Log) -> dict[str, Any]:
    """The database against what the clients saw; every broken invariant is a line."""
    ctx = open_context(settings)
    with ctx.engine.connect() as conn:
        rows = validation_audit(conn)
        toks = conn.execute(
            sa.select(users.c.username, tokens.c.id, tokens.c.secret_enc)
            .add_columns(tokens.c.last_step, tokens.c.fail_count, tokens.c.owner_id)
            .outerjoin(users, users.c.id == tokens.c.owner_id)
        ).all()
    broken: list[str] = [f"accepted twice: {k}" for k in log.double]
    for t in toks:
        ctx.ring.open(bytes(t.secret_enc), t.id)  # raises if any secret does not open
    audited = Counter(r.target_user for r in rows if r.outcome == "success")
    seen = Counter(name for name, _ in log.accepts)
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
    return {"broken": broken, "tokens": len(toks), "audit_validations": len(rows)}


def _memory(log: Log, seconds: float) -> tuple[list[dict[str, Any]], list[str]]:
    """RSS after the warm-up (the first minute) against the end; judged on runs of 4 minutes
    or more only (a shorter run is still warming caches and pools)."""
    out, broken = [], []
    for samples in log.rss.values():
        if len(samples) < 4:
            continue
        warm = [kb for t, kb in samples if t >= min(60.0, samples[-1][0] / 4)]
        first, last = warm[: max(1, len(warm) // 5)], warm[-max(1, len(warm) // 5) :]
        start_mb, end_mb = statistics.median(first) / 1024, statistics.median(last) / 1024
        out.append({"start_mb": round(start_mb, 1), "end_mb": round(end_mb, 1)})
        if seconds >= 240 and end_mb > start_mb * 1.25 and end_mb - start_mb > 40:
            broken.append(f"server memory grew from {start_mb:.0f} MB to {end_mb:.0f} MB")
    return out, broken


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000 if ordered else 0.0


def _report(
    seconds: float, log: Log, checks: dict[str, Any], memory: list[dict[str, Any]]
) -> dict[str, Any]:
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
        "memory": memory,
        **checks,
    }


def _markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Soak: mixed load against 2 servers on one PostgreSQL",
        "",
        f"Run {r['date']}, {r['seconds']} s (`SOAK_SECONDS`), {r['machine']}. Load and servers "
        "share the machine (loopback); written by `bench/soak.py` (`make soak`).",
        "",
        f"- {r['requests']} actions, {r['per_second']}/s (an action is 1 to 3 requests); "
        f"final status of each: {r['status']}",
        f"- {r['accepts']} codes accepted (each at most once across both servers); "
        f"{r['audit_validations']} validations audited; {r['tokens']} tokens at the end",
        f"- request errors: {r['error_count']}; broken invariants: {len(r['broken'])}",
        "- server memory (RSS after warm-up → end): "
        + ", ".join(f"{m['start_mb']} → {m['end_mb']} MB" for m in r["memory"]),
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
        "key ring; memory within 25 % / 40 MB of the warmed-up size (judged on runs of 4 minutes "
        "or more).",
    ]
    for line in r["broken"] + r["errors"]:
        lines.append(f"- BROKEN: {line}")
    return "\n".join(lines) + "\n"


def main() -> int:
    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    database = TempDatabase("keyfob_soak")
    db = database.url
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(db=db, key_file=Path(tmp) / "keyfob.key")
        env = dict(os.environ, KEYFOB_KEY_FILE=str(settings.key_file), PYTHONUNBUFFERED="1")
        try:
            setup = _setup(settings)
            servers = [_start_server(db, env) for _ in range(2)]
            log, stop = Log(), threading.Event()
            sampler = threading.Thread(
                target=_sample_memory, args=([p.pid for p, _ in servers], log, stop)
            )
            sampler.start()
            started = time.monotonic()
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
            checks = _invariants(settings, log)
            memory, grown = _memory(log, elapsed)
            checks["broken"] += grown
            result = _report(elapsed, log, checks, memory)
        finally:
            database.drop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "soak.md").write_text(_markdown(result))
    print(_markdown(result))
    return 1 if result["broken"] or result["error_count"] else 0


if __name__ == "__main__":
    sys.exit(main())
