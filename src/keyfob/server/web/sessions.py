"""Web sessions, kept in the database: the cookie carries 32 random bytes, the table only their
SHA-256, so a database leak yields no usable session. A session starts at stage ``password``
(only good for typing the second factor, for five minutes) and becomes ``full`` after the code;
its id is replaced at every promotion, so a session fixed before sign-in is worthless after.

A full session remembers how it was signed in (``signed_in_with``): the id of the token whose
code was typed, :data:`TAP` or :data:`PASSWORD`. The self-service page lets a user mark their
*other* tokens lost with it, and a token marked lost or retired signs out what it opened
(``repo.end_sessions_signed_in_with``; :func:`load` refuses what a race left behind)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select

from keyfob.server.context import ServerContext
from keyfob.server.store.records import UserRecord
from keyfob.server.store.schema import tokens, users, web_sessions
from keyfob.server.store.vocab import TokenStatus

COOKIE = "kf_session"
FULL_TTL = timedelta(hours=8)
PASSWORD_STAGE_TTL = timedelta(minutes=5)
TAP = "tap"  # signed in with a temporary access passcode (server/tap.py)
PASSWORD = "password"  # signed in with the password alone: the user had no second factor
# A session whose token is in one of these states is over, whenever it was opened: marking a
# token lost ends the sessions it opened, and this closes the race with a sign-in that
# checked its code just before and wrote its session just after.
_ENDED = (TokenStatus.LOST, TokenStatus.RETIRED)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class WebSession:
    key: str  # hashed id
    user: UserRecord
    stage: str
    csrf: str
    expires_at: datetime
    signed_in_with: str | None = None  # a token id, TAP or PASSWORD; None: not (yet) known

    @property
    def full(self) -> bool:
        return self.stage == "full"


def create(
    ctx: ServerContext, user: UserRecord, stage: str, signed_in_with: str | None = None
) -> str:
    """A new session; returns the cookie value (shown to the browser once)."""
    value = secrets.token_urlsafe(32)
    ttl = FULL_TTL if stage == "full" else PASSWORD_STAGE_TTL
    with ctx.begin() as conn:
        conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < ctx.now_dt()))
        conn.execute(
            insert(web_sessions).values(
                id=_hash(value),
                user_id=user.id,
                stage=stage,
                csrf=secrets.token_urlsafe(24),
                signed_in_with=signed_in_with,
                created_at=ctx.now_dt(),
                expires_at=ctx.now_dt() + ttl,
            )
        )
    return value


def load(ctx: ServerContext, value: str | None) -> WebSession | None:
    if not value or len(value) > 128:
        return None
    with ctx.engine.connect() as conn:
        row = conn.execute(
            select(
                users,
                web_sessions.c.stage.label("s_stage"),
                web_sessions.c.csrf.label("s_csrf"),
                web_sessions.c.expires_at.label("s_expires"),
                web_sessions.c.signed_in_with.label("s_with"),
                tokens.c.state.label("s_token_state"),
            )
            .select_from(
                web_sessions.join(users, users.c.id == web_sessions.c.user_id).outerjoin(
                    tokens, tokens.c.id == web_sessions.c.signed_in_with
                )
            )
            .where(web_sessions.c.id == _hash(value))
        ).first()
    if row is None:
        return None
    m = row._mapping
    user = UserRecord.from_row(row)
    if m["s_expires"] < ctx.now_dt() or user.disabled or m["s_token_state"] in _ENDED:
        return None
    return WebSession(_hash(value), user, m["s_stage"], m["s_csrf"], m["s_expires"], m["s_with"])


def promote(ctx: ServerContext, session: WebSession, signed_in_with: str | None) -> str:
    """Second factor done: a new full session replaces the half one (new id, new CSRF),
    remembering which method signed it in."""
    destroy_key(ctx, session.key)
    return create(ctx, session.user, "full", signed_in_with)


def destroy_key(ctx: ServerContext, key: str) -> None:
    with ctx.begin() as conn:
        conn.execute(delete(web_sessions).where(web_sessions.c.id == key))


def destroy_user_sessions(ctx: ServerContext, user_id: str) -> None:
    """After a password change or a disable: every other browser is signed out."""
    with ctx.begin() as conn:
        conn.execute(delete(web_sessions).where(web_sessions.c.user_id == user_id))
