"""keyfob probe-skew against a real `keyfob serve` (KEYFOB_WINDOW 1, 3, 10) and against oathtool.

In the steady phase offset -k can only be tried k + 1 steps after its enrolment (before that the
code is a replay), so at 30 s steps a window of 10 takes six minutes to measure. The server here
runs with its clock sped up 30 times — `keyfob serve` itself, with `time.time` replaced before
keyfob is imported — and the prober is given the same clock, so a step lasts 1 s.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from keyfob.cli.main import main
from keyfob.toolset.skew import chart, search
from keyfob.toolset.targets import KeyfobTarget
from testkit import free_port, healthy, running

SPEED = 30.0
EPOCH = time.time()
GUARD = 6.0  # fake seconds: 0.2 s of real time either side of a step boundary

_SERVE = f"""
import sys, time
_real = time.time
time.time = lambda: {EPOCH!r} + {SPEED!r} * (_real() - {EPOCH!r})
from keyfob.cli.main import run
run()
"""


class FastClock:
    """The server's clock, in this process: 30 x real time since EPOCH."""

    def now(self) -> float:
        return EPOCH + SPEED * (time.time() - EPOCH)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(seconds, 0.0) / SPEED)


def _admin_key(db: str) -> str:
    from keyfob.server import accounts
    from keyfob.server.context import open_context
    from keyfob.server.settings import Settings

    ctx = open_context(Settings(db=db))
    try:
        return accounts.create_api_key(ctx, "probe", "admin")[1]
    finally:
        ctx.engine.dispose()


@contextmanager
def fast_server(tmp_path: Path, window: int) -> Iterator[tuple[str, str]]:
    """`keyfob serve` with KEYFOB_WINDOW=window on a free port; stopped by its PID."""
    db = f"sqlite:///{tmp_path / 'keyfob.db'}"
    key = _admin_key(db)
    port = free_port()
    env = {**os.environ, "KEYFOB_WINDOW": str(window)}
    serve = [sys.executable, "-c", _SERVE, "serve", "--db", db, "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with running(
        [*serve, "--log-level", "warning"],
        lambda: healthy(base),
        what="keyfob serve",
        log=tmp_path / "serve.log",
        text=True,
        cwd=tmp_path,
        env=env,
    ):
        yield base, key


def _assert_cleaned_up(base: str, key: str, target: KeyfobTarget) -> None:
    """Every temporary user the run made is gone from the server, and its methods with it."""
    headers = {"Authorization": f"Bearer {key}"}
    assert target.users and target.users_left == [] and target.cleanup_failures == 0
    for user in target.users:
        assert httpx.get(f"{base}/api/v1/users/{user}/tokens", headers=headers).status_code == 404
    listed = httpx.get(f"{base}/api/v1/users", headers=headers).json()["items"]
    assert not [u for u in listed if u["username"].startswith("probe-skew-")]


@pytest.mark.parametrize("window", [1, 3, 10])
def test_steady_phase_finds_exactly_keyfob_window(tmp_path, window) -> None:
    with fast_server(tmp_path, window) as (base, key):
        target = KeyfobTarget(base, key, "steady", clock=FastClock(), guard=GUARD)
        with target:
            result = search(target, max_steps=window + 2)
        assert (result.from_steps, result.to_steps) == (-window, window), chart(result)
        assert (result.from_seconds, result.to_seconds) == (-30 * window, 30 * window)
        answers = {p.offset_steps: p.accepted for p in result.probes}
        assert answers[window + 1] is False and answers[-window - 1] is False
        _assert_cleaned_up(base, key, target)


def test_enrol_phase_finds_the_enrolment_window_and_cleans_up_on_ctrl_c(tmp_path) -> None:
    with fast_server(tmp_path, 1) as (base, key):
        target = KeyfobTarget(base, key, "enrol", clock=FastClock(), guard=GUARD)
        with target:
            result = search(target, max_steps=17)
        assert (result.from_steps, result.to_steps) == (-15, 15)
        assert len(result.probes) == 33  # -16 ... +16
        _assert_cleaned_up(base, key, target)

        interrupted = KeyfobTarget(base, key, "steady", clock=FastClock(), guard=GUARD)
        real_probe, calls = interrupted.probe, []

        def probe_then_ctrl_c(offset: int) -> bool:
            calls.append(offset)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return real_probe(offset)

        interrupted.probe = probe_then_ctrl_c  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt), interrupted:
            search(interrupted, max_steps=5)
        assert len(interrupted.users) >= 6  # the prepared enrolments for 0 ... -5, and more
        _assert_cleaned_up(base, key, interrupted)


def test_oathtool_window_2_as_a_command_verifier(oathtool, capsys) -> None:
    """oathtool 2.6.7 checked by hand first: for TOTP, -w 2 accepts two steps either side
    (exit 0; 2 = not found — its message even prints a one-step range), for HOTP only ahead."""
    cmd = f"{oathtool} -b --totp -w 2 {{secret}} {{code}}"
    assert main(["probe-skew", "--target", "command", "--cmd", cmd, "--max-steps", "4"]) == 0
    text = capsys.readouterr().out
    assert "accepted: -2 to +2 steps = -60 s to +60 s" in text and "-3 ·█████· +3" in text
    cmd = f"{oathtool} --totp=SHA256 -s 60s -d 8 -w 2 {{secret_hex}} {{code}}"
    argv = ["probe-skew", "--target", "command", "--cmd", cmd, "--max-steps", "4"]
    argv += ["--algorithm", "SHA256", "--period", "60", "--digits", "8", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == [
        "target",
        "from_steps",
        "to_steps",
        "from_seconds",
        "to_seconds",
        "probes",
    ]
    assert (data["from_steps"], data["to_steps"]) == (-2, 2)
    assert (data["from_seconds"], data["to_seconds"]) == (-120, 120)
    assert data["probes"][0] == {"offset_steps": -3, "accepted": False}
    assert len(data["probes"]) == 7


def test_plot_and_broken_commands(tmp_path, capsys) -> None:
    png = tmp_path / "skew.png"
    argv = ["probe-skew", "--target", "command", "--cmd", "test {code} = x", "--max-steps", "2"]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert main([*argv, "--plot", str(png)]) == 1
        assert "pip install 'keyfob[plot]'" in capsys.readouterr().err
    else:
        assert main([*argv, "--plot", str(png)]) == 0
        assert png.read_bytes().startswith(b"\x89PNG")
        assert "accepted: no offset at all" in capsys.readouterr().out
    assert main(["probe-skew", "--target", "command", "--cmd", "no-such-verifier {code}"]) == 1
    assert "failed to run (exit status 127)" in capsys.readouterr().err
    assert main(["probe-skew", "--target", "command", "--cmd", "true"]) == 1
    assert "no {code} placeholder" in capsys.readouterr().err


def test_a_server_without_user_delete_gets_its_methods_deleted() -> None:
    """An older server has no DELETE /api/v1/users/{username} (its 404 is "no such route", and
    the user's methods are still listed): the user stays, and is reported; its methods are
    deleted one by one as before."""
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(f"{request.method} {request.url.path}")
        if request.method == "GET":
            return httpx.Response(200, json={"items": [{"id": "m1"}]})
        return httpx.Response(404 if request.url.path.count("/") == 4 else 204)

    target = KeyfobTarget("http://keyfob.invalid", "key")
    target._http = httpx.Client(
        base_url="http://keyfob.invalid", transport=httpx.MockTransport(answer)
    )
    target.users, target._methods = ["probe-skew-x-001"], [("probe-skew-x-001", "m1")]
    target.close()
    assert asked == [
        "DELETE /api/v1/users/probe-skew-x-001",
        "GET /api/v1/users/probe-skew-x-001/tokens",
        "DELETE /api/v1/users/probe-skew-x-001/tokens/m1",
    ]
    assert (target.users_left, target.cleanup_failures) == (["probe-skew-x-001"], 0)
