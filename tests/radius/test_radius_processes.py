"""`keyfob radius` processes: two of them on one PostgreSQL answer alternately, and a code is
still accepted once; a challenge begun on one is completed on the other. Plus the admin CLI of
clients and `keyfob serve --radius-port` with its counters in /metrics."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from radiuskit import PASSWORD, SECRET, RadClient, enrol_app, free_udp_port, reset_postgres

from keyfob.otp.hotp import totp
from keyfob.server import accounts
from keyfob.server.context import ServerContext, open_context
from keyfob.server.radius import clients
from keyfob.server.radius.clients import ClientSettings
from keyfob.server.settings import Settings
from testkit import KEYFOB, free_port, start_process, stop_process


def _start(args: list[str], port: int, radclient: RadClient) -> subprocess.Popen[str]:
    """`keyfob ARGS`, once its RADIUS port answers radclient (no pause: each try waits 0.5 s)."""
    return start_process(
        [*KEYFOB, *args],
        lambda: bool(radclient(port, User_Name="probe", User_Password="000000", timeout=0.5).kind),
        what="the RADIUS server",
        pause=0,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _enrolled(ctx: ServerContext, name: str) -> bytes:
    """A TOTP app enrolled with the code of one step ago (the learned drift, -1, keeps the
    current step in the window), so that the current code is fresh — on the real clock the
    processes use."""
    return enrol_app(ctx, name, time.time() - 30)


@pytest.fixture
def shared_pg(radius_pg: str, tmp_path: Path) -> Iterator[tuple[ServerContext, Path]]:
    reset_postgres(radius_pg)
    key_file = tmp_path / "shared.key"
    ctx = open_context(Settings(db=radius_pg, key_file=key_file))
    yield ctx, key_file
    ctx.engine.dispose()


def test_two_processes_on_one_postgresql(
    shared_pg: tuple[ServerContext, Path], radius_pg: str, radclient: RadClient
) -> None:
    ctx, key_file = shared_pg
    secret = _enrolled(ctx, "alice")
    clients.add_client(ctx, "nas", "127.0.0.1", secret=SECRET)
    clients.add_client(
        ctx, "chal", "127.0.0.0/8", secret=SECRET + "x", settings=ClientSettings(mode="challenge")
    )
    ports = [free_udp_port(), free_udp_port()]
    common = ["radius", "--db", radius_pg, "--key-file", str(key_file), "--host", "127.0.0.1"]
    procs = [_start([*common, "--port", str(p)], p, radclient) for p in ports]
    try:
        code = totp(secret, time.time())
        answers = [
            radclient(ports[i % 2], User_Name="alice", User_Password=code).kind for i in range(4)
        ]
        assert answers.count("Access-Accept") == 1, answers
        assert answers[0] == "Access-Accept"
        assert set(answers[1:]) == {"Access-Reject"}
    finally:
        for proc in procs:
            stop_process(proc, timeout=10)


def test_challenge_begun_on_one_process_ends_on_the_other(
    shared_pg: tuple[ServerContext, Path], radius_pg: str, radclient: RadClient
) -> None:
    ctx, key_file = shared_pg
    secret = _enrolled(ctx, "alice")
    clients.add_client(
        ctx, "nas", "127.0.0.1", secret=SECRET, settings=ClientSettings(mode="challenge")
    )
    ports = [free_udp_port(), free_udp_port()]
    common = ["radius", "--db", radius_pg, "--key-file", str(key_file), "--host", "127.0.0.1"]
    procs = [_start([*common, "--port", str(p)], p, radclient) for p in ports]
    try:
        first = radclient(ports[0], User_Name="alice", User_Password=PASSWORD)
        assert first.kind == "Access-Challenge", first.output
        state = first.get("State") or ""
        code = totp(secret, time.time())
        second = radclient(ports[1], User_Name="alice", User_Password=code, State=state)
        assert second.kind == "Access-Accept", second.output
    finally:
        for proc in procs:
            stop_process(proc, timeout=10)


def _cli(db: str, key_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KEYFOB, "admin", "--db", db, "--key-file", str(key_file), "radius-client", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_admin_cli_add_list_set_remove(tmp_path: Path) -> None:
    db, key_file = f"sqlite:///{tmp_path / 'k.db'}", tmp_path / "k.key"
    where = ["--db", db, "--key-file", str(key_file)]
    subprocess.run([*KEYFOB, "admin", *where, "init"], check=True, capture_output=True)
    added = _cli(db, key_file, "add", "fortigate-hq", "192.0.2.10", "--mode", "password+otp")
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip().splitlines()[-1]
    assert len(secret) == 32 and secret.isalnum()
    listed = _cli(db, key_file, "list", "--json")
    (view,) = json.loads(listed.stdout)
    assert view["address"] == "192.0.2.10/32" and view["mode"] == "password+otp"
    assert view["require_message_authenticator"] is True
    assert secret not in listed.stdout
    changed = _cli(
        db, key_file, "set", "fortigate-hq", "--no-require-message-authenticator", "--otp-first"
    )
    assert changed.returncode == 0, changed.stderr
    (view,) = json.loads(_cli(db, key_file, "list", "--json").stdout)
    assert view["require_message_authenticator"] is False and view["otp_first"] is True
    bad = _cli(db, key_file, "add", "x", "10.0.0.1/8")
    assert bad.returncode == 1 and "host bits" in bad.stderr
    short = _cli(db, key_file, "add", "y", "10.0.0.1", "--secret", "short")
    assert short.returncode == 1 and "16" in short.stderr and "short" not in short.stderr
    assert _cli(db, key_file, "remove", "fortigate-hq").returncode == 0
    assert json.loads(_cli(db, key_file, "list", "--json").stdout) == []


def test_serve_with_radius_port_counts_drops_in_metrics(
    tmp_path: Path, radclient: RadClient
) -> None:
    db, key_file = f"sqlite:///{tmp_path / 'k.db'}", tmp_path / "k.key"
    ctx = open_context(Settings(db=db, key_file=key_file))
    _, metrics_key = accounts.create_api_key(ctx, "prom", "metrics")
    clients.add_client(ctx, "nas", "127.0.0.1", secret=SECRET)
    ctx.engine.dispose()
    http, port = free_port(), free_udp_port()
    args = ["serve", "--db", db, "--port", str(http), "--radius-port", str(port)]
    proc = _start(args, port, radclient)
    try:
        radclient(port, secret="wrong-" + SECRET, User_Name="a", User_Password="123456")
        text = httpx.get(
            f"http://127.0.0.1:{http}/metrics",
            headers={"Authorization": f"Bearer {metrics_key}"},
            timeout=10,
        ).text
        assert 'keyfob_radius_dropped_total{reason="bad_message_authenticator"} 1.0' in text
        assert 'keyfob_radius_answers_total{answer="reject"}' in text
    finally:
        stop_process(proc, timeout=10)
