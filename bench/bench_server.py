"""Server benchmarks (issue 3): validation over HTTP and in process, store-size independence,
and bulk import. Results: ``bench/results/server.json`` and ``server.md``.

Every load here is bounded in count and time and stays on 127.0.0.1. HTTP load comes from wrk
(Debian package ``wrk``) on the same 2-core machine as the server; every request validates a
different user with that user's current code, so every answer is a real accept.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from keyfob.otp import totp
from keyfob.otp.verify import TokenState
from keyfob.server import accounts, inventory
from keyfob.server.context import ServerContext, open_context
from keyfob.server.settings import Settings
from keyfob.server.store import repo
from keyfob.server.store.records import state_values
from keyfob.server.validation import validate

RESULTS = Path(__file__).parent / "results"
LUA = Path(__file__).parent / "validate.lua"
PG_URL = os.environ.get(
    "KEYFOB_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def populate(
    ctx: ServerContext, users: int, per_user: int = 1, inventory_only: int = 0, prefix: str = "u"
) -> list[tuple[str, list[bytes]]]:
    """Users with active TOTP tokens (and unassigned inventory tokens), inserted in bulk."""
    now = datetime.now(UTC)
    out: list[tuple[str, list[bytes]]] = []
    user_rows, token_rows = [], []
    for i in range(users):
        uid = repo.new_id()
        name = f"{prefix}{i}@bench.example"
        user_rows.append(_user_row(uid, name, now))
        secrets_ = []
        for _ in range(per_user):
            secret = os.urandom(20)
            secrets_.append(secret)
            token_rows.append(_token_row(ctx, secret, uid, now))
        out.append((name, secrets_))
    for _ in range(inventory_only):
        token_rows.append(_token_row(ctx, os.urandom(20), None, now))
    from keyfob.server.store.schema import tokens
    from keyfob.server.store.schema import users as users_t

    with ctx.engine.begin() as conn:
        for i in range(0, len(user_rows), 5000):
            conn.execute(users_t.insert(), user_rows[i : i + 5000])
        for i in range(0, len(token_rows), 5000):
            conn.execute(tokens.insert(), token_rows[i : i + 5000])
    return out


def _user_row(uid: str, name: str, now: datetime) -> dict:
    return {
        "id": uid,
        "username": name,
        "username_key": name,
        "display_name": "",
        "password_hash": None,
        "must_change_password": False,
        "role": "user",
        "disabled": False,
        "created_at": now,
    }


def _token_row(ctx: ServerContext, secret: bytes, owner: str | None, now: datetime) -> dict:
    tid = repo.new_id()
    return {
        "id": tid,
        "serial": tid[:16],
        "kind": "classic",
        "type": "totp",
        "algorithm": "SHA1",
        "digits": 6,
        "period": 30,
        "secret_enc": ctx.ring.seal(secret, tid),
        "owner_id": owner,
        "label": "",
        "state": "active",
        **state_values(TokenState()),
        "version": 0,
        "imported_drift": 0,
        "manufacturer": None,
        "model": None,
        "source": "bench",
        "created_at": now,
        "activated_at": now,
        "last_used_at": None,
        "expires_at": None,
    }


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_argv(db: str, port: int, *options: str) -> list[str]:
    """``keyfob serve`` of this Python on ``db`` and ``port`` with 2 workers, warnings only
    (bench_compare.py serves the same way); ``options`` go after ``--db``."""
    return [
        sys.executable,
        "-c",
        "from keyfob.cli.main import run; run()",
        "serve",
        "--db",
        db,
        *options,
        "--port",
        str(port),
        "--workers",
        "2",
        "--log-level",
        "warning",
    ]


def wrk_argv(url: str, connections: int, seconds: int, threads: int) -> list[str]:
    """wrk's command line (bench_compare.py runs the same): ``threads`` threads holding
    ``connections`` connections for ``seconds`` s, 10 s timeout, through bench/validate.lua."""
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
    ]


def _fresh_pg(name: str) -> str:
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


def _wrk(
    url: str,
    key: str,
    users: list[tuple[str, list[bytes]]],
    seconds: int,
    connections: int,
    threads: int = 2,
) -> dict[str, Any]:
    """Drive the server with wrk (C, low overhead) through bench/validate.lua."""
    now = time.time()
    if now % 30 > 5:  # start at the beginning of a step: every code stays valid for the run
        time.sleep(30 - now % 30 + 0.2)
    step_time = time.time()
    bodies = Path(tempfile.mkdtemp(prefix="keyfob-wrk-")) / "bodies.jsonl"
    bodies.write_text(
        "".join(
            json.dumps({"username": name, "code": totp(secrets_[0], step_time)}) + "\n"
            for name, secrets_ in users
        )
    )
    env = dict(
        os.environ,
        KEYFOB_BENCH_BODIES=str(bodies),
        KEYFOB_BENCH_KEY=key,
        KEYFOB_BENCH_THREADS=str(threads),
    )
    out = subprocess.run(
        wrk_argv(url, connections, seconds, threads),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("KEYFOB "))
    data = json.loads(line.removeprefix("KEYFOB "))
    data["per_second"] = round(data["requests"] / data["seconds"], 1)
    full = next((ln for ln in out.splitlines() if ln.startswith("BENCH ")), None)
    if full:  # the script's own count of accepts and refusals, read from every answer
        counted = json.loads(full.removeprefix("BENCH "))
        data.update(accepts=counted["accepts"], rejects=counted["rejects"])
    bodies.unlink()
    return data


def http_validate(
    backend: str, seconds: int = 15, connections: int = 16, users: int = 60_000
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="keyfob-bench-"))
    db = f"sqlite:///{tmp / 'bench.db'}" if backend == "sqlite" else _fresh_pg("keyfob_bench")
    settings = Settings(db=db, key_file=tmp / "bench.key")
    ctx = open_context(settings)
    population = populate(ctx, users)
    _, key = accounts.create_api_key(ctx, "bench", "validate")
    port = free_port()
    env = dict(os.environ, KEYFOB_KEY_FILE=str(tmp / "bench.key"))
    proc = subprocess.Popen(
        serve_argv(db, port),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        _wrk(url, key, population[:8000], 3, connections)  # warm-up
        count = sa.text(
            "SELECT outcome, count(*) FROM audit WHERE action = 'validate' "
            "AND id > :first GROUP BY outcome"
        )
        with ctx.engine.connect() as conn:
            first = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM audit")).scalar_one()
        result = _wrk(url, key, population[8000:], seconds, connections)
        with ctx.engine.connect() as conn:
            outcomes = dict(conn.execute(count, {"first": first}).all())
        accepted, rejected = outcomes.get("success", 0), outcomes.get("failure", 0)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        ctx.engine.dispose()
    return {
        "backend": backend,
        "workers": 2,
        "concurrency": connections,
        "accept": accepted,
        "reject": rejected,
        "error": result["non_2xx"] + result["socket_errors"],
        **result,
    }


def in_process(per_user: int, store_extra: int = 0, samples: int = 2000) -> dict[str, Any]:
    """Accepting validations through the service layer on SQLite (no HTTP)."""
    tmp = Path(tempfile.mkdtemp(prefix="keyfob-bench-"))
    ctx = open_context(Settings(db=f"sqlite:///{tmp / 'b.db'}", key_file=tmp / "b.key"))
    users = populate(ctx, samples, per_user=per_user, inventory_only=store_extra)
    with ctx.engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM tokens")).scalar_one()
    timings = []
    accepted = 0
    for name, secrets_ in users:
        code = totp(secrets_[-1], time.time())  # the last token: every token is checked
        t0 = time.perf_counter()
        accepted += validate(ctx, name, code).accepted
        timings.append(time.perf_counter() - t0)
    ctx.engine.dispose()
    return {
        "tokens_per_user": per_user,
        "tokens_in_store": total,
        "checks": len(timings),
        "accepted": accepted,
        "mean_ms": round(statistics.mean(timings) * 1000, 3),
        "p50_ms": round(percentile(timings, 50) * 1000, 3),
        "p99_ms": round(percentile(timings, 99) * 1000, 3),
    }


def pskc_document(count: int) -> bytes:
    """A plain-value PSKC file of ``count`` TOTP keys (serials B00000000…), random seeds."""
    import base64

    keys = "".join(
        f"<KeyPackage><DeviceInfo><Manufacturer>Bench</Manufacturer><SerialNo>B{i:08d}"
        f'</SerialNo></DeviceInfo><Key Id="B{i:08d}" '
        f'Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp"><AlgorithmParameters>'
        f'<ResponseFormat Length="6" Encoding="DECIMAL"/></AlgorithmParameters><Data><Secret>'
        f"<PlainValue>{base64.b64encode(os.urandom(20)).decode()}</PlainValue></Secret>"
        f"<TimeInterval><PlainValue>30</PlainValue></TimeInterval></Data></Key></KeyPackage>\n"
        for i in range(count)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<KeyContainer Version="1.0" '
        f'xmlns="urn:ietf:params:xml:ns:keyprov:pskc">\n{keys}</KeyContainer>\n'
    ).encode()


def pskc_import(count: int = 100_000) -> dict[str, Any]:
    data = pskc_document(count)
    tmp = Path(tempfile.mkdtemp(prefix="keyfob-bench-"))
    ctx = open_context(Settings(db=f"sqlite:///{tmp / 'i.db'}", key_file=tmp / "i.key"))
    t0 = time.perf_counter()
    report = inventory.import_seeds(ctx, data, source="bench.pskc", actor="bench")
    elapsed = time.perf_counter() - t0
    ctx.engine.dispose()
    return {
        "tokens": count,
        "file_mb": round(len(data) / 2**20, 1),
        "ok": report.ok,
        "seconds": round(elapsed, 1),
        "tokens_per_second": round(count / elapsed),
    }


def main() -> None:
    results: dict[str, Any] = {
        "meta": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    }
    print("HTTP validate (uvicorn, 2 workers)…")
    results["http"] = [http_validate("sqlite"), http_validate("postgresql")]
    for row in results["http"]:
        print(f"  {row}")
    print("in-process validate…")
    results["in_process"] = [in_process(1), in_process(5)]
    small = in_process(1, store_extra=0, samples=1000)  # 1 000 tokens in the store
    large = in_process(1, store_extra=199_000, samples=1000)
    results["store_size"] = {
        "small": small,
        "large": large,
        "ratio_p50": round(large["p50_ms"] / small["p50_ms"], 3),
    }
    for row in results["in_process"]:
        print(f"  {row}")
    print(f"  store size: {results['store_size']}")
    print("PSKC import…")
    results["import"] = pskc_import()
    print(f"  {results['import']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "server.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "| HTTP validate | req/s | p50 ms | p99 ms | accepted | rejected | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['backend']}, {r['workers']} workers, {r['concurrency']} clients | "
        f"{r['per_second']} | {r['p50_ms']} | {r['p99_ms']} | {r['accept']} | "
        f"{r['reject']} | {r['error']} |"
        for r in results["http"]
    ]
    lines += [
        "",
        "| in-process validate (SQLite) | tokens in store | mean ms | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    rows = [*results["in_process"], small, large]
    lines += [
        f"| {r['tokens_per_user']} token(s) per user | {r['tokens_in_store']} | "
        f"{r['mean_ms']} | {r['p50_ms']} | {r['p99_ms']} |"
        for r in rows
    ]
    imp = results["import"]
    lines += [
        "",
        f"Store-size ratio (p50, 200 000 vs ~1 000 tokens): {results['store_size']['ratio_p50']}",
        f"PSKC import: {imp['tokens']} tokens ({imp['file_mb']} MB) in {imp['seconds']} s "
        f"({imp['tokens_per_second']} tokens/s)",
    ]
    (RESULTS / "server.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
