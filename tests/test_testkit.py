"""The shared test helpers hold what they promise: a wrong code is wrong over the whole range a
verifier scans, the one clock moves only when a test moves it, a process that never answers
fails the test with its output and is stopped, and the audit adds up to each fail_count."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pyotp
import pytest

from keyfob.otp import Algorithm, OtpType, hotp, to_base32
from keyfob.otp.verify import Reason, TokenParams, TokenState, verify
from testkit import SPAN, T0, Clock, fail_counts, start_process, wrong_code

KEY = b"12345678901234567890"


@pytest.mark.parametrize("seed", range(20), ids=lambda seed: f"seed {seed}")
def test_a_wrong_code_is_no_code_of_the_whole_scanned_range(seed: int) -> None:
    key = bytes((seed * 7 + i) % 256 for i in range(20))
    center = T0 // 30
    code = wrong_code(key, at=T0)
    assert code not in {hotp(key, s) for s in range(center - SPAN, center + SPAN + 1)}
    # ...so the verifier finds it nowhere, not even in the resync range around a drift of 120.
    for drift in (-120, 0, 120):
        state = TokenState(drift=drift)
        assert verify(TokenParams(secret=key), state, code, T0).reason is Reason.WRONG_CODE
    hotp_code = wrong_code(key, step=0)
    params = TokenParams(secret=key, type=OtpType.HOTP)
    assert verify(params, TokenState(), hotp_code, T0).reason is Reason.WRONG_CODE


def test_a_code_in_the_range_is_never_picked() -> None:
    taken = hotp(KEY, T0 // 30 + 17)  # a code 17 steps ahead: right for the resync range
    assert wrong_code(KEY, at=T0, pick=int(taken)) != taken
    assert wrong_code(KEY, at=T0, pick=int(taken)) == wrong_code(KEY, at=T0, pick=int(taken) + 1)


def test_several_secrets_and_their_forms() -> None:
    totp = pyotp.TOTP(to_base32(KEY))
    other = bytes(range(20))
    code = wrong_code(totp, to_base32(other), at=T0)
    window = range(T0 // 30 - SPAN, T0 // 30 + SPAN + 1)
    assert code not in {hotp(k, s) for k in (KEY, other) for s in window}
    eight = wrong_code(KEY, at=T0, digits=8, algorithm=Algorithm.SHA256, period=60)
    assert len(eight) == 8
    assert eight not in {hotp(KEY, T0 // 60 + d, 8, Algorithm.SHA256) for d in range(-SPAN, SPAN)}
    with pytest.raises(TypeError):
        wrong_code(KEY)


def test_the_clock_moves_only_when_told(clock: Clock) -> None:
    assert clock() == clock.now == T0
    clock.advance(30)
    assert clock() == T0 + 30
    clock.set(T0 + 5)
    assert clock() == T0 + 5


def test_a_process_that_never_answers_fails_with_its_output_and_is_stopped(tmp_path) -> None:
    pipe = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    exits = [sys.executable, "-c", "print('no config'); raise SystemExit(3)"]
    with pytest.raises(AssertionError, match=r"exits did not answer \(exit 3\): no config"):
        start_process(exits, lambda: False, what="exits", **pipe)
    hangs = [sys.executable, "-uc", "import os, time; print(os.getpid()); time.sleep(60)"]
    with pytest.raises(AssertionError, match=r"hangs did not answer \(exit None\)") as failed:
        start_process(hangs, lambda: False, what="hangs", seconds=0.5, log=tmp_path / "log")
    pid = int(str(failed.value).rsplit(": ", 1)[1])  # what it printed, from its log
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped by its PID, not left running


def test_fail_counts_replay_the_audit() -> None:
    rows = [
        SimpleNamespace(target_user=user, outcome=outcome, reason=reason)
        for user, outcome, reason in [
            ("a", "failure", "wrong_code"),
            ("a", "failure", "replay"),
            ("b", "failure", "wrong_code"),
            ("a", "failure", "locked"),  # refused, but not counted (§4.8)
            ("b", "success", None),
            ("a", "failure", "resync_pending"),
        ]
    ]
    assert fail_counts(rows) == {"a": 3, "b": 0} and fail_counts(rows)["c"] == 0
