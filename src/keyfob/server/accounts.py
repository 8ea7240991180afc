"""Users, passwords (argon2id) and API keys."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from keyfob.errors import KeyfobError
from keyfob.formats import seeds
from keyfob.formats.seeds import USERNAME_HINT
from keyfob.server import auditlog, directory
from keyfob.server.context import ServerContext
from keyfob.server.errors import Conflict, NotFound, ServiceError
from keyfob.server.inputs import USERNAME_MAX, check_prefix, one_of
from keyfob.server.store import repo
from keyfob.server.store.records import ApiKeyRecord, Page, UserFilter, UserRecord
from keyfob.server.store.vocab import ApiRole, Role, TokenKind

MIN_PASSWORD = 10
NO_USER_HINT = "check the user name (the UPN, e.g. alice@example.com) against the user list"
NAME_HINT = USERNAME_HINT


def check_username(username: str) -> str:
    """The username rule of keyfob.formats.seeds (also applied to seed files' UPNs), as a 400."""
    try:
        return seeds.check_username(username)
    except KeyfobError as exc:
        raise ServiceError(exc.message, hint=exc.hint) from None


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ServiceError(
            f"password is shorter than {MIN_PASSWORD} characters",
            hint="a few unrelated words make a long password that is easy to type",
        )
    if len(password) > 1024:
        raise ServiceError(
            "password is longer than 1024 characters", hint="choose a shorter password"
        )
    return password


def generate_password() -> str:
    """A one-time password people can type: 4 groups of 5 from an unambiguous alphabet."""
    alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4))


def create_user(
    ctx: ServerContext,
    username: str,
    *,
    password: str | None = None,
    role: str = Role.USER,
    display_name: str = "",
    one_time: bool = True,
    actor: str = "system",
    client: str | None = None,
) -> UserRecord:
    """Add a user. A password set by an admin is one-time: the user must change it."""
    name = check_username(username)
    role = one_of(Role, role, "role", hint="use user, helpdesk or admin")
    hashed = hash_password(ctx, check_password(password)) if password is not None else None
    with ctx.begin() as conn:
        try:
            values = repo.user_values(
                name,
                now=ctx.now_dt(),
                password_hash=hashed,
                role=role,
                display_name=display_name,
                must_change_password=one_time and password is not None,
            )
            user = repo.insert_user(conn, values)
        except IntegrityError:
            raise Conflict(
                f"user {name!r} already exists",
                hint="user names are unique whatever their case; pick another or use this one",
            ) from None
        auditlog.success(conn, ctx, "user.create", actor, client, user.username, role=role)
    return user


def user_named(conn: Connection, username: str) -> UserRecord:
    """The user, or the one 404 every service answers for a name that is not there."""
    user = repo.get_user(conn, username)
    if user is None:
        raise NotFound(f"no user {username!r}", hint=NO_USER_HINT)
    return user


def get_user(ctx: ServerContext, username: str) -> UserRecord:
    with ctx.engine.connect() as conn:
        return user_named(conn, username)


def list_users(
    ctx: ServerContext, where: UserFilter | None = None, *, limit: int = 100, offset: int = 0
) -> Page[UserRecord]:
    """One page of users, by username, and how many match ``where``: the listing of the REST
    API, the admin page and the CLI."""
    prefix = where.prefix if where else None
    hint = "search by the first few characters of the username"
    check_prefix(prefix, "prefix", USERNAME_MAX, hint=hint)
    with ctx.engine.connect() as conn:
        return repo.list_users(conn, where or UserFilter(), limit=limit, offset=offset)


def set_disabled(
    ctx: ServerContext, username: str, disabled: bool, *, actor: str, client: str | None = None
) -> UserRecord:
    """Disable or enable a user; the last enabled admin is never disabled (see
    :func:`keep_an_admin`)."""
    action = "user.disable" if disabled else "user.enable"
    guard = keep_an_admin if disabled else None
    user = _update_user(
        ctx, username, action, {"disabled": disabled}, actor=actor, client=client, guard=guard
    )
    return dataclasses.replace(user, disabled=disabled)


def set_password(
    ctx: ServerContext,
    username: str,
    password: str,
    *,
    one_time: bool,
    actor: str,
    client: str | None = None,
) -> None:
    hashed = hash_password(ctx, check_password(password))
    values = {"password_hash": hashed, "must_change_password": one_time}
    _update_user(
        ctx, username, "user.password", values, actor=actor, client=client, one_time=one_time
    )


def _update_user(
    ctx: ServerContext,
    username: str,
    action: str,
    values: dict[str, Any],
    *,
    actor: str,
    client: str | None,
    guard: Callable[[Connection, UserRecord], None] | None = None,
    **details: Any,
) -> UserRecord:
    """Change columns of one user's row and audit it, in one transaction (``guard`` checks the
    user in it first, and may refuse); the user as it was."""
    with ctx.begin() as conn:
        user = user_named(conn, username)
        if guard is not None:
            guard(conn, user)
        repo.update_user(conn, user.id, **values)
        auditlog.success(conn, ctx, action, actor, client, user.username, **details)
    return user


HASH_SLOTS = 3
"""At most this many argon2 hashes run at once in a process; the others queue. Each takes
argon2's memory cost (64 MiB by default), and the thread pool runs up to 40 requests at once:
without a bound, a flood of password requests would take 2.5 GiB."""

_hash_slots = threading.BoundedSemaphore(HASH_SLOTS)


def hash_password(ctx: ServerContext, password: str) -> str:
    """Every argon2 run of the server goes through a slot, setting passwords included."""
    with _hash_slots:
        return ctx.hasher.hash(password)


def _verify_password(ctx: ServerContext, hashed: str | None, password: str) -> bool:
    """Check ``password`` against ``hashed``, or against a decoy hash when there is none (same
    cost, always False)."""
    with _hash_slots:
        try:
            ctx.hasher.verify(hashed or ctx.dummy_password_hash(), password)
        except (VerificationError, InvalidHashError):
            return False
    return hashed is not None


Eligible = Callable[[Connection, UserRecord], bool]


def authenticate(
    ctx: ServerContext, username: str, password: str, *, eligible: Eligible | None = None
) -> UserRecord | None:
    """The user if the password matches, the account is enabled and ``eligible`` says yes.

    Otherwise None, at the same cost: an unknown, disabled or ineligible account's password is
    checked against a decoy hash, never its own, so neither the answer nor its timing can tell
    a right password for such an account from a wrong one.

    A directory user's password is the directory's: checked by a bind as their DN."""
    handled, bound = directory.password_check(ctx, username, password, eligible)
    if handled:
        return bound
    with ctx.engine.connect() as conn:
        found = repo.get_password_hash(conn, username)
        user = found[0] if found is not None and found[1] is not None else None
        if user is not None and (user.disabled or (eligible and not eligible(conn, user))):
            user = None
    hashed = found[1] if user is not None and found is not None else None
    return user if _verify_password(ctx, hashed, password) else None


def delete_user(
    ctx: ServerContext, username: str, *, actor: str, client: str | None = None
) -> dict[str, Any]:
    """Delete a user in one transaction: their app and programmable methods are deleted, their
    classic tokens go back to the inventory (the seed is the vendor's), their sessions end. The
    last enabled admin is never deleted. The audit keeps the name (``user.delete``); returns
    what was done, for the CLI, the API and the pages alike."""
    from keyfob.server.enrolment import released  # enrolment imports this module

    with ctx.begin() as conn:
        user = user_named(conn, username)
        keep_an_admin(conn, user)  # before lock_user: the admins' rows are locked in id order
        repo.lock_user(conn, user.id)
        deleted, returned = 0, list[str | None]()
        for token in repo.tokens_of(conn, user.id):
            if token.kind is TokenKind.CLASSIC:
                repo.update_token(conn, token.id, **released(token))
                returned.append(token.serial)
            else:
                repo.delete_token(conn, token.id)
                deleted += 1
        repo.delete_user(conn, user.id)
        counts: dict[str, Any] = {"deleted_methods": deleted, "returned": len(returned)}
        auditlog.success(conn, ctx, "user.delete", actor, client, user.username, None, **counts)
    return {
        "username": user.username,
        "deleted_methods": deleted,
        "returned_to_inventory": returned,
    }


def keep_an_admin(conn: Connection, user: UserRecord) -> None:
    """Refuse (409) to take ``user`` away as an admin (delete, disable) when no other enabled
    admin would be left: nobody could administer keyfob on the web or over the API.

    Only an admin's change needs the check, and it never reads every user: the enabled admins'
    rows are locked (``repo.lock_enabled_admins``) in the caller's transaction, which then makes
    the change, so two such changes at once (two admins deleted by two requests, workers or
    nodes) cannot both find the other admin still there: the second waits for the first and
    sees what it did. Whether ``user`` is enabled is taken from the locked rows, not from
    ``user`` (read before the lock: it may have been enabled since)."""
    if user.role != Role.ADMIN:
        return
    if repo.lock_enabled_admins(conn) == {user.id}:
        raise Conflict(
            f"{user.username!r} is the only enabled admin",
            hint="make another admin first, or nobody could administer keyfob",
        )


def ensure_first_admin(ctx: ServerContext) -> tuple[str, str] | None:
    """On a new database, create ``admin`` with a one-time password and return both."""
    with ctx.engine.connect() as conn:
        if repo.count_users(conn):
            return None
    password = generate_password()
    try:
        create_user(ctx, "admin", password=password, role=Role.ADMIN, one_time=True)
    except Conflict:  # another process won the race
        return None
    return "admin", password


# --- API keys ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: ApiRole


def _hash(secret: str) -> str:
    # API keys carry 256 random bits: a fast hash is enough (no dictionary to attack), and
    # it keeps every authenticated request cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    ctx: ServerContext, name: str, role: str, *, actor: str = "cli", client: str | None = None
) -> tuple[ApiKey, str]:
    role = one_of(
        ApiRole,
        role,
        "API key role",
        hint="validate for a RADIUS or app server that checks codes, helpdesk for the helpdesk's "
        "tools, metrics for a scraper, admin for management",
    )
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with ctx.begin() as conn:
        repo.insert_api_key(
            conn,
            id=key_id,
            name=name or key_id,
            role=role,
            hash=_hash(secret),
            created_at=ctx.now_dt(),
        )
        what = {"key_id": key_id, "role": role, "name": name}
        auditlog.success(conn, ctx, "apikey.create", actor, client, **what)
    return ApiKey(key_id, name or key_id, role), f"kf_{key_id}_{secret}"


API_KEY_TOUCH_SECONDS = 60.0
"""``last_used_at`` is written at most this often per key, by whichever worker sees the first use
after it: a conditional UPDATE, never a write per request."""


def check_api_key(ctx: ServerContext, presented: str) -> ApiKey | None:
    """The key's principal, or None for a malformed, unknown, wrong or revoked key (callers answer
    all four with the same 401).

    One primary-key SELECT per request and no cache, on purpose: a revocation committed by any
    worker or node is refused by the very next request everywhere (a per-process cache would keep
    a revoked key working in the other workers until it expired)."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != "kf" or not _looks_like_id(parts[1]):
        return None
    with ctx.autocommit() as conn:
        row = repo.get_api_key(conn, parts[1])
    if row is None or not hmac.compare_digest(row.hash, _hash(parts[2])):
        return None
    if row.revoked_at is not None:
        return None
    _record_use(ctx, row.id, row.last_used_at)
    return ApiKey(row.id, row.name, row.role)


def _looks_like_id(text: str) -> bool:
    """Key ids are 12 hex digits: anything else is refused without a database read."""
    return 0 < len(text) <= 16 and all(ch in "0123456789abcdef" for ch in text)


def _record_use(ctx: ServerContext, key_id: str, last_used: datetime | None) -> None:
    now = ctx.now_dt()
    since = now - timedelta(seconds=API_KEY_TOUCH_SECONDS)
    if last_used is not None and last_used >= since:
        return
    with ctx.begin() as conn:
        repo.touch_api_key(conn, key_id, now, older_than=since)


def list_api_keys(ctx: ServerContext) -> list[ApiKeyRecord]:
    """Every key with its dates (revoked ones too), never a hash."""
    with ctx.engine.connect() as conn:
        return repo.list_api_keys(conn)


def revoke_api_key(
    ctx: ServerContext, ref: str, *, actor: str, client: str | None = None
) -> ApiKeyRecord:
    """Revoke the key with id or name ``ref`` at once, for every worker (see check_api_key).

    The row stays, with ``revoked_at`` set, so the list and the audit still say what it was."""
    with ctx.begin() as conn:
        row = _find_api_key(conn, ref.strip())
        now = ctx.now_dt()
        if row.revoked_at is not None or not repo.revoke_api_key(conn, row.id, now):
            raise Conflict(
                f"API key {row.id} ({row.name!r}) is already revoked",
                hint="nothing to do; a revoked key never works again",
            )
        what = {"key_id": row.id, "name": row.name, "role": row.role}
        auditlog.success(conn, ctx, "apikey.revoke", actor, client, **what)
    return dataclasses.replace(row, revoked_at=now, hash="")


def _find_api_key(conn: Connection, ref: str) -> ApiKeyRecord:
    """By id first, else by name among the keys not yet revoked (names need not be unique)."""
    parts = ref.split("_", 2)
    if len(parts) == 3 and parts[0] == "kf" and _looks_like_id(parts[1]):
        # Someone pasted the key itself: never echo it back (errors end up in logs and shells).
        raise ServiceError(
            "that is an API key itself, not its id or name",
            hint=f"give its id instead: {parts[1]}",
        )
    row = repo.get_api_key(conn, ref) if _looks_like_id(ref) else None
    if row is not None:
        return row
    named = repo.api_keys_named(conn, ref)
    active = [r for r in named if r.revoked_at is None]
    if len(active) > 1:
        ids = ", ".join(r.id for r in active)
        raise Conflict(
            f"{len(active)} API keys are named {ref[:64]!r} ({ids})",
            hint="give the id instead of the name (keyfob admin apikey list shows both)",
        )
    if active or named:
        return (active or named)[0]
    raise NotFound(
        f"no API key has the id or name {ref[:64]!r}",
        hint="keyfob admin apikey list shows every key's id and name",
    )
