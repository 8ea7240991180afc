"""keyfob probe-skew --target radius: against keyfob's own verification rules on a virtual clock
(every window 0…10, every lockout), then against a real `keyfob radius` process with a lockout
of 5 and KEYFOB_WINDOW 2 through the target, and 1 through the CLI in its own process.

The RADIUS target has one fixed secret, so it waits for the clock between codes (a window of ±1
takes 8 steps, ±2 takes 15). As in test_probe_skew.py, the processes run with `time.time`
replaced before keyfob is imported, 30 times faster (the CLI's `time.sleep` too), and the
target here is given the same clock: a step lasts 1 s.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from keyfob.cli.main import main
from keyfob.errors import KeyfobError
from keyfob.otp import to_base32
from keyfob.otp.hotp import totp
from keyfob.otp.verify import Policy, TokenParams, TokenState, verify
from keyfob.toolset.radius import RadiusClient, RadiusTarget, parse_server
from keyfob.toolset.skew import chart, search
from testkit import running
from toolset.test_probe_skew import _SERVE, EPOCH, GUARD, SPEED, FastClock

SHARED = "probe-skew-shared-secret-0123"
PASSWORD = "correct horse 42"
LOCKOUT = 5

# The CLI in its own process, on the server's fast clock: time.time and time.sleep both.
_PROBE = f"""
import time
_time, _sleep = time.time, time.sleep
time.time = lambda: {EPOCH!r} + {SPEED!r} * (_time() - {EPOCH!r})
time.sleep = lambda s: _sleep(max(s, 0.0) / {SPEED!r})
from keyfob.cli.main import run
run()
"""


# --- keyfob's rules (keyfob.otp.verify) behind a fake client, on a virtual clock -------------


class VirtualClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.0)


class RulesClient:
    """What `keyfob radius` decides, without the wire: one token's state through `verify`."""

    where = "rules:1812"

    def __init__(
        self,
        clock: VirtualClock,
        secret: bytes,
        policy: Policy,
        skew: int = 0,
        delays: tuple[float, ...] = (0.05,),
    ) -> None:
        self.clock, self.params, self.policy, self.skew = clock, TokenParams(secret), policy, skew
        self.delays = delays  # before the check, in turn: a slow server checks late
        self.state = TokenState(last_step=int(clock.now() // 30) - 1)
        self.most_failures = 0
        self.codes: list[tuple[float, str, bool]] = []

    def check(self, user: str, password: str) -> bool:
        self.clock.t += self.delays[len(self.codes) % len(self.delays)]
        now = self.clock.now() + self.skew * 30
        decision = verify(self.params, self.state, password, now, self.policy)
        self.state = decision.state
        self.most_failures = max(self.most_failures, self.state.fail_count)
        self.codes.append((self.clock.now(), password, decision.accepted))
        return decision.accepted

    def close(self) -> None:
        pass


SECRET = bytes(range(20))


@pytest.mark.parametrize("window", range(11))
@pytest.mark.parametrize("lockout", [2, 3, 5])
def test_every_window_exactly_against_keyfobs_rules(window: int, lockout: int) -> None:
    """Drift learning, replay and resync would each bias a naive forward search: exact anyway,
    never at the lockout, and the account left with no failure and no drift."""
    clock = VirtualClock(1_800_000_007.0)
    policy = Policy(window=window, lockout_threshold=lockout)
    client = RulesClient(clock, SECRET, policy)
    target = RadiusTarget(client, "u", SECRET, max_failures=lockout, clock=clock)
    started = clock.now()
    with target:
        result = search(target, max_steps=12)
    assert (result.from_steps, result.to_steps) == (-window, window), chart(result)
    assert len(result.probes) == 2 * window + 3
    assert client.most_failures < lockout and client.state.locked_until == 0
    assert (client.state.fail_count, client.state.drift) == (0, 0)
    steps = (clock.now() - started) / 30
    assert steps < (window + 1) * (window + 3) + 1  # the cost the docs and --help give


@pytest.mark.parametrize("window", [0, 1, 3])
def test_answers_that_come_after_their_step_are_asked_again(window: int) -> None:
    """Every third request waits 27 s before the check: sent 2 s into a step or later, it is
    checked in the next step. Such an answer tells nothing; the code goes again (after the
    current code), and the result stays exact."""
    clock = VirtualClock(1_800_000_007.0)
    policy = Policy(window=window)
    client = RulesClient(clock, SECRET, policy, delays=(0.05, 0.05, 27.0))
    target = RadiusTarget(client, "u", SECRET, clock=clock)
    with target:
        result = search(target, max_steps=12)
    assert (result.from_steps, result.to_steps) == (-window, window), chart(result)
    assert client.most_failures < 5 and (client.state.fail_count, client.state.drift) == (0, 0)


def test_remaining_time_is_exact_once_one_side_is_known() -> None:
    clock = VirtualClock(1_800_000_007.0)
    target = RadiusTarget(RulesClient(clock, SECRET, Policy(window=3)), "u", SECRET, clock=clock)
    started, totals = clock.now(), []
    with target:
        search(
            target, 12, lambda p: totals.append(clock.now() - started + target.remaining_seconds())
        )
    took = clock.now() - started
    assert totals[-1] == pytest.approx(took, abs=1) and totals[4] == pytest.approx(
        took, abs=1
    )  # after +4
    assert totals[0] < took  # before: a guess (a window of 0)


def test_a_verifier_that_refuses_the_current_code_stops_after_one_failure() -> None:
    clock = VirtualClock(1_800_000_007.0)
    client = RulesClient(clock, SECRET, Policy(window=1), skew=3)
    target = RadiusTarget(client, "u", SECRET, clock=clock)
    with pytest.raises(KeyfobError, match="refused the current code") as caught, target:
        search(target, 12)
    assert client.state.fail_count == 1 and len(client.codes) == 1
    assert client.codes[0][1] not in str(caught.value) + (caught.value.hint or "")


def test_server_addresses_and_argument_errors(capsys) -> None:
    assert parse_server("[::1]:1645") == ("::1", 1645)
    assert parse_server("radius.example") == ("radius.example", 1812)
    with pytest.raises(KeyfobError, match="not HOST:PORT"):
        parse_server("host:99999")
    base = ["probe-skew", "--target", "radius"]
    assert main([*base, "--server", "127.0.0.1:1812", "--user", "u"]) == 1
    assert "needs --shared-secret, --otp-secret" in capsys.readouterr().err
    secret = to_base32(SECRET)
    argv = [*base, "--server", "127.0.0.1:9", "--user", "u", "--otp-secret", secret]
    assert main([*argv, "--shared-secret", SHARED, "--max-failures", "1"]) == 2
    capsys.readouterr()
    argv += ["--shared-secret", SHARED, "--password", "x" * 130]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "fit in 128 octets" in err and SHARED not in err and secret not in err


# --- a real `keyfob radius` process ---------------------------------------------------------


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(db: str, key_file: Path, mode: str) -> bytes:
    """User alice (password, TOTP app activated on the real clock) and this machine as a
    client in ``mode``; returns alice's secret."""
    from keyfob.server import accounts, enrolment
    from keyfob.server.context import open_context
    from keyfob.server.radius import clients
    from keyfob.server.radius.clients import ClientSettings
    from keyfob.server.settings import Settings

    ctx = open_context(Settings(db=db, key_file=key_file))
    try:
        accounts.create_user(ctx, "alice", password=PASSWORD, one_time=False)
        begun = enrolment.begin(ctx, "alice", "app", actor="test")
        secret = begun.credential.secret
        enrolment.verify_enrolment(ctx, "alice", begun.id, totp(secret, time.time()), actor="t")
        settings = ClientSettings(mode=mode)
        clients.add_client(ctx, "prober", "127.0.0.1", secret=SHARED, settings=settings)
    finally:
        ctx.engine.dispose()
    return secret


@contextmanager
def fast_radius(tmp_path: Path, window: int, mode: str) -> Iterator[tuple[str, str, bytes]]:
    """`keyfob radius` with KEYFOB_WINDOW=window and a lockout of 5 on a free port, 30x fast;
    yields (server, database URL, alice's secret); stopped by its PID."""
    db, key_file = f"sqlite:///{tmp_path / 'keyfob.db'}", tmp_path / "keyfob.key"
    secret = _prepare(db, key_file, mode)
    port = _free_udp_port()
    env = {
        **os.environ,
        "KEYFOB_WINDOW": str(window),
        "KEYFOB_LOCKOUT_THRESHOLD": str(LOCKOUT),
    }
    args = ["radius", "--db", db, "--key-file", str(key_file), "--host", "127.0.0.1"]
    server = f"127.0.0.1:{port}"
    with running(
        [sys.executable, "-c", _SERVE, *args, "--port", str(port)],
        lambda: _answers(server),
        what="keyfob radius",
        log=tmp_path / "radius.log",
        cwd=tmp_path,
        env=env,
    ):
        yield server, db, secret


def _answers(server: str) -> bool:
    """Whether the RADIUS server answers: a request for an unknown user, refused (alice is left
    untouched)."""
    ready = RadiusClient(server, SHARED, timeout=0.2, retries=1)
    try:
        ready.check("nobody", "000000")
        return True
    except KeyfobError:
        return False
    finally:
        ready.close()


def _alice(db: str) -> tuple[TokenState, list[str], int]:
    """Alice's token state, the outcomes of her code checks in order, her lockout rows."""
    from keyfob.server.store import repo
    from keyfob.server.store.schema import audit

    engine = sa.create_engine(db)
    try:
        with engine.connect() as conn:
            _, (token,) = repo.active_tokens_of(conn, "alice")
            rows = conn.execute(
                sa.select(audit.c.action, audit.c.outcome)
                .where(audit.c.target_user == "alice", audit.c.actor == "radius:prober")
                .order_by(audit.c.id)
            ).all()
    finally:
        engine.dispose()
    outcomes = [r.outcome for r in rows if r.action == "validate"]
    return token.verification, outcomes, sum(r.action == "token.lockout" for r in rows)


def _longest_failure_run(outcomes: list[str]) -> int:
    run = longest = 0
    for outcome in outcomes:
        run = run + 1 if outcome == "failure" else 0
        longest = max(longest, run)
    return longest


def _assert_left_clean(db: str) -> None:
    state, outcomes, lockouts = _alice(db)
    assert lockouts == 0 and state.locked_until == 0, outcomes
    assert (state.fail_count, state.drift) == (0, 0)
    assert "failure" in outcomes and _longest_failure_run(outcomes) <= LOCKOUT - 2


def test_keyfob_radius_window_2_exactly_without_lockout(tmp_path: Path) -> None:
    with fast_radius(tmp_path, 2, "otp") as (server, db, secret):
        client = RadiusClient(server, SHARED)
        target = RadiusTarget(
            client, "alice", secret, max_failures=LOCKOUT, clock=FastClock(), guard=GUARD
        )
        with target:
            result = search(target, max_steps=10)
        assert (result.from_steps, result.to_steps) == (-2, 2), chart(result)
        assert (result.from_seconds, result.to_seconds) == (-60, 60)
        answers = {p.offset_steps: p.accepted for p in result.probes}
        assert answers == {k: abs(k) <= 2 for k in range(-3, 4)}
        _assert_left_clean(db)


def test_cli_window_1_password_and_otp_exactly_without_lockout(tmp_path: Path) -> None:
    """The password check (argon2) takes a good part of a step at 30x: codes wait for the
    next step rather than risk being checked in it."""
    with fast_radius(tmp_path, 1, "password+otp") as (server, db, secret):
        env = {
            **os.environ,
            "KEYFOB_RADIUS_SECRET": SHARED,
            "KEYFOB_OTP_SECRET": to_base32(secret),
            "KEYFOB_RADIUS_PASSWORD": PASSWORD,
        }
        args = ["probe-skew", "--target", "radius", "--server", server, "--user", "alice"]
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, *args, "--max-failures", str(LOCKOUT), "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        assert data["target"] == f"radius {server}"
        assert (data["from_steps"], data["to_steps"]) == (-1, 1)
        assert (data["from_seconds"], data["to_seconds"]) == (-30, 30)
        assert [p["offset_steps"] for p in data["probes"]] == list(range(-2, 3))
        assert "+2 steps: refused" in proc.stderr and "-2 steps: refused" in proc.stderr
        for secret_text in (SHARED, PASSWORD, to_base32(secret)):
            assert secret_text not in proc.stdout + proc.stderr
        _assert_left_clean(db)
