"""Temporary access passcodes (issue 13): "I left my key-fob at home".

A passcode is 20 random decimal digits (66 bits), shown once in five groups of four that a
person can read out on the phone (``4821 0937 5512 8806 3371``); it is typed wherever a code is
(REST validate, the web sign-in, RADIUS), with or without the spaces. Because no OTP has more
than 10 digits, a 20-digit code can only be a passcode: validation tries it as one first.

Stored: only HMAC-SHA256(pepper, salt ‖ passcode), with a random 16-byte salt per pass and a
pepper derived from the master key (``KeyRing.pepper``). Not argon2: with 66 bits of entropy
nobody brute-forces the hash, even a fast one, and the pepper means a stolen database alone
does not even let anyone start; argon2 would put ~50 ms of CPU on the validation path of every
passcode-shaped code. A pass sealed under a key that a rotation later prunes stops working —
passes live at most 7 days.

Rules: 10 minutes to 7 days, 1 to 100 uses (1 by default), at most one live pass per user (a new
one revokes the old), every issue/use/revoke audited with the actor (never the passcode).
A wrong passcode-shaped code is a failure like any malformed code — it counts against the
user's tokens' lockout (validation goes on to check it against them) and against the pass:
after ``lockout_threshold`` failures the pass is dead. While any of the user's tokens is locked,
a passcode is refused too.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from keyfob.server import auditlog
from keyfob.server.context import ServerContext
from keyfob.server.errors import NotFound, ServiceError
from keyfob.server.inputs import describe, forbidden_at
from keyfob.server.store import repo
from keyfob.server.store.records import TokenRecord, UserRecord
from keyfob.server.store.schema import access_passes, users

DIGITS = 20
GROUP = 4
# The two ways a passcode is typed into one field with a password: as shown (five groups of
# four, a space or a dash between them: 24 characters), or its 20 digits.
_SHAPES = (
    (DIGITS + DIGITS // GROUP - 1, re.compile(r"[0-9]{4}(?:[ -][0-9]{4}){4}")),
    (DIGITS, re.compile(rf"[0-9]{{{DIGITS}}}")),
)
MIN_SECONDS = 600
MAX_SECONDS = 7 * 86400
MAX_USES = 100
_LABEL = "keyfob temporary access passcode v1"


@dataclass(frozen=True)
class AccessPass:
    """A pass as it is listed: never the passcode, never its hash."""

    id: str
    username: str
    issued_by: str
    reason: str
    created_at: datetime
    expires_at: datetime
    uses: int
    uses_left: int
    revoked_at: datetime | None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.uses_left > 0 and now < self.expires_at

    def as_dict(self, now: datetime) -> dict[str, object]:
        return {
            "id": self.id,
            "username": self.username,
            "issued_by": self.issued_by,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "uses": self.uses,
            "uses_left": self.uses_left,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "live": self.live(now),
        }


def generate() -> str:
    """20 random digits in groups of four."""
    digits = "".join(secrets.choice("0123456789") for _ in range(DIGITS))
    return " ".join(digits[i : i + GROUP] for i in range(0, DIGITS, GROUP))


def normalise(code: str) -> str | None:
    """The passcode's digits, if ``code`` is shaped like one (spaces and dashes ignored)."""
    text = code.replace(" ", "").replace("-", "").strip()
    if len(text) == DIGITS and text.isascii() and text.isdigit():
        return text
    return None


def passcode_widths(text: str, *, at_start: bool) -> list[int]:
    """The lengths at which ``text`` starts (``at_start``) or ends with something shaped like
    a passcode, longest first: the 24 characters of five groups (a space or a dash between
    them) or 20 digits. RADIUS password+otp mode splits a password and a code typed as one
    at these lengths before the token's digit count, as it does at a 6- or 8-digit code;
    some password must be left over."""
    found = []
    for width, shape in _SHAPES:
        piece = text[:width] if at_start else text[-width:]
        if len(text) > width and shape.fullmatch(piece):
            found.append(width)
    return found


def _digest(ctx: ServerContext, kid: str | None, salt: str, digits: str) -> tuple[str, str]:
    kid, pepper = ctx.ring.pepper(_LABEL, kid)
    mac = hmac.new(pepper, bytes.fromhex(salt) + digits.encode(), hashlib.sha256).hexdigest()
    return kid, mac


def _decoy_miss(ctx: ServerContext, digits: str) -> None:
    """The work of a wrong passcode where there is no pass: the HMAC and an UPDATE that
    matches no row, as ``redeem`` does for a live pass that the code does not open."""
    with contextlib.suppress(Exception):  # no sealing key yet: nothing to compare either
        _digest(ctx, None, "00" * 16, digits)
    with ctx.begin() as conn:
        conn.execute(
            update(access_passes)
            .where(access_passes.c.id == "")
            .values(failures=access_passes.c.failures + 1)
        )


def _user(conn: Connection, username: str) -> UserRecord:
    user = repo.get_user(conn, username)
    if user is None:
        raise NotFound(f"no user {username!r}", hint="keyfob admin user list shows them")
    return user


def _revoke_live(conn: Connection, user_id: str, now: datetime) -> int:
    stmt = update(access_passes).where(
        access_passes.c.user_id == user_id,
        access_passes.c.revoked_at.is_(None),
        access_passes.c.expires_at > now,
        access_passes.c.uses_left > 0,
    )
    return conn.execute(stmt.values(revoked_at=now)).rowcount


def issue(
    ctx: ServerContext,
    username: str,
    *,
    seconds: int = 8 * 3600,
    uses: int = 1,
    reason: str = "",
    require_reason: bool = False,
    actor: str,
    client: str | None = None,
) -> tuple[AccessPass, str]:
    """A new pass for ``username`` (the old live one revoked); returns it and the passcode,
    which is shown this once and never again."""
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ServiceError(
            f"a passcode lives 10 minutes to 7 days, not {seconds} seconds",
            hint="give --hours between 0.17 and 168",
        )
    if not 1 <= uses <= MAX_USES:
        raise ServiceError(f"uses must be 1 to {MAX_USES}", hint="one use is the default")
    at = forbidden_at(reason)
    if at is not None:
        raise ServiceError(
            f"the reason contains {describe(reason, at)}",
            hint="type the ticket reference as plain text",
        )
    reason = reason.strip()[:255]
    if require_reason and not reason:
        raise ServiceError("a ticket reference is required", hint="give --reason TICKET")
    passcode = generate()
    salt = secrets.token_hex(16)
    kid, mac = _digest(ctx, None, salt, passcode.replace(" ", ""))
    now = ctx.now_dt()
    expires = now + timedelta(seconds=seconds)
    pass_id = repo.new_id()
    with ctx.begin() as conn:
        user = _user(conn, username)
        repo.lock_user(conn, user.id)
        if _revoke_live(conn, user.id, now):
            auditlog.success(
                conn, ctx, "tap.revoke", actor, client, user.username, reason="replaced"
            )
        conn.execute(
            access_passes.insert().values(
                id=pass_id,
                user_id=user.id,
                kid=kid,
                salt=salt,
                hash=mac,
                uses_left=uses,
                uses=uses,
                failures=0,
                issued_by=actor[:255],
                reason=reason,
                created_at=now,
                expires_at=expires,
                revoked_at=None,
            )
        )
        auditlog.success(
            conn,
            ctx,
            "tap.issue",
            actor,
            client,
            user.username,
            pass_id=pass_id,
            expires_at=expires.isoformat(),
            uses=uses,
            ticket=reason,
        )
    made = AccessPass(pass_id, user.username, actor, reason, now, expires, uses, uses, None)
    return made, passcode


def list_passes(ctx: ServerContext, username: str | None = None) -> list[AccessPass]:
    """Passes, newest first (a user's, or everyone's)."""
    query = (
        select(access_passes, users.c.username)
        .join(users, users.c.id == access_passes.c.user_id)
        .order_by(access_passes.c.created_at.desc())
    )
    if username is not None:
        query = query.where(users.c.username_key == repo.user_key(username))
    with ctx.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [_pass(r._mapping) for r in rows]


def holds_live_pass(ctx: ServerContext, username: str) -> bool:
    """Whether ``username`` holds a live passcode. RADIUS password+otp splits a typed text at
    a passcode's length only for such a user: a password may well end in 14 digits, and a
    6-digit code after it would look like a passcode. One indexed read, for any name (an
    unknown one too), so the split's cost does not depend on the answer."""
    query = (
        select(access_passes.c.id)
        .join(users, users.c.id == access_passes.c.user_id)
        .where(
            users.c.username_key == repo.user_key(username),
            access_passes.c.revoked_at.is_(None),
            access_passes.c.uses_left > 0,
            access_passes.c.expires_at > ctx.now_dt(),
        )
        .limit(1)
    )
    with ctx.autocommit() as conn:
        return conn.execute(query).first() is not None


def _pass(m: Mapping[Any, Any]) -> AccessPass:
    g = m.__getitem__
    return AccessPass(
        g("id"),
        g("username"),
        g("issued_by"),
        g("reason"),
        g("created_at"),
        g("expires_at"),
        g("uses"),
        g("uses_left"),
        g("revoked_at"),
    )


def revoke(ctx: ServerContext, username: str, *, actor: str, client: str | None = None) -> int:
    """Revoke the user's live pass; how many were revoked (0 or 1)."""
    with ctx.begin() as conn:
        user = _user(conn, username)
        count = _revoke_live(conn, user.id, ctx.now_dt())
        if count:
            auditlog.success(conn, ctx, "tap.revoke", actor, client, user.username)
    if not count:
        raise NotFound(f"{username} has no live passcode", hint="keyfob admin tap list")
    return count


def redeem(
    ctx: ServerContext,
    user: UserRecord | None,
    tokens: list[TokenRecord],
    code: str,
    *,
    client: str | None,
    actor: str,
) -> bool:
    """Accept ``code`` as the user's live passcode, using one of its uses (compare-and-set),
    with the audit rows of the use; False (and a failure counted on the pass) otherwise.

    A passcode-shaped code costs the same statements and HMAC whether or not the user exists
    or holds a live pass (``user`` None: unknown or disabled), so its timing tells neither."""
    digits = normalise(code)
    if digits is None:
        return False
    now = ctx.now_dt()
    with ctx.autocommit() as conn:
        row = conn.execute(
            select(access_passes).where(
                access_passes.c.user_id == (user.id if user else ""),
                access_passes.c.revoked_at.is_(None),
                access_passes.c.uses_left > 0,
                access_passes.c.expires_at > now,
            )
        ).first()
    if row is None or user is None:
        _decoy_miss(ctx, digits)
        return False
    m = row._mapping
    try:
        _, mac = _digest(ctx, m["kid"], m["salt"], digits)
    except Exception:  # the pepper's key was pruned: the pass is dead
        return False
    locked = any(t.verification.locked_until > ctx.now() for t in tokens)
    dead = m["failures"] >= ctx.policy.lockout_threshold
    good = hmac.compare_digest(mac, m["hash"]) and not locked and not dead
    with ctx.begin() as conn:
        if not good:
            conn.execute(
                update(access_passes)
                .where(access_passes.c.id == m["id"])
                .values(failures=access_passes.c.failures + 1)
            )
            return False
        used = conn.execute(
            update(access_passes)
            .where(access_passes.c.id == m["id"], access_passes.c.uses_left == m["uses_left"])
            .values(uses_left=m["uses_left"] - 1)
        ).rowcount
        if used != 1:
            return False  # a concurrent use took it
        left = m["uses_left"] - 1
        auditlog.write(
            conn,
            auditlog.event(ctx, "validate", "success", actor, client, user.username, reason="tap"),
        )
        auditlog.success(
            conn, ctx, "tap.use", actor, client, user.username, pass_id=m["id"], uses_left=left
        )
    return True
