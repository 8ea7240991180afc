"""Burn one credential into one token: get info → authenticate → write config with this
machine's UTC clock → write seed → read back. A lost link is retried (up to 3 times, each with a
fresh challenge); a timeout is never taken for success; a restricted-sync token left without a
seed is said so plainly."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from keyfob.burn.check import CheckResult, check_code
from keyfob.burn.errors import (
    BurnFailed,
    BurnRefused,
    SeedErased,
    TokenKeptLeaving,
    TokenSwapped,
)
from keyfob.burn.source import check_fits
from keyfob.burn.ui import Ui
from keyfob.otp import Credential
from keyfob.token.connection import Connection
from keyfob.token.crypto import MOLTO2_DEFAULT_CUSTOMER_KEY
from keyfob.token.errors import TokenError, TransportLost, UnknownModel
from keyfob.token.models import Family
from keyfob.token.session import Molto2Session, SingleProfileSession

RETRIES = 3
CLOCK_TOLERANCE = 2  # seconds between the clock we wrote and the one we read back


@dataclass(frozen=True)
class BurnResult:
    serial: str
    model: str
    family: Family
    profile: int | None
    clock_before: int  # device clock before the burn
    clock_offset_before: int  # seconds, device minus this machine
    check: CheckResult | None = None


@dataclass
class BurnOptions:
    family: Family = Family.SINGLE
    profile: int | None = None  # Molto2; None = first free
    title: str | None = None
    overwrite: bool = False
    customer_key: bytes = MOLTO2_DEFAULT_CUSTOMER_KEY
    retries: int = RETRIES


@dataclass
class _Progress:
    """What the attempts so far did to the token. It outlives each attempt so that the final
    error tells the truth: a seed erased by the first attempt is still erased when the last one
    fails before reaching the clock write."""

    attempts: int = 0
    serial: str | None = None
    erased_on: str | None = None  # the model whose clock write erased the seed, until one is back


def burn(
    conn: Connection,
    cred: Credential,
    opts: BurnOptions,
    ui: Ui,
    clock: Callable[[], float] = time.time,
) -> BurnResult:
    """Write ``cred`` into the token on ``conn``; raises on anything but a confirmed burn."""
    check_fits(cred, opts.family)
    progress = _Progress()
    while True:
        progress.attempts += 1
        try:
            if opts.family is Family.MOLTO2:
                return _burn_molto2(conn, cred, opts, ui, clock)
            return _burn_single(conn, cred, ui, clock, progress)
        except TransportLost as exc:
            if progress.attempts > opts.retries:
                raise _gave_up(progress) from None
            ui.warn(
                f"lost the token ({exc.message}); hold the token still — retrying "
                f"({progress.attempts}/{opts.retries})"
            )
            # the next attempt reports it
            with contextlib.suppress(TransportLost):
                conn.reconnect()
        except TokenError as exc:
            if progress.erased_on is None:
                raise
            raise _erased(progress, f"the burn failed ({exc.message})") from None


def _gave_up(progress: _Progress) -> BurnFailed:
    """The error after the last lost link: erased seed or not is what the person must know."""
    if progress.erased_on is not None:
        cause = f"the token kept leaving the reader ({progress.attempts} attempts)"
        return _erased(progress, cause)
    return TokenKeptLeaving(attempts=progress.attempts, serial=progress.serial)


def _erased(progress: _Progress, cause: str) -> SeedErased:
    assert progress.erased_on is not None
    return SeedErased(
        model=progress.erased_on,
        cause=cause,
        attempts=progress.attempts,
        serial=progress.serial,
    )


def _burn_single(
    conn: Connection,
    cred: Credential,
    ui: Ui,
    clock: Callable[[], float],
    progress: _Progress,
) -> BurnResult:
    session = SingleProfileSession(conn)
    info = session.get_info()
    progress.serial = info.serial
    if info.model is None:
        raise UnknownModel(
            f"serial {info.serial} is not a known single-profile programmable token",
            hint="keyfob writes only to models it knows (OTPC-P1/P2, miniOTP-2/3, C301/C302); "
            "for a Molto2 pass --profile N",
        )
    model = info.model
    offset = info.clock - int(clock())
    note = " (restricted sync: writing the clock erases the seed)" if model.restricted_sync else ""
    ui.say(f"{model.name} {info.serial}: clock {offset:+d} s{note}")
    session.authenticate()
    written = session.write_config(clock=int(clock()), algorithm=cred.algorithm, period=cred.period)
    if model.restricted_sync:
        progress.erased_on = model.name
    session.write_seed(cred.secret)
    progress.erased_on = None
    after = session.get_info()
    if after.serial != info.serial:
        raise TokenSwapped(expected=info.serial, found=after.serial)
    if abs(after.clock - int(clock())) > CLOCK_TOLERANCE:
        raise BurnFailed(
            f"the token's clock reads {after.clock - int(clock()):+d} s after "
            f"being set to {written}",
            hint="burn again",
            serial=info.serial,
        )
    return BurnResult(info.serial, model.name, Family.SINGLE, None, info.clock, offset)


def _burn_molto2(
    conn: Connection, cred: Credential, opts: BurnOptions, ui: Ui, clock: Callable[[], float]
) -> BurnResult:
    session = Molto2Session(conn, opts.customer_key)
    info = session.get_info()
    profiles = session.profiles(100)
    if opts.profile is None:
        free = [pr.index for pr in profiles if not pr.occupied]
        if not free:
            raise BurnRefused(
                "every profile of this Molto2 holds a seed",
                hint="choose one with --profile N --overwrite",
            )
        index = free[0]
    else:
        index = opts.profile
        if index >= len(profiles):
            raise BurnRefused(f"this Molto2 has profiles 0 to {len(profiles) - 1}")
        if profiles[index].occupied and not opts.overwrite:
            title = f" ({profiles[index].title})" if profiles[index].title else ""
            raise BurnRefused(
                f"profile {index}{title} already holds a seed",
                hint="pass --overwrite to replace it",
            )
    offset = info.clock - int(clock())
    ui.say(f"Molto2 {info.serial}: profile {index}, clock {offset:+d} s")
    session.authenticate()
    session.write_config(
        index, clock=int(clock()), algorithm=cred.algorithm, digits=cred.digits, period=cred.period
    )
    session.write_seed(index, cred.secret)
    label = (opts.title or cred.issuer or cred.account or "keyfob").encode("utf-8")[:12]
    session.write_title(index, label.decode("utf-8", errors="ignore") or "keyfob")
    back = session.read_profile(index)
    if not back.occupied or back.digits != cred.digits or back.period != cred.period:
        raise BurnFailed(
            f"profile {index} does not read back as written", hint="burn again", serial=info.serial
        )
    return BurnResult(info.serial, "Molto2", Family.MOLTO2, index, info.clock, offset)


def ask_and_check(
    cred: Credential, ui: Ui, clock: Callable[[], float] = time.time, tries: int = 2
) -> tuple[CheckResult, str]:
    """ "Press the button and type the code shown" (twice at most); returns the result and the
    typed code (the enrolment needs it)."""
    result, typed = CheckResult(False, None), ""
    for attempt in range(tries):
        prompt = (
            "Press the token's button and type the code it shows"
            if attempt == 0
            else "That did not match. Press the button again and type the new code"
        )
        typed = ui.ask_code(prompt)
        result = check_code(cred, typed, clock())
        if result.ok:
            break
    return result, typed
