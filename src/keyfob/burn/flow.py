"""One token, start to finish. The single ``keyfob burn`` and every row of ``keyfob burn batch``
run this one function, so the two cannot drift apart again::

    begin (the server makes the secret, when enrolling) → check fits → burn
        → ask for the code shown and check it → verify on the server

Once the server holds a pending enrolment, any failure — a refusal, a lost token, a wrong code,
a server error, Ctrl-C — cancels it before the error goes on: a half-made method would otherwise
sit in the user's list, and count against their limit, until it expires.

What can be refused without the server or the token (an SHA512 QR code, a 45-second period) is
refused first, so that nothing is created and no reader is waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from keyfob.burn.burner import BurnOptions, BurnResult, ask_and_check, burn
from keyfob.burn.check import CheckResult
from keyfob.burn.enroll import EnrollClient
from keyfob.burn.errors import CodeMismatch, EnrollError, TokenSwapped
from keyfob.burn.source import check_fits
from keyfob.burn.ui import Ui
from keyfob.otp import Algorithm, Credential, parse_secret
from keyfob.token.connection import Connection

CODE_TRIES = 2  # a stale code on the display is common; a third miss is not
ISSUER = "keyfob"  # the label of a server-made secret (a Molto2 profile title)

OpenToken = Callable[[], AbstractContextManager[Connection]]


@dataclass(frozen=True)
class Enrol:
    """Enrol the burned token for ``user`` on the server behind ``client``; the server makes
    the secret, with this algorithm and period."""

    client: EnrollClient
    user: str
    label: str = "Hardware token"
    algorithm: Algorithm = Algorithm.SHA1
    period: int = 30


@dataclass(frozen=True)
class TokenJob:
    """What one token gets: a credential we hold, or an enrolment whose secret the server
    makes. ``expect_serial`` is the serial already read (a batch reads it while it waits)."""

    source: Credential | Enrol
    options: BurnOptions = field(default_factory=BurnOptions)
    check: bool = True
    expect_serial: str | None = None


@dataclass(frozen=True)
class _Pending:
    """An enrolment the server holds as pending until the burned token's code verifies it."""

    enrol: Enrol
    token_id: str


@dataclass(frozen=True)
class TokenOutcome:
    burned: BurnResult
    credential: Credential  # the secret burned: in memory only (its repr leaves it out)
    check: CheckResult | None  # None with --no-check
    enrolled: dict[str, Any] | None  # the server's answer to verify, when enrolling


def burn_token(
    job: TokenJob, open_token: OpenToken, ui: Ui, clock: Callable[[], float] = time.time
) -> TokenOutcome:
    """Run the whole flow for one token; ``open_token`` gives the connection (and may wait for
    the token) only once the credential is known to fit."""
    _check_fits_early(job)
    if isinstance(job.source, Credential):
        return _burn_and_confirm(job, job.source, open_token, ui, clock, None)
    enrol = job.source
    begun = enrol.client.begin(
        enrol.user, enrol.label, period=enrol.period, algorithm=enrol.algorithm.value
    )
    pending = _Pending(enrol, str(begun["id"]))
    try:
        cred = _server_credential(begun, enrol.user)
        return _burn_and_confirm(job, cred, open_token, ui, clock, pending)
    except BaseException:  # Ctrl-C too: the pending method must not outlive this burn
        _cancel(pending, ui)
        raise


def _check_fits_early(job: TokenJob) -> None:
    """Refuse before the server creates anything: a server-made secret has the algorithm,
    period and length (the hash's output) asked for, so whether it fits is known already."""
    if isinstance(job.source, Credential):
        check_fits(job.source, job.options.family)
        return
    enrol = job.source
    size = enrol.algorithm.default_secret_length
    shape = Credential(secret=bytes(size), algorithm=enrol.algorithm, period=enrol.period)
    check_fits(shape, job.options.family)


def _server_credential(begun: dict[str, Any], user: str) -> Credential:
    try:
        return Credential(
            secret=parse_secret(begun["secret"], "base32"),
            issuer=ISSUER,
            account=user,
            algorithm=Algorithm(begun["algorithm"]),
            digits=int(begun["digits"]),
            period=int(begun["period"]),
        )
    except (KeyError, TypeError, ValueError):
        raise EnrollError(
            "the server's answer to begin an enrolment lacks a usable secret, algorithm, "
            "digits or period",
            hint="is --enroll the URL of a keyfob server of the same version?",
        ) from None


def _burn_and_confirm(
    job: TokenJob,
    cred: Credential,
    open_token: OpenToken,
    ui: Ui,
    clock: Callable[[], float],
    pending: _Pending | None,
) -> TokenOutcome:
    check_fits(cred, job.options.family)  # the server's answer, before the token is touched
    with open_token() as conn:
        result = burn(conn, cred, job.options, ui, clock)
    if job.expect_serial is not None and result.serial != job.expect_serial:
        raise TokenSwapped(expected=job.expect_serial, found=result.serial)
    profile = f" profile {result.profile}" if result.profile is not None else ""
    ui.say(
        f"burned {result.model} {result.serial}{profile}; its clock was "
        f"{result.clock_offset_before:+d} s off and is now set"
    )
    check, code = _confirm_code(job, cred, result, ui, clock)
    enrolled = None
    if pending is not None:
        enrol, token_id = pending.enrol, pending.token_id
        enrolled = enrol.client.verify(enrol.user, token_id, code, result.serial)
        ui.say(f"enrolled for {enrol.user} on {enrol.client.url}: method {token_id} is active")
    return TokenOutcome(result, cred, check, enrolled)


def _confirm_code(
    job: TokenJob, cred: Credential, result: BurnResult, ui: Ui, clock: Callable[[], float]
) -> tuple[CheckResult | None, str]:
    """The code the server verifies: the one typed from the token's display, or — with
    ``--no-check`` — the one the secret gives now."""
    if not job.check:
        return None, cred.code(at=clock())
    check, typed = ask_and_check(cred, ui, clock, tries=CODE_TRIES)
    if not check.ok:
        raise CodeMismatch(serial=result.serial, tries=CODE_TRIES)
    ui.say(check.describe(cred.period))
    return check, typed


def _cancel(pending: _Pending, ui: Ui) -> None:
    enrol = pending.enrol
    if enrol.client.cancel(enrol.user, pending.token_id):
        ui.warn(f"cancelled the pending enrolment for {enrol.user}")
    else:
        ui.warn(
            f"could not cancel the pending enrolment for {enrol.user}: it expires by itself, "
            "or remove it on the server"
        )
