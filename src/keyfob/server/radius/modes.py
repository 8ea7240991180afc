"""What an authenticated Access-Request gets: Accept, Reject or Challenge (docs/design.md §6.4).

Every code goes through :func:`keyfob.server.validation.validate`, the engine and audit row of
``POST /api/v1/validate`` (replay, drift, lockout, equal work for every refusal); the actor is
``radius:<client name>`` and the audit's client column the NAS-IP-Address (or the sender).

A refusal that never reaches a code check — a wrong password, a rate-limited one, a State that
is unknown, expired, used or someone else's — does the work of one (:mod:`keyfob.server.decoy`)
and writes the same audit row as a refused validation, so that neither the answer nor its
timing tells a wrong password from a wrong code or an unknown user. The answer is always the
one :data:`REJECT`; only a method keyfob does not speak (CHAP, MS-CHAP, EAP) gets a
Reply-Message saying why, because that is the administrator's mistake, not the user's.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection

from keyfob.server import accounts, auditlog, decoy, directory, tap
from keyfob.server.context import ServerContext
from keyfob.server.directory import DirectoryUnavailable
from keyfob.server.radius import store
from keyfob.server.radius.clients import KnownClient, Mode
from keyfob.server.radius.packets import Answer, Code, Drop, DropReason, Request
from keyfob.server.store import repo
from keyfob.server.store.records import UserRecord
from keyfob.server.validation import validate
from keyfob.server.web.ratelimit import LoginLimiter

CHALLENGE_TTL = 120
CHALLENGE_MESSAGE = "Enter the code shown on your token"
DEFAULT_DIGITS = 6

REJECT = Answer(Code.ACCESS_REJECT)
ACCEPT = Answer(Code.ACCESS_ACCEPT)
_UNSUPPORTED = {
    "chap": "keyfob accepts PAP only: CHAP is not supported, set this client to PAP",
    "mschap": "keyfob accepts PAP only: MS-CHAP is not supported, set this client to PAP",
    "eap": "keyfob accepts PAP only: EAP is not supported, set this client to PAP",
    "none": "no User-Password in the request: keyfob accepts PAP only",
}


def _may_use_password(_: Connection, user: UserRecord) -> bool:
    """A one-time password (set by an admin) is not the user's own: it must be changed first."""
    return not user.must_change_password


def _state_hash(state: bytes) -> str:
    return hashlib.sha256(b"keyfob-radius-state" + state).hexdigest()


@dataclass
class Decider:
    """Turns an authenticated request into an answer; shared by every worker thread."""

    ctx: ServerContext
    limiter: LoginLimiter

    def decide(self, client: KnownClient, request: Request, source: str) -> Answer:
        if request.method != "pap":
            return Answer(Code.ACCESS_REJECT, _UNSUPPORTED[request.method])
        try:
            return self._decide(client, request, source)
        except DirectoryUnavailable:
            # Not "wrong": no answer at all, so that the NAS asks another RADIUS server.
            raise Drop(DropReason.DIRECTORY_UNAVAILABLE) from None

    def _decide(self, client: KnownClient, request: Request, source: str) -> Answer:
        call = _Call(self, client, request, source)
        username = request.user_name
        if username is None or request.password is None:
            return call.refuse(username or "", "malformed")
        mode = client.record.mode
        if mode == Mode.PASSWORD_OTP:
            return call.password_and_code(username, request.password)
        if mode == Mode.CHALLENGE:
            if request.state is not None:
                return call.answer_challenge(username, request.state, request.password)
            return call.challenge(username, request.password)
        return call.code(username, request.password)


@dataclass
class _Call:
    """One request's context: who asks, through which client, from where."""

    decider: Decider
    client: KnownClient
    request: Request
    source: str

    @property
    def ctx(self) -> ServerContext:
        return self.decider.ctx

    @property
    def actor(self) -> str:
        return f"radius:{self.client.name}"

    @property
    def nas(self) -> str:
        return self.request.nas_address or self.source

    def code(self, username: str, code: str) -> Answer:
        result = validate(self.ctx, username, code, client=self.nas, actor=self.actor)
        return ACCEPT if result.accepted else REJECT

    def password_and_code(self, username: str, text: str) -> Answer:
        """The password, then the code (or the other way round): split at the token's digit
        count, so a password may end in digits. A user with tokens of two lengths gets each
        split tried, longest code first; a temporary access passcode (20 digits, or 24
        characters with its spaces) before them, where the text ends (starts) like one.

        A directory user's code is checked first (:meth:`code_then_password`)."""
        if directory.is_directory_user(self.ctx, username):
            return self.code_then_password(username, text)
        outcome = "bad_password"
        for digits in self._code_widths(username, text):
            if len(text) <= digits:
                continue
            first, rest = text[:digits], text[digits:]
            password, code = (
                (rest, first)
                if self.client.record.otp_first
                else (
                    text[:-digits],
                    text[-digits:],
                )
            )
            outcome = self.check_password(username, password)
            if outcome == "ok":
                return self.code(username, code)
            if outcome == "rate_limited":
                break
        return self.refuse(username, outcome)

    def code_then_password(self, username: str, text: str) -> Answer:
        """A directory user: the code first, the directory password only after a right one,
        so that a guesser without the token never reaches the directory's own lockout (a
        wrong code costs the token's failure count, never the directory account's). Only the
        longest split is checked (one validation a request): a passcode's, where the user
        holds one and the text ends (starts) like one."""
        for digits in self._code_widths(username, text):
            if len(text) <= digits:
                continue
            if self.client.record.otp_first:
                code, password = text[:digits], text[digits:]
            else:
                password, code = text[:-digits], text[-digits:]
            if not validate(self.ctx, username, code, client=self.nas, actor=self.actor).accepted:
                return REJECT
            outcome = self.check_password(username, password)
            return ACCEPT if outcome == "ok" else self.refuse(username, outcome)
        return self.refuse(username, "bad_password")

    def challenge(self, username: str, password: str) -> Answer:
        """A right password: Access-Challenge with a fresh State, kept in the database."""
        outcome = self.check_password(username, password)
        if outcome != "ok":
            return self.refuse(username, outcome)
        state = secrets.token_bytes(16)
        now = self.ctx.now()
        with self.ctx.begin() as conn:
            store.insert_challenge(
                conn,
                _state_hash(state),
                repo.user_key(username),
                self.client.id,
                now + CHALLENGE_TTL,
                now,
            )
        return Answer(Code.ACCESS_CHALLENGE, CHALLENGE_MESSAGE, state, CHALLENGE_TTL)

    def answer_challenge(self, username: str, state: bytes, code: str) -> Answer:
        """The code with the State: single-use, this user, this client, within 120 s."""
        with self.ctx.begin() as conn:
            taken = store.take_challenge(
                conn, _state_hash(state), repo.user_key(username), self.client.id, self.ctx.now()
            )
        if not taken:
            return self.refuse(username, "bad_state", code)
        return self.code(username, code)

    def check_password(self, username: str, password: str) -> str:
        """``ok``, ``bad_password`` or ``rate_limited`` — counted like the web sign-in."""
        calling = self.request.calling_station or ""
        attempt = self.decider.limiter.attempt(username, f"radius:{self.client.name}:{calling}")
        if not attempt.allowed:
            return "rate_limited"
        user = accounts.authenticate(self.ctx, username, password, eligible=_may_use_password)
        if user is None:
            return "bad_password"
        self.decider.limiter.release(attempt)
        return "ok"

    def _code_widths(self, username: str, text: str) -> list[int]:
        """Where to split a password+code text: the passcode's lengths that fit its shape
        (server/tap.py) when the user holds a live passcode, then the digit counts of the
        user's tokens. Without a pass, a password that ends in digits is not cut short: its
        last 14 digits and a 6-digit code are not taken for a passcode (which would spend the
        request's one validation on a malformed code, and count a failure)."""
        at_start = self.client.record.otp_first
        live = tap.holds_live_pass(self.ctx, username)
        passcode = tap.passcode_widths(text, at_start=at_start) if live else []
        return passcode + self._digit_counts(username)

    def _digit_counts(self, username: str) -> list[int]:
        with self.ctx.engine.connect() as conn:
            _, tokens = repo.active_tokens_of(conn, username)
        return sorted({t.digits for t in tokens}, reverse=True) or [DEFAULT_DIGITS]

    def refuse(self, username: str, reason: str, code: str = "") -> Answer:
        """A refusal without a code check: a decoy check, a compare-and-set on no row, and the
        audit row of a refused validation, in one transaction."""
        decoy.check(code or "0" * DEFAULT_DIGITS, self.ctx.now(), self.ctx.policy)
        with self.ctx.begin() as conn:
            decoy.write(conn, self.ctx.now_dt())
            auditlog.record(
                conn,
                self.ctx,
                actor=self.actor,
                action="validate",
                outcome="failure",
                target_user=username.strip()[:255],
                reason=reason,
                client=self.nas,
            )
        return REJECT
