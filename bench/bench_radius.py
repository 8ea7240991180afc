"""RADIUS benchmark (issue 11): Access-Request/Access-Accept pairs per second on loopback.

``keyfob radius`` runs as its own process (one, then two on two ports, as behind a load
balancer), on SQLite and on PostgreSQL; this script is the NAS. The load is bounded: a window
of at most WINDOW requests outstanding, each user asked once with their current code (so every
answer is a real Accept, through the whole engine: M-A check, unhiding, SELECT, HMACs,
compare-and-set, audit INSERT, signed reply), USERS requests per run, 60 s at most. Packets are
built before the clock starts. Results: ``bench/results/radius.json`` and ``radius.md``, beside
the REST figure of ``server.md`` (wrk, 2 uvicorn workers) for comparison.
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
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pyrad.packet import AccessRequest, AuthPacket

from bench_server import PG_URL, populate
from keyfob.otp import totp
from keyfob.server.context import open_context
from keyfob.server.radius import clients
from keyfob.server.radius.packets import dictionary
from keyfob.server.settings import Settings

RESULTS = Path(__file__).parent / "results"
SECRET = "bench-radius-secret-0123456789"
USERS = int(os.environ.get("KEYFOB_BENCH_RADIUS_USERS", "6000"))
WINDOW = 32  # requests outstanding at once: a busy VPN concentrator, not a flood
KEYFOB = [sys.executable, "-c", "from keyfob.cli.main import run; run()"]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def packet(user: str, password: str, ident: int) -> bytes:
    p = AuthPacket(code=AccessRequest, id=ident, secret=SECRET.encode(), dict=dictionary())
    p["User-Name"] = user
    p[2] = [p.PwCrypt(password)]
    p.add_message_authenticator()
    return bytes(p.RequestPacket())


def listen(port: int) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(port)]


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    probe = packet("probe@bench.example", "000000", 0)
    deadline = time.time() + 30
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        while time.time() < deadline:
            if proc.poll() is not None:
                raise SystemExit("keyfob radius exited at start")
            s.sendto(probe, ("127.0.0.1", port))
            try:
                s.recv(4096)
                return
            except TimeoutError:
                continue
    raise SystemExit("keyfob radius did not answer in 30 s")


def fresh_step() -> float:
    """Now, unless a step boundary is near: a run must not straddle two codes."""
    now = time.time()
    if now % 30 > 20:
        time.sleep(30.5 - now % 30)
    return time.time()


def load(ports: list[int], packets: list[bytes]) -> dict[str, Any]:
    """Send every packet with at most WINDOW outstanding, spread over ``ports``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.settimeout(3.0)
    pending: dict[int, float] = {}
    latencies: list[float] = []
    answers = {2: 0, 3: 0, 11: 0}
    sent, lost = 0, 0
    started = time.perf_counter()
    while sent < len(packets) or pending:
        while len(pending) < WINDOW and sent < len(packets):
            data = packets[sent]
            pending[data[1]] = time.perf_counter()
            sock.sendto(data, ("127.0.0.1", ports[sent % len(ports)]))
            sent += 1
        try:
            reply = sock.recv(4096)
        except TimeoutError:
            lost = len(pending)
            break
        t = pending.pop(reply[1], None)
        if t is not None:
            latencies.append(time.perf_counter() - t)
            answers[reply[0]] = answers.get(reply[0], 0) + 1
        if time.perf_counter() - started > 60:
            lost = len(pending) + len(packets) - sent
            break
    elapsed = time.perf_counter() - started - (3.0 if lost else 0.0)
    sock.close()
    latencies.sort()
    return {
        "requests": sent,
        "pairs_per_s": round(answers[2] / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 3),
        "accepted": answers[2],
        "rejected": answers[3],
        "lost": lost,
    }


def run(db: str, key_file: Path, processes: int) -> dict[str, Any]:
    ctx = open_context(Settings(db=db, key_file=key_file))
    users = populate(ctx, USERS, prefix=f"r{uuid.uuid4().hex[:6]}-")
    if not clients.list_clients(ctx):
        clients.add_client(ctx, "bench", "127.0.0.1", secret=SECRET)
    ctx.engine.dispose()
    ports = [free_udp_port() for _ in range(processes)]
    procs = [
        subprocess.Popen(
            [
                *KEYFOB,
                "radius",
                "--db",
                db,
                "--key-file",
                str(key_file),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        for port, proc in zip(ports, procs, strict=True):
            wait_ready(port, proc)
        now = fresh_step()
        packets = [
            packet(name, totp(secrets[0], now), i % 256) for i, (name, secrets) in enumerate(users)
        ]
        return load(ports, packets)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


def pg_database() -> str | None:
    try:
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        name = f"keyfob_bench_radius_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:
        print(f"PostgreSQL skipped: {type(exc).__name__}", file=sys.stderr)
        return None
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        backends = [("sqlite", f"sqlite:///{tmp}/bench.db")]
        pg = pg_database()
        if pg:
            backends.append(("postgresql", pg))
        try:
            for backend, db in backends:
                for processes in (1, 2):
                    result = run(db, Path(tmp) / f"{backend}.key", processes)
                    rows.append({"backend": backend, "processes": processes, **result})
                    print(rows[-1], file=sys.stderr)
        finally:
            if pg:
                drop_pg(pg)
    write(rows)


def write(rows: list[dict[str, Any]]) -> None:
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "users": USERS,
        "window": WINDOW,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "radius.json").write_text(json.dumps({**meta, "runs": rows}, indent=2) + "\n")
    lines = [
        "# RADIUS: Access-Request/Access-Accept pairs per second (bench/bench_radius.py)",
        "",
        f"{meta['date']}, {meta['machine']}; `keyfob radius` process(es) and the load "
        f"generator on one machine, loopback; {USERS} users each asked once with their current "
        f"code, at most {WINDOW} requests outstanding, Message-Authenticator in every request "
        "and reply.",
        "",
        "| backend | processes | pairs/s | p50 ms | p99 ms | accepted | rejected | lost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['backend']} | {r['processes']} | {r['pairs_per_s']} | {r['p50_ms']} | "
        f"{r['p99_ms']} | {r['accepted']} | {r['rejected']} | {r['lost']} |"
        for r in rows
    ]
    lines += ["", *rest_comparison(rows)]
    (RESULTS / "radius.md").write_text("\n".join(lines) + "\n")


def rest_comparison(rows: list[dict[str, Any]]) -> list[str]:
    """The REST figure of server.json beside the best RADIUS run of each backend."""
    try:
        http = json.loads((RESULTS / "server.json").read_text())["http"]
    except (OSError, KeyError, ValueError):
        return ["REST for comparison: run bench/bench_server.py (server.md)."]
    out = ["| backend | REST validate req/s (server.md) | best RADIUS pairs/s | ratio |"]
    out.append("|---|---:|---:|---:|")
    for h in http:
        best = max((r["pairs_per_s"] for r in rows if r["backend"] == h["backend"]), default=0)
        ratio = round(best / h["per_second"], 2) if h["per_second"] else 0
        out.append(f"| {h['backend']} | {h['per_second']} | {best} | {ratio} |")
    return out


if __name__ == "__main__":
    main()
