"""The brute-force bound SECURITY.md states, computed from the real rules (otp.verify with the
default Policy): an attacker who guesses as fast as the lockout lets them gets their guesses
*checked* at most 34 times in the first 24 hours and 24 times in every day after that; each
checked guess of a 6-digit code hits with probability at most 3/10^6 (the ±1 step window)."""

from __future__ import annotations

from keyfob.otp import totp
from keyfob.otp.verify import Policy, Reason, TokenParams, TokenState, verify
from testkit import T0, wrong_code

SECRET = b"brute-force-bound-20"
DAY = 86_400


def _checked_guesses(seconds: int, policy: Policy) -> list[float]:
    """Times at which a wrong guess was actually checked, guessing every second from T0 (the
    best an attacker can do: a refusal while locked changes nothing and is not checked)."""
    params, state, checked = TokenParams(SECRET), TokenState(), []
    now = float(T0)
    while now < T0 + seconds:
        if now < state.locked_until:
            now = state.locked_until  # guessing earlier is refused unchecked (tested below)
            continue
        decision = verify(params, state, wrong_code(SECRET, at=now), now, policy)
        assert decision.reason is Reason.WRONG_CODE and not decision.accepted
        state = decision.state
        checked.append(now - T0)
    return checked


def test_the_lockout_allows_34_checked_guesses_on_the_first_day_then_24_a_day() -> None:
    policy = Policy()
    assert (policy.lockout_threshold, policy.lockout_base, policy.lockout_max) == (5, 30, 3600)
    times = _checked_guesses(3 * DAY, policy)
    first = [t for t in times if t < DAY]
    second = [t for t in times if DAY <= t < 2 * DAY]
    third = [t for t in times if 2 * DAY <= t < 3 * DAY]
    assert len(first) == 34
    assert len(second) == len(third) == 24
    assert len([t for t in times if t < 3600]) == 11  # the first hour (also after a success)


def test_a_guess_while_locked_is_not_checked_and_extends_nothing() -> None:
    params = TokenParams(SECRET)
    locked = TokenState(fail_count=12, locked_until=T0 + 3600)
    right = totp(SECRET, T0)
    decision = verify(params, locked, right, float(T0))
    assert decision.reason is Reason.LOCKED and decision.state == locked


def test_a_checked_guess_can_match_at_most_three_steps() -> None:
    """Window ±1: the codes of 3 steps are accepted at any moment, so a guess hits with
    probability ≤ 3/10^6 (fewer when two steps share a code)."""
    window = Policy().window
    codes = {totp(SECRET, T0 + 30 * k) for k in range(-window, window + 1)}
    params = TokenParams(SECRET)
    for code in codes:
        assert verify(params, TokenState(), code, float(T0)).accepted
    assert len(codes) <= 2 * window + 1 == 3
