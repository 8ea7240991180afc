"""Self-service methods: enrol an app or programmable token, verify it, remove it, and claim a
classic token from the inventory by serial *and* a current code.

Enrolment is "Configure app without notifications": the server makes a standard TOTP secret,
shows it as an ``otpauth://`` QR code and a grouped manual key, and activates the method only
after one correct code within ±15 steps (docs/design.md §4): a mistyped key or a token with a wrong
clock never becomes a method that locks its owner out.

Every operation returns records; the REST routes and the pages shape them (keyfob.server.views).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from keyfob.otp import Algorithm, Credential, OtpType, generate_secret
from keyfob.otp.hotp import check_digits
from keyfob.otp.verify import Decision, Mode, Reason, unlock, verify
from keyfob.server import auditlog, claims, decoy, directory
from keyfob.server.accounts import user_named
from keyfob.server.context import ServerContext
from keyfob.server.decisions import apply_decision, resync_codes
from keyfob.server.errors import CodeRejected, Conflict, Gone, NotFound, ServiceError
from keyfob.server.inputs import check_serial
from keyfob.server.store import repo
from keyfob.server.store.records import (
    Enrolment,
    TokenRecord,
    UserRecord,
    otp_shape,
    state_values,
)
from keyfob.server.store.vocab import ENROLLABLE, TokenKind, TokenStatus

PERIODS = (30, 60)
DEFAULT_LABELS = {
    TokenKind.APP: "Authenticator app",
    TokenKind.PROGRAMMABLE: "Hardware token",
    TokenKind.CLASSIC: "Hardware token",
}


def _user(conn: Connection, username: str) -> UserRecord:
    """The user, who must be enabled to add or change methods."""
    user = user_named(conn, username)
    if user.disabled:
        raise ServiceError(
            f"user {user.username!r} is disabled", hint="an admin can enable the user again"
        )
    return user


def check_method_limit(ctx: ServerContext, conn: Connection, user: UserRecord) -> None:
    """Refuse a method past ``KEYFOB_MAX_METHODS`` (expired enrolments no longer count)."""
    repo.delete_expired_pending(conn, ctx.now_dt())
    if repo.count_methods(conn, user.id) >= ctx.settings.max_methods:
        raise Conflict(
            f"user {user.username!r} already has {ctx.settings.max_methods} methods",
            hint="remove one of the user's methods first (KEYFOB_MAX_METHODS sets the limit)",
        )


def list_methods(ctx: ServerContext, username: str) -> list[TokenRecord]:
    with ctx.begin() as conn:
        user = user_named(conn, username)
        repo.delete_expired_pending(conn, ctx.now_dt())
        return repo.tokens_of(conn, user.id)


def get_method(ctx: ServerContext, username: str, token_id: str) -> TokenRecord:
    """One of the user's methods, or the 404 of any method the user does not have."""
    with ctx.engine.connect() as conn:
        return _owned(conn, user_named(conn, username), token_id)


def begin(
    ctx: ServerContext,
    username: str,
    kind: str,
    *,
    label: str | None = None,
    algorithm: str = "SHA1",
    digits: int = 6,
    period: int = 30,
    actor: str,
    client: str | None = None,
) -> Enrolment:
    """Start an enrolment; the answer carries the secret once, for the QR code and the burner."""
    if kind not in ENROLLABLE:
        raise ServiceError(
            f"kind {kind!r} cannot be enrolled",
            hint="use app or programmable; classic tokens are imported and assigned",
        )
    enrollable = TokenKind(kind)
    alg = Algorithm.parse(algorithm)
    check_digits(digits)
    if period not in PERIODS:
        raise ServiceError(f"period {period} is not 30 or 60", hint="use 30 (the usual) or 60")
    secret = generate_secret(alg)
    token_id = repo.new_id()
    now_dt = ctx.now_dt()
    directory.require(ctx, username)  # a directory user's first enrolment creates their row
    with ctx.begin() as conn:
        user = _user(conn, username)
        check_method_limit(ctx, conn, user)
        values = repo.token_values(
            id=token_id,
            kind=enrollable,
            type=OtpType.TOTP,
            algorithm=alg,
            digits=digits,
            period=period,
            secret_enc=ctx.seal(conn, secret, token_id),
            owner_id=user.id,
            label=(label or DEFAULT_LABELS[enrollable]).strip()[:255],
            state=TokenStatus.PENDING,
            created_at=now_dt,
            expires_at=now_dt + timedelta(seconds=ctx.settings.enrol_ttl),
        )
        repo.insert_token(conn, values)
        what = {"token_id": token_id, "kind": enrollable}
        auditlog.success(conn, ctx, "token.enrol.begin", actor, client, user.username, **what)
    return _enrolment(ctx, user, TokenRecord.from_row(repo.Row(values)), secret)


def _enrolment(
    ctx: ServerContext, user: UserRecord, token: TokenRecord, secret: bytes
) -> Enrolment:
    assert token.expires_at is not None  # every pending token has one
    issuer, account = ctx.settings.issuer, user.username
    cred = Credential(secret, issuer=issuer, account=account, **otp_shape(token))
    return Enrolment(token.id, token.kind, token.label, cred, token.expires_at)


def _still_pending(ctx: ServerContext, token: TokenRecord) -> None:
    """A method can be scanned and verified only while its enrolment is pending."""
    if token.state is TokenStatus.ACTIVE:
        raise Conflict(
            "this method is already set up",
            hint="it is ready to use; there is nothing to scan or verify",
        )
    if token.state is not TokenStatus.PENDING:
        raise Conflict(f"this method is {token.state}", hint="remove it and set up a new one")
    if token.expires_at is None or token.expires_at.timestamp() < ctx.now():
        raise Gone("this enrolment expired", hint="start again to get a new QR code")


def pending_enrolment(ctx: ServerContext, username: str, token_id: str) -> Enrolment:
    """The QR code and key of a pending enrolment again (the owner's own, until it expires)."""
    with ctx.engine.connect() as conn:
        user = _user(conn, username)
        token = _owned(conn, user, token_id)
    _still_pending(ctx, token)
    return _enrolment(ctx, user, token, ctx.ring.open(token.secret_enc, token.id))


def rename(
    ctx: ServerContext,
    username: str,
    token_id: str,
    label: str,
    *,
    actor: str,
    client: str | None = None,
) -> None:
    label = label.strip()
    if not label or len(label) > 64:
        raise ServiceError(
            "a name is 1 to 64 characters", hint="type a short name, e.g. 'phone' or 'red key'"
        )
    with ctx.begin() as conn:
        user = _user(conn, username)
        token = _owned(conn, user, token_id)
        repo.update_token(conn, token.id, label=label)
        who = (actor, client, user.username, token.serial)
        auditlog.success(conn, ctx, "token.rename", *who, token_id=token.id)


def resync_method(
    ctx: ServerContext,
    username: str,
    token_id: str,
    first_code: str,
    second_code: str,
    *,
    actor: str,
    client: str | None = None,
) -> TokenRecord:
    """Self-service resync: two consecutive codes from one of the user's own methods."""
    with ctx.begin() as conn:
        user = _user(conn, username)
        token = _owned(conn, user, token_id)
        ok, decision = resync_codes(
            conn, ctx, token, first_code, second_code, actor=actor, client=client
        )
    if not ok:
        raise CodeRejected(
            "the two codes were not accepted", hint="type two codes shown one after the other"
        )
    return dataclasses.replace(token, verification=decision.state)


def _owned(conn: Connection, user: UserRecord, token_id: str) -> TokenRecord:
    token = repo.get_token(conn, token_id)
    if token is None or token.owner_id != user.id:
        raise NotFound(
            f"user {user.username!r} has no method {token_id!r}",
            hint="pick one from the user's list of methods (it shows each method's id)",
        )
    return token


def verify_enrolment(
    ctx: ServerContext,
    username: str,
    token_id: str,
    code: str,
    *,
    serial: str | None = None,
    actor: str,
    client: str | None = None,
) -> TokenRecord:
    """ "Verify now": one correct code (±15 steps) activates the method and records the drift.

    ``serial`` is the one printed on a programmable token (the burner reads it from the card):
    kept as ``reported_serial``, a label that is the user's word, not the vendor's. It is never
    an inventory serial, so a self-service user cannot take a serial that a later seed file
    holds (the import wins, always), and no answer depends on whether a serial exists."""
    with ctx.begin() as conn:
        user = _user(conn, username)
        token = _owned(conn, user, token_id)
        _still_pending(ctx, token)
        if serial is not None:
            # The user's word, kept apart from inventory serials: never looked up, never
            # unique, so it can neither tell whether a serial exists nor block an import.
            serial = check_serial(serial)
        secret = ctx.ring.open(token.secret_enc, token.id)
        decision = verify(
            token.params(secret), token.verification, code, ctx.now(), ctx.policy, Mode.ENROL
        )
        active: dict[str, Any] = {
            "state": TokenStatus.ACTIVE,
            "activated_at": ctx.now_dt(),
            "expires_at": None,
        }
        if serial:
            active["reported_serial"] = serial
        ok = apply_decision(
            conn,
            ctx,
            token,
            decision,
            action="token.enrol.verify",
            actor=actor,
            client=client,
            target_user=user.username,
            extra=active,
            details={"kind": token.kind},
        )
    if not ok:
        raise _verify_refused()
    return dataclasses.replace(token, verification=decision.state, **active)


def _verify_refused() -> CodeRejected:
    """The one answer to a failed "Verify now", whatever the reason (wrong code, a pending
    token locked by earlier wrong codes, a lost race)."""
    return CodeRejected(
        "the code was not accepted",
        hint="wait for the next code and type it; if it still fails, check the clock of the "
        "phone or token, or wait a minute after several wrong codes",
    )


def remove(
    ctx: ServerContext, username: str, token_id: str, *, actor: str, client: str | None = None
) -> None:
    """Remove a method. A classic token goes back to the inventory (its seed is the vendor's);
    an app or programmable enrolment is deleted."""
    with ctx.begin() as conn:
        user = user_named(conn, username)
        token = _owned(conn, user, token_id)
        if token.kind is TokenKind.CLASSIC:
            repo.update_token(conn, token.id, **released(token))
            action = "token.unassign"
        else:
            repo.delete_token(conn, token.id)
            action = "token.delete"
        who = (actor, client, user.username, token.serial)
        auditlog.success(conn, ctx, action, *who, token_id=token.id, kind=token.kind)


def released(token: TokenRecord) -> dict[str, Any]:
    """Back to the inventory, unlocked. ``last_step`` is kept: codes already used must never
    become valid again. The learned drift is kept too: it belongs to the token's clock, not to
    its owner."""
    return {
        "owner_id": None,
        "label": "",
        "last_used_at": None,
        **state_values(unlock(token.verification)),
    }


def self_assign(
    ctx: ServerContext,
    username: str,
    serial: str,
    code: str,
    *,
    label: str | None = None,
    actor: str,
    client: str | None = None,
) -> TokenRecord:
    """Claim an inventory token with its serial *and* a current code (±2 steps of the
    imported drift, else two consecutive codes).

    Every failed claim gets the one answer of :func:`_claim_refused`, after the same work (a
    decoy check where there is no token to check), so serials cannot be probed. Wrong claims
    never touch the stock token — not its failure count, not its lock — or anyone could lock
    the whole stock; guessing is bounded per claimant instead (keyfob.server.claims)."""
    now = ctx.now()
    serial = check_serial(serial)  # before SQL: a 300-character serial is a 400, not a 500
    with ctx.begin() as conn:
        user = _user(conn, username)
        repo.lock_user(conn, user.id)  # this user's claims are counted one at a time
        check_method_limit(ctx, conn, user)
        wait = claims.retry_after(conn, ctx, user.username, client)
        token = None
        if not wait:
            token = _claim(conn, ctx, user, serial, code, now, label, actor, client)
    if wait:
        raise claims.refuse(ctx, user.username, serial, wait, actor=actor, client=client)
    if token is None:
        raise _claim_refused()
    return token


def _claim_refused() -> CodeRejected:
    """The one answer to every failed claim: unknown serial, token assigned (to anyone, the
    claimant too), disabled, wrong or malformed code, a near miss remembered for the two-code
    resync, a stale lock. The hint covers the two-code case without saying it happened."""
    return CodeRejected(
        "serial or code not accepted",
        hint="check the serial on the back of the token and type the code it shows now; if "
        "that is refused too, wait for its next code and type that (a token whose clock is "
        "off needs two)",
    )


def _claim(
    conn: Connection,
    ctx: ServerContext,
    user: UserRecord,
    serial: str,
    code: str,
    now: float,
    label: str | None,
    actor: str,
    client: str | None,
) -> TokenRecord | None:
    """Check one claim and record it; the token when it is now the claimant's."""
    token = repo.get_token_by_serial(conn, serial)
    decision = None
    if token is not None and token.owner_id is None and token.state is TokenStatus.ACTIVE:
        secret = ctx.ring.open(token.secret_enc, token.id)
        # The token's own failures and lock are not the claimant's: checked as if unlocked.
        fresh = dataclasses.replace(token.verification, fail_count=0, locked_until=0.0)
        decision = verify(token.params(secret), fresh, code, now, ctx.policy, Mode.ASSIGN)
    else:
        decoy.check(code, now, ctx.policy, Mode.ASSIGN)  # the work of checking a code
    if token is None or decision is None or not _keeps_state(decision):
        decoy.write(conn, ctx.now_dt())  # a claim's compare-and-set, on no row
        reason = "not_available" if decision is None else decision.reason.value
        who = (actor, client, user.username, serial)
        auditlog.write(conn, auditlog.event(ctx, claims.ACTION, "failure", *who, reason=reason))
        return None
    return _record_claim(conn, ctx, user, token, decision, label, actor, client)


def _keeps_state(decision: Decision) -> bool:
    """What a claim may store on a stock token: all of it on success (it becomes the
    claimant's), a near miss remembered for the two-code resync; nothing else."""
    return decision.accepted or decision.reason is Reason.RESYNC_PENDING


def _record_claim(
    conn: Connection,
    ctx: ServerContext,
    user: UserRecord,
    token: TokenRecord,
    decision: Decision,
    label: str | None,
    actor: str,
    client: str | None,
) -> TokenRecord | None:
    claimed: dict[str, Any] = {}
    if decision.accepted:
        claimed = {
            "owner_id": user.id,
            "label": (label or DEFAULT_LABELS[TokenKind.CLASSIC])[:255],
            "activated_at": ctx.now_dt(),
        }
    else:  # a near miss: only the resync columns change, never fail_count or locked_until
        kept = token.verification
        decision = dataclasses.replace(
            decision,
            state=dataclasses.replace(
                decision.state, fail_count=kept.fail_count, locked_until=kept.locked_until
            ),
        )
    ok = apply_decision(
        conn,
        ctx,
        token,
        decision,
        action=claims.ACTION,
        actor=actor,
        client=client,
        target_user=user.username,
        extra=claimed,
    )
    if not ok:
        return None
    return dataclasses.replace(token, owner=user.username, verification=decision.state, **claimed)
