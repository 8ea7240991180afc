"""Verification rules (docs/design.md §4) as pure functions: state in, decision and new state out.

Nothing here reads a clock, a database or a lock. The caller passes ``now`` and the token's
current :class:`TokenState`; the :class:`Decision` carries the state to store. The store then
applies it with one compare-and-set, so that the rules stay testable as plain tables and a code
is accepted at most once however many workers race.

Rules, in order:

1. A locked token refuses every code without checking it (same answer as a wrong code).
2. TOTP steady window: a step ``s`` with ``|s - (now_step + drift)| <= window`` and
   ``s > last_step`` (no replay, ever). Acceptance learns the drift.
3. Enrolment: any step within ±``enrol_window`` of now (the drift is recorded from it).
4. Self-assignment of a classic token: ±``assign_window`` around now plus the imported drift,
   otherwise the two-code resync rule.
5. Automatic resync: a code within ±``resync_window`` of the expected step is remembered; a second
   code for a later step with the same offset (±1) within ``resync_timeout`` seconds completes it.
6. HOTP: ``hotp_lookahead`` counters ahead of the last accepted one; resync with two
   consecutive codes within ``hotp_resync_window``.
7. Lockout: after ``lockout_threshold`` consecutive failures, ``lockout_base`` seconds doubling
   per further failure up to ``lockout_max``. Success, completed resync or unlock resets it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from keyfob.otp.credential import OtpType
from keyfob.otp.hotp import Algorithm, match_counter


@dataclass(frozen=True)
class Policy:
    """Verification settings; the defaults are those of docs/design.md §4.2."""

    window: int = 1
    enrol_window: int = 15
    assign_window: int = 2
    resync_window: int = 120
    resync_timeout: float = 300.0
    hotp_lookahead: int = 10
    hotp_resync_window: int = 100
    lockout_threshold: int = 5
    lockout_base: float = 30.0
    lockout_max: float = 3600.0

    def __post_init__(self) -> None:
        if not 0 <= self.window <= 10:
            raise ValueError("window must be 0..10 steps")
        if not 1 <= self.resync_window <= 2880:
            raise ValueError("resync_window must be 1..2880 steps")


@dataclass(frozen=True)
class TokenParams:
    """What the rules need of a token: its secret and its OTP parameters."""

    secret: bytes = dataclasses.field(repr=False)
    type: OtpType = OtpType.TOTP
    algorithm: Algorithm = Algorithm.SHA1
    digits: int = 6
    period: int = 30


@dataclass(frozen=True)
class TokenState:
    """Per-token verification state, persisted by the store.

    ``last_step`` is the highest time step (TOTP) or counter (HOTP) ever accepted; -1 means none.
    A HOTP token imported with counter C starts at ``last_step = C - 1``.
    """

    last_step: int = -1
    drift: int = 0
    fail_count: int = 0
    locked_until: float = 0.0
    resync_step: int | None = None
    resync_offset: int | None = None
    resync_at: float | None = None

    def reset_resync(self) -> TokenState:
        return dataclasses.replace(self, resync_step=None, resync_offset=None, resync_at=None)


class Mode(StrEnum):
    """Which window applies."""

    STEADY = "steady"
    ENROL = "enrol"
    ASSIGN = "assign"


class Outcome(StrEnum):
    """The decision. Only ``ACCEPT`` lets a user in; all others are the same "reject" outside."""

    ACCEPT = "accept"
    REJECT = "reject"


class Reason(StrEnum):
    """Why, for the audit trail (never shown to the person typing the code)."""

    OK = "ok"
    RESYNCED = "resynced"
    WRONG_CODE = "wrong_code"
    REPLAY = "replay"
    LOCKED = "locked"
    RESYNC_PENDING = "resync_pending"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class Decision:
    """The outcome, the reason, the state to store, and the matched step (if any)."""

    outcome: Outcome
    reason: Reason
    state: TokenState
    step: int | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPT


def is_locked(state: TokenState, now: float) -> bool:
    return now < state.locked_until


def unlock(state: TokenState) -> TokenState:
    """Admin unlock: clears failures and any lock, keeps the learned drift."""
    return dataclasses.replace(state, fail_count=0, locked_until=0.0).reset_resync()


def _failure(
    state: TokenState, now: float, policy: Policy, reason: Reason, step: int | None = None
) -> Decision:
    fails = state.fail_count + 1
    locked_until = state.locked_until
    if fails >= policy.lockout_threshold:
        doublings = min(fails - policy.lockout_threshold, 32)
        locked_until = now + min(policy.lockout_base * (2**doublings), policy.lockout_max)
    new = dataclasses.replace(state, fail_count=fails, locked_until=locked_until)
    return Decision(Outcome.REJECT, reason, new, step)


def _accept(state: TokenState, step: int, drift: int, reason: Reason = Reason.OK) -> Decision:
    new = TokenState(last_step=step, drift=drift)
    return Decision(Outcome.ACCEPT, reason, new, step)


def _closest(steps: list[int], center: int) -> int:
    return min(steps, key=lambda s: (abs(s - center), -s))


def _well_formed(code: str, digits: int) -> bool:
    return len(code) == digits and code.isascii() and code.isdigit()


def verify(
    params: TokenParams,
    state: TokenState,
    code: str,
    now: float,
    policy: Policy = Policy(),
    mode: Mode = Mode.STEADY,
    *,
    allow_resync: bool = True,
) -> Decision:
    """Check one code against one token.

    ``allow_resync=False`` checks only the steady window: a user with several tokens is first
    checked that way against all of them (3 HMACs each), and only a code that none accepts pays
    for the ±120-step resync scan.
    """
    if is_locked(state, now):
        return Decision(Outcome.REJECT, Reason.LOCKED, state)
    code = code.strip().replace(" ", "")
    if not _well_formed(code, params.digits):
        return _failure(state, now, policy, Reason.MALFORMED)
    if params.type is OtpType.HOTP:
        return _verify_hotp(params, state, code, now, policy, allow_resync)
    return _verify_totp(params, state, code, now, policy, mode, allow_resync)


def _matches(params: TokenParams, code: str, first: int, last: int) -> list[int]:
    return match_counter(params.secret, code, first, last, params.digits, params.algorithm)


def _verify_totp(
    params: TokenParams,
    state: TokenState,
    code: str,
    now: float,
    policy: Policy,
    mode: Mode,
    allow_resync: bool,
) -> Decision:
    now_step = int(now // params.period)
    if mode is Mode.ENROL:
        center, width = now_step, policy.enrol_window
    elif mode is Mode.ASSIGN:
        center, width = now_step + state.drift, policy.assign_window
    else:
        center, width = now_step + state.drift, policy.window
    in_window = _matches(params, code, center - width, center + width)
    fresh = [s for s in in_window if s > state.last_step]
    if fresh:
        step = _closest(fresh, center)
        return _accept(state, step, step - now_step)
    if in_window:
        return _failure(state, now, policy, Reason.REPLAY, _closest(in_window, center))
    if mode is Mode.ENROL or not allow_resync:
        return _failure(state, now, policy, Reason.WRONG_CODE)
    # The steady window missed: scan the resync range on both sides of it.
    wide = max(width, policy.resync_window)
    hits = _matches(params, code, center - wide, center - width - 1)
    hits += _matches(params, code, center + width + 1, center + wide)
    candidates = [s for s in hits if s > state.last_step]
    if not candidates:
        return _failure(state, now, policy, Reason.WRONG_CODE)
    step = _closest(candidates, center)
    offset = step - now_step
    pending_step, pending_at, pending_offset = (
        state.resync_step,
        state.resync_at,
        state.resync_offset,
    )
    if (
        pending_step is not None
        and pending_at is not None
        and pending_offset is not None
        and now - pending_at <= policy.resync_timeout
        and step > pending_step
        and abs(offset - pending_offset) <= 1
    ):
        return _accept(state, step, offset, Reason.RESYNCED)
    remembered = dataclasses.replace(state, resync_step=step, resync_offset=offset, resync_at=now)
    return _failure(remembered, now, policy, Reason.RESYNC_PENDING, step)


def _verify_hotp(
    params: TokenParams,
    state: TokenState,
    code: str,
    now: float,
    policy: Policy,
    allow_resync: bool,
) -> Decision:
    first = state.last_step + 1
    near = _matches(params, code, first, first + policy.hotp_lookahead)
    if near:
        return _accept(state, near[0], 0)
    if not allow_resync:
        return _failure(state, now, policy, Reason.WRONG_CODE)
    hits = _matches(
        params, code, first + policy.hotp_lookahead + 1, first + policy.hotp_resync_window
    )
    if not hits:
        return _failure(state, now, policy, Reason.WRONG_CODE)
    counter = hits[0]
    pending_step, pending_at = state.resync_step, state.resync_at
    if (
        pending_step is not None
        and pending_at is not None
        and now - pending_at <= policy.resync_timeout
        and counter == pending_step + 1
    ):
        return _accept(state, counter, 0, Reason.RESYNCED)
    remembered = dataclasses.replace(state, resync_step=counter, resync_offset=0, resync_at=now)
    return _failure(remembered, now, policy, Reason.RESYNC_PENDING, counter)


def resync(
    params: TokenParams,
    state: TokenState,
    first_code: str,
    second_code: str,
    now: float,
    policy: Policy = Policy(),
) -> Decision:
    """Admin or self-service resync with two consecutive codes typed at once.

    Ignores a lock (an admin or a signed-in user is doing it) and, on success, clears it.
    """
    codes = [c.strip().replace(" ", "") for c in (first_code, second_code)]
    if not all(_well_formed(c, params.digits) for c in codes):
        return _failure(state, now, policy, Reason.MALFORMED)
    if params.type is OtpType.HOTP:
        first = state.last_step + 1
        last = first + policy.hotp_resync_window
        base = 0
    else:
        now_step = int(now // params.period)
        first = now_step + state.drift - policy.resync_window
        last = now_step + state.drift + policy.resync_window
        base = now_step
    one = set(_matches(params, codes[0], first, last))
    two = _matches(params, codes[1], first, last + 1)
    pairs = [s for s in two if (s - 1) in one and s - 1 > state.last_step]
    if not pairs:
        return _failure(state, now, policy, Reason.WRONG_CODE)
    step = pairs[-1] if params.type is OtpType.HOTP else _closest(pairs, now_step + state.drift)
    return _accept(state, step, step - base if params.type is OtpType.TOTP else 0, Reason.RESYNCED)
