"""Users, passwords (argon2id) and API keys."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import time
import unicodedata
from dataclasses import dataclass

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError

from keyfob.server import auditlog
from keyfob.server.context import ServerContext
from keyfob.server.errors import Conflict, NotFound, ServiceError
from keyfob.server.store import repo
from keyfob.server.store.records import UserRecord

ROLES = ("user", "admin")
API_ROLES = ("validate", "admin")
MIN_PASSWORD = 10


def check_username(username: str) -> str:
    name = unicodedata.normalize("NFC", username.strip())
    if not name:
        raise ServiceError("username is empty")
    if len(name) > 255:
        raise ServiceError("username is longer than 255 characters")
    bad = next((ch for ch in name if unicodedata.category(ch)[0] in "CZ" and ch != " "), None)
    if bad is not None or " " in name:
        raise ServiceError(
            "username contains a space or control character",
            hint="use the user principal name, e.g. alice@example.com",
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ServiceError(f"password is shorter than {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise ServiceError("password is longer than 1024 characters")
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
    role: str = "user",
    display_name: str = "",
    one_time: bool = True,
    actor: str = "system",
    client: str | None = None,
) -> UserRecord:
    """Add a user. A password set by an admin is one-time: the user must change it."""
    name = check_username(username)
    if role not in ROLES:
        raise ServiceError(f"role {role!r} is not one of {', '.join(ROLES)}")
    hashed = ctx.hasher.hash(check_password(password)) if password is not None else None
    with ctx.begin() as conn:
        try:
            user = repo.insert_user(
                conn,
                name,
                password_hash=hashed,
                role=role,
                display_name=display_name,
                must_change_password=one_time and password is not None,
                now=ctx.now_dt(),
            )
        except IntegrityError:
            raise Conflict(f"user {name!r} already exists") from None
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="user.create",
            outcome="success",
            target_user=user.username,
            client=client,
            details={"role": role},
        )
    return user


def get_user(ctx: ServerContext, username: str) -> UserRecord:
    with ctx.engine.connect() as conn:
        user = repo.get_user(conn, username)
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def list_users(ctx: ServerContext) -> list[UserRecord]:
    with ctx.engine.connect() as conn:
        return repo.list_users(conn)


def set_disabled(
    ctx: ServerContext, username: str, disabled: bool, *, actor: str, client: str | None = None
) -> UserRecord:
    with ctx.begin() as conn:
        user = repo.get_user(conn, username)
        if user is None:
            raise NotFound(f"no user {username!r}")
        repo.update_user(conn, user.id, disabled=disabled)
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="user.disable" if disabled else "user.enable",
            outcome="success",
            target_user=user.username,
            client=client,
        )
    return get_user(ctx, username)


def set_password(
    ctx: ServerContext,
    username: str,
    password: str,
    *,
    one_time: bool,
    actor: str,
    client: str | None = None,
) -> None:
    hashed = ctx.hasher.hash(check_password(password))
    with ctx.begin() as conn:
        user = repo.get_user(conn, username)
        if user is None:
            raise NotFound(f"no user {username!r}")
        repo.update_user(conn, user.id, password_hash=hashed, must_change_password=one_time)
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="user.password",
            outcome="success",
            target_user=user.username,
            client=client,
            details={"one_time": one_time},
        )


def authenticate(ctx: ServerContext, username: str, password: str) -> UserRecord | None:
    """The user if the password matches and the account is enabled; same cost otherwise."""
    with ctx.engine.connect() as conn:
        found = repo.get_password_hash(conn, username)
    if found is None or found[1] is None:
        with contextlib.suppress(VerificationError, InvalidHashError):
            ctx.hasher.verify(ctx.dummy_password_hash(), password)
        return None
    user, hashed = found
    try:
        ctx.hasher.verify(hashed, password)  # type: ignore[arg-type]
    except (VerificationError, InvalidHashError):
        return None
    return None if user.disabled else user


def ensure_first_admin(ctx: ServerContext) -> tuple[str, str] | None:
    """On a new database, create ``admin`` with a one-time password and return both."""
    with ctx.engine.connect() as conn:
        if repo.count_users(conn):
            return None
    password = generate_password()
    try:
        create_user(ctx, "admin", password=password, role="admin", one_time=True)
    except Conflict:  # another process won the race
        return None
    return "admin", password


# --- API keys ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: str


def _hash(secret: str) -> str:
    # API keys carry 256 random bits: a fast hash is enough (no dictionary to attack), and
    # it keeps every authenticated request cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    ctx: ServerContext, name: str, role: str, *, actor: str = "cli", client: str | None = None
) -> tuple[ApiKey, str]:
    if role not in API_ROLES:
        raise ServiceError(f"API key role {role!r} is not one of {', '.join(API_ROLES)}")
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
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="apikey.create",
            outcome="success",
            client=client,
            details={"key_id": key_id, "role": role, "name": name},
        )
    return ApiKey(key_id, name or key_id, role), f"kf_{key_id}_{secret}"


API_KEY_CACHE_SECONDS = 30.0
"""A verified key is trusted for this long without a database read, which keeps validation at
3 statements; a deleted key stops working within this time."""


def check_api_key(ctx: ServerContext, presented: str) -> ApiKey | None:
    digest = _hash(presented)
    cached = ctx.api_key_cache.get(digest)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]  # type: ignore[return-value]
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != "kf":
        return None
    with ctx.engine.connect() as conn:
        row = repo.get_api_key(conn, parts[1])
    if row is None or not hmac.compare_digest(row["hash"], _hash(parts[2])):
        return None
    key = ApiKey(row["id"], row["name"], row["role"])
    ctx.api_key_cache[digest] = (key, time.monotonic() + API_KEY_CACHE_SECONDS)
    return key


def list_api_keys(ctx: ServerContext) -> list[dict[str, object]]:
    with ctx.engine.connect() as conn:
        return repo.list_api_keys(conn)
