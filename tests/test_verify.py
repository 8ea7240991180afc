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
from testkit import wrong_code

KEY = b"12345678901234567890"
T = TokenParams(secret=KEY)
H = TokenParams(secret=KEY, type=OtpType.HOTP)
NOW_STEP = 56_666_666
NOW = NOW_STEP * 30 + 10  # 10 s into the step


def at(step: int) -> str:
    """The code of a time step (HOTP == TOTP with the step as counter; RFC-vector tested)."""
    return hotp(KEY, step)


S, S0, N = TokenState, TokenState(), NOW_STEP
ACCEPT, REJECT = Outcome.ACCEPT, Outcome.REJECT
OK, RESYNCED, WRONG, REPLAY = Reason.OK, Reason.RESYNCED, Reason.WRONG_CODE, Reason.REPLAY
LOCKED, PENDING, MALFORMED = Reason.LOCKED, Reason.RESYNC_PENDING, Reason.MALFORMED
STEADY, ENROL, ASSIGN = Mode.STEADY, Mode.ENROL, Mode.ASSIGN


def case(name: str, state: TokenState, code: str, reason: Reason, new: TokenState, *mode: Mode):
    """One row: the state before, the code typed at NOW (in ``mode``, else steady), the reason
    expected (an accept for ok and resynced, a reject otherwise) and the state after."""
    outcome = ACCEPT if reason in (OK, RESYNCED) else REJECT
    return pytest.param(state, code, *(mode or (STEADY,)), outcome, reason, new, id=name)


def accepted(step: int) -> TokenState:
    """The state once ``step`` is accepted: failures and resync cleared, the drift learned."""
    return S(last_step=step, drift=step - N)


def failed(fails: int = 1, **state: float) -> TokenState:
    return S(fail_count=fails, **state)


def locked(fails: int, seconds: float) -> TokenState:
    """``fails`` failures, locked until ``seconds`` after NOW (a negative number: expired)."""
    return S(fail_count=fails, locked_until=NOW + seconds)


def pending(offset: int, at: float, fails: int = 1, **state: float) -> TokenState:
    """A first resync code ``offset`` steps from now, typed at ``at``, waiting for a second."""
    return S(fail_count=fails, resync_step=N + offset, resync_offset=offset, resync_at=at, **state)


USED = S(last_step=N)  # the current step was accepted already
FIRST_40 = pending(40, NOW - 20, fails=0)  # a first resync code 40 steps ahead, 20 s ago
LATE_40 = pending(40, NOW - 301, fails=0)  # ... more than resync_timeout ago
RECENT_40 = pending(40, NOW - 5, fails=0)
ASSIGN_PENDING = pending(7, NOW, drift=4)

# One row a line: each reads, and fails by its id, on its own.
TOTP_TABLE = [
    case("current step", S0, at(N), OK, accepted(N)),
    case("previous step", S0, at(N - 1), OK, accepted(N - 1)),
    case("next step", S0, at(N + 1), OK, accepted(N + 1)),
    case("replay of the accepted step", USED, at(N), REPLAY, failed(last_step=N)),
    case("older code after a newer one", USED, at(N - 1), REPLAY, failed(last_step=N)),
    case("drift moves the window", S(last_step=N - 10, drift=5), at(N + 6), OK, accepted(N + 6)),
    case("wrong code", S0, wrong_code(KEY, at=NOW), WRONG, failed()),
    case("malformed code", S0, "12a456", MALFORMED, failed()),
    case("too short", S0, "12345", MALFORMED, failed()),
    case("outside window remembered for resync", S0, at(N + 40), PENDING, pending(40, NOW)),
    case("resync completes", pending(40, NOW - 20), at(N + 41), RESYNCED, accepted(N + 41)),
    case("resync: another offset", FIRST_40, at(N + 50), PENDING, pending(50, NOW)),
    case("resync: second code too late", LATE_40, at(N + 41), PENDING, pending(41, NOW)),
    case("resync: same code twice", RECENT_40, at(N + 40), PENDING, pending(40, NOW)),
    case("beyond the resync window", S0, at(N + 121), WRONG, failed()),
    case("enrolment accepts 15 steps away", S0, at(N - 15), OK, accepted(N - 15), ENROL),
    case("enrolment refuses 16 steps away", S0, at(N + 16), WRONG, failed(), ENROL),
    case("assign: 2 steps from drift", S(drift=4), at(N + 6), OK, accepted(N + 6), ASSIGN),
    case("assign: 3 steps off: 2 codes", S(drift=4), at(N + 7), PENDING, ASSIGN_PENDING, ASSIGN),
    case("locked refuses even the right code", locked(5, 1), at(N), LOCKED, locked(5, 1)),
    case("lock expired, right code accepted", locked(5, 0), at(N), OK, accepted(N)),
    case("fifth failure locks for 30 s", failed(4), "99999x", MALFORMED, locked(5, 30)),
    case("sixth failure locks for 60 s", locked(5, -1), "99999x", MALFORMED, locked(6, 60)),
    case("lock is capped at one hour", locked(40, -1), "99999x", MALFORMED, locked(41, 3600)),
]


@pytest.mark.parametrize(("state", "code", "mode", "outcome", "reason", "new"), TOTP_TABLE)
def test_totp_rules(state, code, mode, outcome, reason, new) -> None:
    d = verify(T, state, code, NOW, Policy(), mode)
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
AT_4 = S(last_step=4)
HOTP_PENDING_40 = failed(last_step=4, resync_step=40, resync_offset=0, resync_at=NOW)
HOTP_FIRST_40 = S(last_step=4, resync_step=40, resync_offset=0, resync_at=NOW - 10)
HOTP_TABLE = [
    case("next counter", AT_4, hotp(KEY, 5), OK, S(last_step=5)),
    case("look-ahead 10", AT_4, hotp(KEY, 15), OK, S(last_step=15)),
    case("used counter", AT_4, hotp(KEY, 4), WRONG, failed(last_step=4)),
    case("beyond look-ahead: pending", AT_4, hotp(KEY, 40), PENDING, HOTP_PENDING_40),
    case("the next code resyncs", HOTP_FIRST_40, hotp(KEY, 41), RESYNCED, S(last_step=41)),
    case("beyond 100: wrong", AT_4, hotp(KEY, 106), WRONG, failed(last_step=4)),
]


@pytest.mark.parametrize(("state", "code", "mode", "outcome", "reason", "new"), HOTP_TABLE)
def test_hotp_rules(state, code, mode, outcome, reason, new) -> None:
    d = verify(H, state, code, NOW, Policy(), mode)
    assert (d.outcome, d.reason, d.state) == (outcome, reason, new)


USED_6 = S(last_step=N + 6)
RESYNC_TABLE = [
    pytest.param(S0, at(N + 100), at(N + 101), ACCEPT, accepted(N + 101), id="100 steps ahead"),
    pytest.param(locked(9, 999), at(N - 3), at(N - 2), ACCEPT, accepted(N - 2), id="clears a lock"),
    pytest.param(S0, at(N + 5), at(N + 7), REJECT, failed(), id="not consecutive"),
    pytest.param(S0, at(N + 6), at(N + 5), REJECT, failed(), id="reversed order"),
    pytest.param(USED_6, at(N + 5), at(N + 6), REJECT, failed(last_step=N + 6), id="used steps"),
]


@pytest.mark.parametrize(("state", "c1", "c2", "outcome", "new"), RESYNC_TABLE)
def test_two_code_resync(state, c1, c2, outcome, new) -> None:
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
