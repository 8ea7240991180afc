"""Verification rules (docs/design.md §4) as tables of (state, code, time) -> (decision, new state)."""

from __future__ import annotations

import pytest

from keyfob.otp import OtpType, hotp
from keyfob.otp.verify import (
    Mode,
    Outcome,
    Policy,
    Reason,
    TokenParams,
    TokenState,
    resync,
    unlock,
    verify,
)

KEY = b"12345678901234567890"
T = TokenParams(secret=KEY)
H = TokenParams(secret=KEY, type=OtpType.HOTP)
NOW_STEP = 56_666_666
NOW = NOW_STEP * 30 + 10  # 10 s into the step


def at(step: int) -> str:
    """The code of a time step (HOTP == TOTP with the step as counter; RFC-vector tested)."""
    return hotp(KEY, step)


S0 = TokenState()
ACCEPT, REJECT = Outcome.ACCEPT, Outcome.REJECT

# (name, state, code, now, mode, outcome, reason, expected new state)
TOTP_TABLE = [
    (
        "current step",
        S0,
        at(NOW_STEP),
        NOW,
        Mode.STEADY,
        ACCEPT,
        Reason.OK,
        TokenState(last_step=NOW_STEP, drift=0),
    ),
    (
        "previous step",
        S0,
        at(NOW_STEP - 1),
        NOW,
        Mode.STEADY,
        ACCEPT,
        Reason.OK,
        TokenState(last_step=NOW_STEP - 1, drift=-1),
    ),
    (
        "next step",
        S0,
        at(NOW_STEP + 1),
        NOW,
        Mode.STEADY,
        ACCEPT,
        Reason.OK,
        TokenState(last_step=NOW_STEP + 1, drift=1),
    ),
    (
        "replay of the accepted step",
        TokenState(last_step=NOW_STEP),
        at(NOW_STEP),
        NOW,
        Mode.STEADY,
        REJECT,
        Reason.REPLAY,
        TokenState(last_step=NOW_STEP, fail_count=1),
    ),
    (
        "older code after a newer one",
        TokenState(last_step=NOW_STEP),
        at(NOW_STEP - 1),
        NOW,
        Mode.STEADY,
        REJECT,
        Reason.REPLAY,
        TokenState(last_step=NOW_STEP, fail_count=1),
    ),
    (
        "learned drift moves the window",
        TokenState(last_step=NOW_STEP - 10, drift=5),
        at(NOW_STEP + 6),
        NOW,
        Mode.STEADY,
        ACCEPT,
        Reason.OK,
        TokenState(last_step=NOW_STEP + 6, drift=6),
    ),
    (
        "wrong code",
        S0,
        "000000" if at(NOW_STEP) != "000000" else "000001",
        NOW,
        Mode.STEADY,
        REJECT,
        Reason.WRONG_CODE,
        TokenState(fail_count=1),
    ),
    (
        "malformed code",
        S0,
        "12a456",
        NOW,
        Mode.STEADY,
        REJECT,
        Reason.MALFORMED,
        TokenState(fail_count=1),
    ),
    (
        "too short",
        S0,
        "12345",
        NOW,
        Mode.STEADY,
        REJECT,
        Reason.MALFORMED,
        TokenState(fail_count=1),
    ),
    (
        "outside window remembered for resync",
        S0,
        at(NOW_STEP + 40),
        NOW,
        Mode.STEADY,
        REJECT,
        Reason.RESYNC_PENDING,
        TokenState(fail_count=1, resync_step=NOW_STEP + 40, resync_offset=40, resync_at=NOW),
    ),
    (
        "second resync code completes",
        TokenState(fail_count=1, resync_step=NOW_STEP + 40, resync_offset=40, resync_at=NOW - 20),
        at(NOW_STEP + 41),
        NOW,
        Mode.STEADY,
        ACCEPT,
        Reason.RESYNCED,
        TokenState(last_step=NOW_STEP + 41, drift=41),
    ),
    (
        "second resync code with another offset",
        TokenState(resync_step=NOW_STEP + 40, resync_offset=40, resync_at=NOW - 20),
        at(NOW_STEP + 50),
        NOW,
        Mode.STEADY,
        REJECT,
        Reason.RESYNC_PENDING,
        TokenState(fail_count=1, resync_step=NOW_STEP + 50, resync_offset=50, resync_at=NOW),
    ),
    (
        "second resync code too late",
        TokenState(resync_step=NOW_STEP + 40, resync_offset=40, resync_at=NOW - 301),
        at(NOW_STEP + 41),
        NOW,
        Mode.STEADY,
        REJECT,
        Reason.RESYNC_PENDING,
        TokenState(fail_count=1, resync_step=NOW_STEP + 41, resync_offset=41, resync_at=NOW),
    ),
    (
        "same resync code twice",
        TokenState(resync_step=NOW_STEP + 40, resync_offset=40, resync_at=NOW - 5),
        at(NOW_STEP + 40),
        NOW,
        Mode.STEADY,
        REJECT,
        Reason.RESYNC_PENDING,
        TokenState(fail_count=1, resync_step=NOW_STEP + 40, resync_offset=40, resync_at=NOW),
    ),
    (
        "beyond the resync window",
        S0,
        at(NOW_STEP + 121),
        NOW,
        Mode.STEADY,
        REJECT,
        Reason.WRONG_CODE,
        TokenState(fail_count=1),
    ),
    (
        "enrolment accepts 15 steps away",
        S0,
        at(NOW_STEP - 15),
        NOW,
        Mode.ENROL,
        ACCEPT,
        Reason.OK,
        TokenState(last_step=NOW_STEP - 15, drift=-15),
    ),
    (
        "enrolment refuses 16 steps away",
        S0,
        at(NOW_STEP + 16),
        NOW,
        Mode.ENROL,
        REJECT,
        Reason.WRONG_CODE,
        TokenState(fail_count=1),
    ),
    (
        "assignment within 2 steps of imported drift",
        TokenState(drift=4),
        at(NOW_STEP + 6),
        NOW,
        Mode.ASSIGN,
        ACCEPT,
        Reason.OK,
        TokenState(last_step=NOW_STEP + 6, drift=6),
    ),
    (
        "assignment 3 steps off needs a second code",
        TokenState(drift=4),
        at(NOW_STEP + 7),
        NOW,
        Mode.ASSIGN,
        REJECT,
        Reason.RESYNC_PENDING,
        TokenState(drift=4, fail_count=1, resync_step=NOW_STEP + 7, resync_offset=7, resync_at=NOW),
    ),
    (
        "locked refuses even the right code",
        TokenState(fail_count=5, locked_until=NOW + 1),
        at(NOW_STEP),
        NOW,
        Mode.STEADY,
        REJECT,
        Reason.LOCKED,
        TokenState(fail_count=5, locked_until=NOW + 1),
    ),
    (
        "lock expired, right code accepted",
        TokenState(fail_count=5, locked_until=NOW),
        at(NOW_STEP),
        NOW,
        Mode.STEADY,
        ACCEPT,
        Reason.OK,
        TokenState(last_step=NOW_STEP),
    ),
    (
        "fifth failure locks for 30 s",
        TokenState(fail_count=4),
        "99999x",
        NOW,
        Mode.STEADY,
        REJECT,
        Reason.MALFORMED,
        TokenState(fail_count=5, locked_until=NOW + 30),
    ),
    (
        "sixth failure locks for 60 s",
        TokenState(fail_count=5, locked_until=NOW - 1),
        "99999x",
        NOW,
        Mode.STEADY,
        REJECT,
        Reason.MALFORMED,
        TokenState(fail_count=6, locked_until=NOW + 60),
    ),
    (
        "lock is capped at one hour",
        TokenState(fail_count=40, locked_until=NOW - 1),
        "99999x",
        NOW,
        Mode.STEADY,
        REJECT,
        Reason.MALFORMED,
        TokenState(fail_count=41, locked_until=NOW + 3600),
    ),
]


@pytest.mark.parametrize(
    ("name", "state", "code", "now", "mode", "outcome", "reason", "new"),
    TOTP_TABLE,
    ids=[row[0] for row in TOTP_TABLE],
)
def test_totp_rules(name, state, code, now, mode, outcome, reason, new) -> None:
    d = verify(T, state, code, now, Policy(), mode)
    assert (d.outcome, d.reason, d.state) == (outcome, reason, new)


def test_window_zero_and_wider_windows() -> None:
    assert not verify(T, S0, at(NOW_STEP - 1), NOW, Policy(window=0)).accepted
    assert verify(T, S0, at(NOW_STEP - 3), NOW, Policy(window=3)).accepted


def test_spaces_in_typed_code_are_ignored() -> None:
    code = at(NOW_STEP)
    assert verify(T, S0, f"{code[:3]} {code[3:]}", NOW).accepted


def test_policy_bounds() -> None:
    with pytest.raises(ValueError):
        Policy(window=11)
    with pytest.raises(ValueError):
        Policy(resync_window=2881)


# HOTP: last_step is the last accepted counter; -1 = none yet.
HOTP_TABLE = [
    (
        "next counter",
        TokenState(last_step=4),
        hotp(KEY, 5),
        ACCEPT,
        Reason.OK,
        TokenState(last_step=5),
    ),
    (
        "look-ahead 10",
        TokenState(last_step=4),
        hotp(KEY, 15),
        ACCEPT,
        Reason.OK,
        TokenState(last_step=15),
    ),
    (
        "used counter",
        TokenState(last_step=4),
        hotp(KEY, 4),
        REJECT,
        Reason.WRONG_CODE,
        TokenState(last_step=4, fail_count=1),
    ),
    (
        "beyond look-ahead: pending",
        TokenState(last_step=4),
        hotp(KEY, 40),
        REJECT,
        Reason.RESYNC_PENDING,
        TokenState(last_step=4, fail_count=1, resync_step=40, resync_offset=0, resync_at=NOW),
    ),
    (
        "consecutive second code resyncs",
        TokenState(last_step=4, resync_step=40, resync_offset=0, resync_at=NOW - 10),
        hotp(KEY, 41),
        ACCEPT,
        Reason.RESYNCED,
        TokenState(last_step=41),
    ),
    (
        "beyond 100: wrong",
        TokenState(last_step=4),
        hotp(KEY, 106),
        REJECT,
        Reason.WRONG_CODE,
        TokenState(last_step=4, fail_count=1),
    ),
]


@pytest.mark.parametrize(
    ("name", "state", "code", "outcome", "reason", "new"),
    HOTP_TABLE,
    ids=[row[0] for row in HOTP_TABLE],
)
def test_hotp_rules(name, state, code, outcome, reason, new) -> None:
    d = verify(H, state, code, NOW)
    assert (d.outcome, d.reason, d.state) == (outcome, reason, new)


RESYNC_TABLE = [
    (
        "two consecutive codes 100 steps ahead",
        S0,
        at(NOW_STEP + 100),
        at(NOW_STEP + 101),
        ACCEPT,
        TokenState(last_step=NOW_STEP + 101, drift=101),
    ),
    (
        "clears a lock",
        TokenState(fail_count=9, locked_until=NOW + 999),
        at(NOW_STEP - 3),
        at(NOW_STEP - 2),
        ACCEPT,
        TokenState(last_step=NOW_STEP - 2, drift=-2),
    ),
    ("not consecutive", S0, at(NOW_STEP + 5), at(NOW_STEP + 7), REJECT, TokenState(fail_count=1)),
    ("reversed order", S0, at(NOW_STEP + 6), at(NOW_STEP + 5), REJECT, TokenState(fail_count=1)),
    (
        "already used steps",
        TokenState(last_step=NOW_STEP + 6),
        at(NOW_STEP + 5),
        at(NOW_STEP + 6),
        REJECT,
        TokenState(last_step=NOW_STEP + 6, fail_count=1),
    ),
]


@pytest.mark.parametrize(
    ("name", "state", "c1", "c2", "outcome", "new"),
    RESYNC_TABLE,
    ids=[row[0] for row in RESYNC_TABLE],
)
def test_two_code_resync(name, state, c1, c2, outcome, new) -> None:
    d = resync(T, state, c1, c2, NOW)
    assert (d.outcome, d.state) == (outcome, new)


def test_hotp_two_code_resync() -> None:
    d = resync(H, TokenState(last_step=0), hotp(KEY, 50), hotp(KEY, 51), NOW)
    assert d.accepted and d.state == TokenState(last_step=51)


def test_unlock_keeps_drift() -> None:
    assert unlock(
        TokenState(
            last_step=7,
            drift=3,
            fail_count=8,
            locked_until=NOW + 5,
            resync_step=1,
            resync_offset=1,
            resync_at=NOW,
        )
    ) == TokenState(last_step=7, drift=3)


def test_sha256_eight_digits_sixty_seconds() -> None:
    from keyfob.otp import Algorithm, totp

    key = bytes(range(32))
    p = TokenParams(secret=key, algorithm=Algorithm.SHA256, digits=8, period=60)
    code = totp(key, NOW, 8, Algorithm.SHA256, 60)
    d = verify(p, S0, code, NOW)
    assert d.accepted and d.state.last_step == int(NOW // 60)
