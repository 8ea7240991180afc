"""Self-service methods: enrol an app or programmable token, verify it, remove it, and claim a
classic token from the inventory by serial *and* a current code.

Enrolment is "Configure app without notifications": the server makes a standard TOTP secret,
shows it as an ``otpauth://`` QR code and a grouped manual key, and activates the method only
after one correct code within ±15 steps (design §4) — so a mistyped key or a token with a wrong
clock never becomes a method that locks its owner out.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from keyfob.formats.qr import encode_svg
from keyfob.otp import Algorithm, Credential, build_otpauth, generate_secret, group_key, to_base32
from keyfob.otp.hotp import check_digits
from keyfob.otp.verify import Mode, Reason, verify
from keyfob.server import auditlog
from keyfob.server.context import ServerContext
from keyfob.server.decisions import apply_decision, resync_codes
from keyfob.server.errors import CodeRejected, Conflict, Gone, NotFound, ServiceError
from keyfob.server.store import repo
from keyfob.server.store.records import TokenRecord, UserRecord, state_values
from keyfob.server.views import token_view

KINDS = ("app", "programmable")
DEFAULT_LABELS = {
    "app": "Authenticator app",
    "programmable": "Hardware token",
    "classic": "Hardware token",
}


def _user(conn: Any, username: str) -> UserRecord:
    user = repo.get_user(conn, username)
    if user is None:
        raise NotFound(f"no user {username!r}")
    if user.disabled:
        raise ServiceError(f"user {user.username!r} is disabled")
    return user


def _check_limit(ctx: ServerContext, conn: Any, user: UserRecord) -> None:
    repo.delete_expired_pending(conn, ctx.now_dt())
    if repo.count_methods(conn, user.id) >= ctx.settings.max_methods:
        raise Conflict(
            f"user {user.username!r} already has {ctx.settings.max_methods} methods",
            hint="remove one before adding another",
        )


def list_methods(ctx: ServerContext, username: str) -> list[dict[str, Any]]:
    with ctx.begin() as conn:
        user = repo.get_user(conn, username)
        if user is None:
            raise NotFound(f"no user {username!r}")
        repo.delete_expired_pending(conn, ctx.now_dt())
        return [token_view(t, ctx.now()) for t in repo.tokens_of(conn, user.id)]


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
) -> dict[str, Any]:
    """Start an enrolment; the answer carries the secret once, for the QR code and the burner."""
    if kind not in KINDS:
        raise ServiceError(
            f"kind {kind!r} cannot be enrolled",
            hint="use app or programmable; classic tokens are imported and assigned",
        )
    alg = Algorithm.parse(algorithm)
    check_digits(digits)
    if period not in (30, 60):
        raise ServiceError(f"period {period} is not 30 or 60")
    label = (label or DEFAULT_LABELS[kind]).strip()[:255]
    secret = generate_secret(alg)
    token_id = repo.new_id()
    now_dt = ctx.now_dt()
    expires = now_dt + timedelta(seconds=ctx.settings.enrol_ttl)
    with ctx.begin() as conn:
        user = _user(conn, username)
        _check_limit(ctx, conn, user)
        repo.insert_token(
            conn,
            {
                "id": token_id,
                "serial": None,
                "kind": kind,
                "type": "totp",
                "algorithm": alg.value,
                "digits": digits,
                "period": period,
                "secret_enc": ctx.seal(conn, secret, token_id),
                "owner_id": user.id,
                "label": label,
                "state": "pending",
                "last_step": -1,
                "drift": 0,
                "fail_count": 0,
                "locked_until": 0.0,
                "version": 0,
                "imported_drift": 0,
                "source": "enrolled",
                "created_at": now_dt,
                "expires_at": expires,
            },
        )
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="token.enrol.begin",
            outcome="success",
            target_user=user.username,
            client=client,
            details={"token_id": token_id, "kind": kind},
        )
    return _setup_payload(
        ctx, user.username, token_id, kind, label, secret, alg, digits, period, expires
    )


def _setup_payload(
    ctx: ServerContext,
    username: str,
    token_id: str,
    kind: str,
    label: str,
    secret: bytes,
    alg: Algorithm,
    digits: int,
    period: int,
    expires: Any,
) -> dict[str, Any]:
    cred = Credential(
        secret=secret,
        issuer=ctx.settings.issuer,
        account=username,
        algorithm=alg,
        digits=digits,
        period=period,
    )
    uri = build_otpauth(cred)
    return {
        "id": token_id,
        "kind": kind,
        "label": label,
        "otpauth_uri": uri,
        "secret": to_base32(secret),
        "manual_key": group_key(secret),
        "algorithm": alg.value,
        "digits": digits,
        "period": period,
        "qr_svg": encode_svg(uri, title="Scan with your authenticator app"),
        "expires_at": expires.isoformat(),
    }


def setup_view(ctx: ServerContext, username: str, token_id: str) -> dict[str, Any]:
    """The QR code and key of a pending enrolment again (the owner's own, until it expires)."""
    with ctx.engine.connect() as conn:
        user = _user(conn, username)
        token = _owned(conn, user, token_id)
    if token.state != "pending":
        raise Conflict("this method is already set up")
    if token.expires_at is None or token.expires_at.timestamp() < ctx.now():
        raise Gone("this enrolment expired", hint="start again to get a new QR code")
    secret = ctx.ring.open(token.secret_enc, token.id)
    return _setup_payload(
        ctx,
        user.username,
        token.id,
        token.kind,
        token.label,
        secret,
        token.algorithm,
        token.digits,
        token.period,
        token.expires_at,
    )


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
        raise ServiceError("a name is 1 to 64 characters")
    with ctx.begin() as conn:
        user = _user(conn, username)
        token = _owned(conn, user, token_id)
        repo.update_token(conn, token.id, label=label)
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="token.rename",
            outcome="success",
            target_user=user.username,
            target_serial=token.serial,
            client=client,
            details={"token_id": token.id},
        )


def resync_method(
    ctx: ServerContext,
    username: str,
    token_id: str,
    first_code: str,
    second_code: str,
    *,
    actor: str,
    client: str | None = None,
) -> dict[str, Any]:
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
    return {"id": token.id, "drift_steps": decision.state.drift}


def _owned(conn: Any, user: UserRecord, token_id: str) -> TokenRecord:
    token = repo.get_token(conn, token_id)
    if token is None or token.owner_id != user.id:
        raise NotFound(f"user {user.username!r} has no method {token_id!r}")
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
) -> dict[str, Any]:
    """ "Verify now": one correct code (±15 steps) activates the method and records the drift."""
    now = ctx.now()
    with ctx.begin() as conn:
        user = _user(conn, username)
        token = _owned(conn, user, token_id)
        if token.state == "active":
            raise Conflict("this method is already active")
        if token.state != "pending":
            raise Conflict(f"this method is {token.state}")
        if token.expires_at is not None and token.expires_at.timestamp() < now:
            raise Gone("this enrolment expired", hint="start again to get a new QR code")
        if serial is not None:
            serial = serial.strip()
            if not serial or len(serial) > 128:
                raise ServiceError("serial must be 1 to 128 characters")
            other = repo.get_token_by_serial(conn, serial)
            if other is not None and other.id != token.id:
                raise Conflict(f"serial {serial} is already registered to another token")
        secret = ctx.ring.open(token.secret_enc, token.id)
        decision = verify(
            token.params(secret), token.verification, code, now, ctx.policy, Mode.ENROL
        )
        extra: dict[str, Any] = {}
        if decision.accepted:
            extra = {"state": "active", "activated_at": ctx.now_dt(), "expires_at": None}
            if serial:
                extra["serial"] = serial
        ok = apply_decision(
            conn,
            ctx,
            token,
            decision,
            action="token.enrol.verify",
            actor=actor,
            client=client,
            target_user=user.username,
            extra=extra,
            details={"kind": token.kind},
        )
    if not ok:
        hint = (
            "the token is locked for a while after repeated wrong codes"
            if decision.reason is Reason.LOCKED
            else "wait for the next code and type it; if it still fails, check the clock of "
            "the phone or token"
        )
        raise CodeRejected("the code was not accepted", hint=hint)
    return {
        "id": token.id,
        "state": "active",
        "serial": serial or token.serial,
        "drift_steps": decision.state.drift,
    }


def remove(
    ctx: ServerContext, username: str, token_id: str, *, actor: str, client: str | None = None
) -> None:
    """Remove a method. A classic token goes back to the inventory (its seed is the vendor's);
    an app or programmable enrolment is deleted."""
    with ctx.begin() as conn:
        user = repo.get_user(conn, username)
        if user is None:
            raise NotFound(f"no user {username!r}")
        token = _owned(conn, user, token_id)
        if token.kind == "classic":
            repo.update_token(conn, token.id, **_released(token))
            action = "token.unassign"
        else:
            repo.delete_token(conn, token.id)
            action = "token.delete"
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action=action,
            outcome="success",
            target_user=user.username,
            target_serial=token.serial,
            client=client,
            details={"token_id": token.id, "kind": token.kind},
        )


def _released(token: TokenRecord) -> dict[str, Any]:
    """Back to the inventory. ``last_step`` is kept: codes already used must never become valid
    again. The learned drift is kept too: it belongs to the token's clock, not to its owner."""
    state = dataclasses.replace(
        token.verification,
        fail_count=0,
        locked_until=0.0,
        resync_step=None,
        resync_offset=None,
        resync_at=None,
    )
    return {"owner_id": None, "label": "", "last_used_at": None, **state_values(state)}


def self_assign(
    ctx: ServerContext,
    username: str,
    serial: str,
    code: str,
    *,
    label: str | None = None,
    actor: str,
    client: str | None = None,
) -> dict[str, Any]:
    """Claim an inventory token with its serial *and* a current code (±2 steps of the
    imported drift, else two consecutive codes). An unknown serial, a token already assigned
    and a wrong code give the same answer, so serials cannot be probed."""
    now = ctx.now()
    refused = CodeRejected(
        "serial or code not accepted",
        hint="check the serial on the back of the token and type the code it shows now",
    )
    with ctx.begin() as conn:
        user = _user(conn, username)
        token = repo.get_token_by_serial(conn, serial.strip())
        available = token is not None and token.owner_id is None and token.state == "active"
        if not available:
            auditlog.record(
                conn,
                ctx,
                actor=actor,
                action="token.self_assign",
                outcome="failure",
                reason="not_available",
                target_user=user.username,
                target_serial=serial.strip()[:128],
                client=client,
            )
    if not available:
        raise refused
    assert token is not None
    with ctx.begin() as conn:
        _check_limit(ctx, conn, user)
        secret = ctx.ring.open(token.secret_enc, token.id)
        decision = verify(
            token.params(secret), token.verification, code, now, ctx.policy, Mode.ASSIGN
        )
        extra: dict[str, Any] = {}
        if decision.accepted:
            extra = {
                "owner_id": user.id,
                "label": (label or DEFAULT_LABELS["classic"])[:255],
                "activated_at": ctx.now_dt(),
            }
        ok = apply_decision(
            conn,
            ctx,
            token,
            decision,
            action="token.self_assign",
            actor=actor,
            client=client,
            target_user=user.username,
            extra=extra,
        )
    if decision.reason is Reason.RESYNC_PENDING:
        raise CodeRejected(
            "the token's clock is off: code noted",
            hint="wait for the token's next code and type it to finish",
        )
    if not ok:
        raise refused
    return {"id": token.id, "serial": token.serial, "state": "active"}
