"""RADIUS benchmark (issue 11): Access-Request/Access-Accept pairs per second on loopback,
driven by FreeRADIUS's ``radclient``.

Why radclient: the REST figure comes from wrk, a load generator written in C, on the same
2-core machine, where whatever the client burns is taken from the server. This script's NAS
used to be written in Python, so "RADIUS vs REST" compared two kinds of client as much as two
front ends (issue 16: a ratio is only fair with the same kind of client in one run). radclient
is C like wrk, and it is the NAS the tests in tests/radius/ use.

``keyfob radius`` runs as its own process (one, then two on two ports, as behind a load
balancer: every other request carries ``Packet-Dst-Port`` of the second), on SQLite and on
PostgreSQL. A row: USERS fresh users (made in bulk as ``bench_server.populate`` does), one
Access-Request each with that user's current code (PAP, NAS-IP-Address,
``Message-Authenticator = 0x00`` so that radclient computes it), sent by ``radclient -f FILE
-p N -r 1 -t 5 -s`` with N = 8 and 64 outstanding at most (wrk's 8 and 64 connections in
bench_compare.py). Every answer goes through the whole engine: M-A check, PAP unhiding, SELECT,
HMACs, compare-and-set, audit INSERT, signed reply. Only Access-Accepts count (radclient's own
``Received Access-Accept`` lines, checked against its ``-s`` summary).

Per row: wall time from radclient's start to its exit, pairs/s, the CPU per answer of the keyfob
processes, of PostgreSQL's backends for the bench database and of radclient (its rusage), the
cores other processes took meanwhile and the load average before and after. radclient prints no
time per request, so there is no latency column: p50/p99 exist for the REST rows only.

radclient busy-polls (its sleep time is the whole seconds since a request was sent, so 0 for the
first second: ``pselect6`` with a zero timeout, tens of times per pair under strace), so its CPU
is a share of a core for the whole run rather than a cost per request as wrk's is. The table
shows it (radclient cores): on a quiet 2-core machine it can take up to a whole core that two
keyfob processes would otherwise use, and the comparison with wrk must be read with it.

Results: ``bench/results/radius.json`` and ``radius.md``. Run alone, the table is set beside the
REST figure of the last ``make bench`` (``latest.json``, another run: said so); bench_compare.py
cuts that section off and sets the REST rows of its own run beside these.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pyrad.packet import AccessRequest, AuthPacket

from bench_compare import RADIUS_OTHER_RUN, cpu_delta, cpu_of, machine_busy
from bench_server import PG_URL, populate
from keyfob.otp import totp
from keyfob.server.context import open_context
from keyfob.server.radius import clients
from keyfob.server.radius.packets import dictionary
from keyfob.server.settings import Settings

RESULTS = Path(__file__).parent / "results"
SECRET = "bench-radius-secret-0123456789"
USERS = int(os.environ.get("KEYFOB_BENCH_RADIUS_USERS", "6000"))
# radclient -p: requests outstanding at most, as wrk's connections in bench_compare.py
PARALLEL = tuple(int(p) for p in os.environ.get("KEYFOB_BENCH_RADIUS_PARALLEL", "8,64").split(","))
# keyfob radius processes per row set; make bench asks for 2 only, as REST runs 2 workers
PROCESSES = tuple(int(p) for p in os.environ.get("KEYFOB_BENCH_RADIUS_PROCESSES", "1,2").split(","))
WARM_UP = 500  # users asked before the rows of a server start: imports, caches, connections
RUN_LIMIT = 120.0  # seconds one radclient run may take before it is stopped (by its PID)
KEYFOB = [sys.executable, "-c", "from keyfob.cli.main import run; run()"]
_RECEIVED = re.compile(rb"^Received (Access-\w+) Id", re.MULTILINE)
_SUMMARY = re.compile(rb"^\s+(Accepted|Rejected|Lost)\s+:\s+(\d+)", re.MULTILINE)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def probe_packet() -> bytes:
    """An Access-Request for a user who does not exist: any answer says the server is up."""
    p = AuthPacket(code=AccessRequest, id=0, secret=SECRET.encode(), dict=dictionary())
    p["User-Name"] = "probe@bench.example"
    p[2] = [p.PwCrypt("000000")]
    p.add_message_authenticator()
    return bytes(p.RequestPacket())


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    probe = probe_packet()
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


def request_file(path: Path, users: list[tuple[str, list[bytes]]], ports: list[int]) -> None:
    """radclient's input: one Access-Request per user, a blank line between them. The codes
    are those of now: with the default window of one step either side, a row that crosses a
    step boundary is still all valid codes (rows last seconds, not 30)."""
    now = time.time()
    blocks = []
    for i, (name, secrets) in enumerate(users):
        lines = [
            f'User-Name = "{name}"',
            f'User-Password = "{totp(secrets[0], now)}"',
            "NAS-IP-Address = 127.0.0.1",
            "Message-Authenticator = 0x00",
        ]
        if len(ports) > 1:
            lines.append(f"Packet-Dst-Port = {ports[i % len(ports)]}")
        blocks.append("\n".join(lines))
    path.write_text("\n\n".join(blocks) + "\n")


def radclient(path: Path, port: int, parallel: int) -> dict[str, Any]:
    """One bounded radclient run: the answers it counted, its wall time and its own CPU."""
    argv = [shutil.which("radclient") or "radclient", "-f", str(path), "-p", str(parallel)]
    argv += ["-r", "1", "-t", "5", "-s", f"127.0.0.1:{port}", "auth", SECRET]
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = wait_bounded(proc)
        wall = time.perf_counter() - started
        out.seek(0)
        text = out.read()
    kinds = [m.group(1) for m in _RECEIVED.finditer(text)]
    summary = {k.decode(): int(v) for k, v in _SUMMARY.findall(text)}
    accepted = kinds.count(b"Access-Accept")
    if summary.get("Accepted") != accepted:
        raise RuntimeError(f"radclient's summary {summary} disagrees with its lines ({accepted})")
    return {
        "seconds": wall,
        "accepted": accepted,
        "rejected": kinds.count(b"Access-Reject"),
        "lost": summary.get("Lost", 0),
        "radclient_cpu": usage.ru_utime + usage.ru_stime,
        "exit": os.waitstatus_to_exitcode(status),
        "mean_outstanding": mean_outstanding(text),
    }


def wait_bounded(proc: subprocess.Popen[bytes]) -> tuple[int, int, Any]:
    """``os.wait4`` (the rusage is radclient's CPU), stopping it by its PID past RUN_LIMIT."""
    deadline = time.time() + RUN_LIMIT
    while time.time() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return pid, status, usage
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"radclient did not finish in {RUN_LIMIT:.0f} s")


def mean_outstanding(text: bytes) -> float:
    """Requests outstanding, averaged over radclient's send and receive lines: ``-p N`` is a
    ceiling, and radclient refills its window in bursts, so this says how much load it kept."""
    sent = received = total = events = 0
    for line in text.splitlines():
        if line.startswith(b"Sent "):
            sent += 1
        elif line.startswith(b"Received "):
            received += 1
        else:
            continue
        total += sent - received
        events += 1
    return round(total / events, 1) if events else 0.0


def measure(
    pids: list[int], db_pids: Callable[[], list[int]], path: Path, ports: list[int], parallel: int
) -> dict[str, Any]:
    """One radclient run with the CPU every party took meanwhile, as bench_compare.wrk does."""
    load_before = os.getloadavg()[0]
    db0 = db_pids()
    s0, b0, m0, me0 = cpu_of(pids), cpu_of(db0), machine_busy(), sum(os.times()[:2])
    run = radclient(path, ports[0], parallel)
    s1, b1 = cpu_of(pids), cpu_of(db_pids() + db0)
    m1, me1 = machine_busy(), sum(os.times()[:2])
    server, db = cpu_delta(s0, s1), cpu_delta(b0, b1)
    answers = max(1, run["accepted"] + run["rejected"])
    ours = server + db + run["radclient_cpu"] + (me1 - me0)
    return {
        "parallel": parallel,
        "requests": USERS,
        "seconds": round(run["seconds"], 3),
        "pairs_per_s": round(run["accepted"] / run["seconds"], 1),
        "accepted": run["accepted"],
        "rejected": run["rejected"],
        "lost": run["lost"],
        "mean_outstanding": run["mean_outstanding"],
        "server_cpu_ms": round(server * 1000 / answers, 3),
        "db_cpu_ms": round(db * 1000 / answers, 3) if db0 or b1 else None,
        "radclient_cpu_ms": round(run["radclient_cpu"] * 1000 / answers, 3),
        "server_cores": round(server / run["seconds"], 2),
        "radclient_cores": round(run["radclient_cpu"] / run["seconds"], 2),
        "other_cores": round(max(0.0, (m1 - m0) - ours) / run["seconds"], 2),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def start_servers(db: str, key_file: Path, processes: int) -> tuple[list[int], list[Any]]:
    ports = [free_udp_port() for _ in range(processes)]
    argv = [*KEYFOB, "radius", "--db", db, "--key-file", str(key_file), "--host", "127.0.0.1"]
    procs = [
        subprocess.Popen(
            [*argv, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for port in ports
    ]
    return ports, procs


def run(db: str, key_file: Path, processes: int, work: Path) -> list[dict[str, Any]]:
    """Rows for one backend and process count: a warm-up, then one row per parallelism, each
    with users of its own (a code is accepted once)."""
    ctx = open_context(Settings(db=db, key_file=key_file))
    batches = [populate(ctx, WARM_UP, prefix=f"w{uuid.uuid4().hex[:6]}-")]
    batches += [populate(ctx, USERS, prefix=f"r{uuid.uuid4().hex[:6]}-") for _ in PARALLEL]
    if not clients.list_clients(ctx):
        clients.add_client(ctx, "bench", "127.0.0.1", secret=SECRET)
    ctx.engine.dispose()
    ports, procs = start_servers(db, key_file, processes)
    db_pids = pg_backends(db) if db.startswith("postgresql") else list
    rows = []
    try:
        for port, proc in zip(ports, procs, strict=True):
            wait_ready(port, proc)
        request_file(work / "warm.txt", batches[0], ports)
        radclient(work / "warm.txt", ports[0], 8)
        for parallel, users in zip(PARALLEL, batches[1:], strict=True):
            request_file(work / "requests.txt", users, ports)
            rows.append(
                measure([p.pid for p in procs], db_pids, work / "requests.txt", ports, parallel)
            )
            rows[-1]["processes"] = processes
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
    return rows


def pg_backends(db: str) -> Callable[[], list[int]]:
    """The PIDs of PostgreSQL's backends serving ``db`` (the keyfob processes' connections)."""
    name = db.rsplit("/", 1)[1]

    def pids() -> list[int]:
        engine = sa.create_engine(PG_URL)
        try:
            with engine.connect() as conn:
                found = conn.execute(
                    sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": name}
                ).scalars()
                return [p for p in found if Path(f"/proc/{p}").exists()]
        finally:
            engine.dispose()

    return pids


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
    if not shutil.which("radclient"):
        raise SystemExit("radclient is not installed: apt-get install freeradius-utils")
    load_before = os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    wanted = os.environ.get("KEYFOB_BENCH_RADIUS_BACKENDS", "sqlite,postgresql").split(",")
    with tempfile.TemporaryDirectory() as tmp:
        backends = [("sqlite", f"sqlite:///{tmp}/bench.db")] if "sqlite" in wanted else []
        pg = pg_database() if "postgresql" in wanted else None
        if pg:
            backends.append(("postgresql", pg))
        try:
            for backend, db in backends:
                for processes in PROCESSES:
                    for row in run(db, Path(tmp) / f"{backend}.key", processes, Path(tmp)):
                        rows.append({"backend": backend, **row})
                        print(rows[-1], file=sys.stderr)
        finally:
            if pg:
                drop_pg(pg)
    write(rows, load_before)


def write(rows: list[dict[str, Any]], load_before: float) -> None:
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "radclient": radclient_version(),
        "users": USERS,
        "parallel": list(PARALLEL),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }
    meta["shared"] = shared_machine(meta, rows)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "radius.json").write_text(json.dumps({**meta, "runs": rows}, indent=2) + "\n")
    lines = [*table(meta, rows), "", *rest_comparison(rows)]
    (RESULTS / "radius.md").write_text("\n".join(lines) + "\n")


def shared_machine(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Why these are not the figures, or "": on 2 cores, what other processes take is taken
    from the servers and the load generator (the same test as bench_compare.py's). The load
    average counts only before the run, and only when this script runs alone: during the run
    it is this bench's own load, and inside ``make bench`` the parts before this one made it
    (bench_compare.py judges the machine before its run; other processes' CPU is measured
    here, per row, either way)."""
    other = sum(r["other_cores"] for r in rows) / len(rows) if rows else 0.0
    within = os.environ.get("KEYFOB_BENCH_WITHIN") == "make-bench"
    if (within or meta["load_before"] <= 0.5) and other <= 0.15:
        return ""
    return (
        f"Load average (1 min) {meta['load_before']} before the run; other processes took "
        f"{other:.2f} cores on average during the rows."
    )


def radclient_version() -> str:
    out = subprocess.run(["radclient", "-v"], capture_output=True, text=True, timeout=10)
    found = re.search(r"[Vv]ersion (\S+)", out.stdout + out.stderr)
    return f"radclient {found.group(1).rstrip(',')}" if found else "radclient"


def table(meta: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "# RADIUS: Access-Request/Access-Accept pairs per second (bench/bench_radius.py)",
        "",
    ]
    if meta["shared"]:
        lines += [
            f"> **SHARED-MACHINE RUN UNDER LOAD — NOT THE FIGURES.** {meta['shared']} Rerun "
            "on a quiet machine (`make bench`) for the figures; CPU per answer is the least "
            "disturbed column.",
            "",
        ]
    lines += [
        f"{meta['date']}, {meta['machine']}; `keyfob radius` process(es) and the load generator "
        f"({meta['radclient']}, C, as wrk is for REST) on one machine, loopback. Each row: "
        f"{meta['users']} fresh users each asked once with their current code (PAP, "
        "Message-Authenticator in every request and reply), `radclient -p N -r 1 -t 5`; only "
        "Access-Accepts count. Load average (1 min): "
        f"{meta['load_before']} before the run, {meta['load_after']} after it.",
        "",
        "*pairs/s*: Access-Accepts over radclient's wall time (its start, reading the request "
        "file included, to its exit); *outstanding*: requests in flight, averaged over "
        "radclient's send and receive lines (`-p N` is a ceiling: radclient refills its window "
        "in bursts); *CPU*: ms per answer (and cores: CPU seconds over wall seconds) of the "
        "`keyfob radius` processes, of PostgreSQL's backends for the bench database and of "
        "radclient; *other load*: cores busy with anything else meanwhile. No latency column: "
        "radclient reports no time per request.",
        "",
        "radclient polls its sockets with a zero timeout while a request it sent less than a "
        "second ago is outstanding (its sleep time is the whole seconds since the send: 0), so "
        "it spins for the whole run and takes as much of a core as the scheduler gives it; "
        "wrk blocks in epoll. On 2 cores that core is taken from the servers.",
        "",
        "| backend | processes | -p | pairs/s | accepted | rejected | lost | outstanding | "
        "server CPU ms (cores) | DB CPU ms | radclient CPU ms (cores) | other load | "
        "load avg before → after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        db = "-" if r["db_cpu_ms"] is None else r["db_cpu_ms"]
        lines.append(
            f"| {r['backend']} | {r['processes']} | {r['parallel']} | {r['pairs_per_s']} | "
            f"{r['accepted']} | {r['rejected']} | {r['lost']} | {r['mean_outstanding']} | "
            f"{r['server_cpu_ms']} ({r['server_cores']}) | {db} | "
            f"{r['radclient_cpu_ms']} ({r['radclient_cores']}) | {r['other_cores']} | "
            f"{r['load_before']} → {r['load_after']} |"
        )
    return lines


def rest_comparison(rows: list[dict[str, Any]]) -> list[str]:
    """Run alone, this script has no REST figure of its own: the last ``make bench``'s, named
    as such (another run, perhaps another load: not a fair ratio, a pointer)."""
    out = [RADIUS_OTHER_RUN, ""]
    try:
        latest = json.loads((RESULTS / "latest.json").read_text())
        http = [r for r in latest["http"] if r["load"] == "valid"]
        when = latest["meta"]["when"] + ("" if latest["meta"]["quiet"] else ", a smoke run")
    except (OSError, KeyError, ValueError):
        return [*out, "No REST figure: run `make bench` (bench_compare.py) for one."]
    out += [
        f"REST from `latest.json` of {when} (wrk, 2 workers), **not this run**: the ratio "
        "only points; `make bench` gives RADIUS and REST of one run side by side.",
        "",
        "| backend | clients | REST accepts/s (other run) | RADIUS pairs/s, 2 processes | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for backend, label in (("sqlite", "keyfob SQLite"), ("postgresql", "keyfob PostgreSQL")):
        for c in PARALLEL:
            rest = next((h for h in http if h["server"] == label and h["connections"] == c), None)
            mine = next(
                (
                    r
                    for r in rows
                    if (r["backend"], r["processes"], r["parallel"]) == (backend, 2, c)
                ),
                None,
            )
            if rest and mine and rest["accepts_per_s"]:
                share = mine["pairs_per_s"] / rest["accepts_per_s"]
                out.append(
                    f"| {backend} | {c} | {rest['accepts_per_s']} | {mine['pairs_per_s']} | "
                    f"{share:.2f} |"
                )
    return out


if __name__ == "__main__":
    main()
