"""Data access: every statement the server runs, in one place, each in the caller's transaction.

The one rule that matters most lives in :func:`apply_state`: a verification decision is written
with ``UPDATE … WHERE id = :id AND version = :v`` (and ``AND last_step < :s`` when it accepts a
step), so that of any number of concurrent checks of the same code — threads, processes or
nodes — exactly one can accept it.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    ColumnDefault,
    ColumnElement,
    Connection,
    MetaData,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.sql import FromClause
from sqlalchemy.sql.dml import Insert

from keyfob.otp.verify import TokenState
from keyfob.server.store import driftlog
from keyfob.server.store.records import (
    STATE_COLUMNS,
    ApiKeyRecord,
    AuditFilter,
    AuditRecord,
    Page,
    TokenFilter,
    TokenRecord,
    UserFilter,
    UserRecord,
    state_values,
)
from keyfob.server.store.schema import api_keys, audit, tokens, users, web_sessions
from keyfob.server.store.vocab import Role, TokenStatus

_TOKEN_COLUMNS = [*tokens.c, users.c.username.label("owner")]
_TOKENS_AND_OWNERS = tokens.outerjoin(users, tokens.c.owner_id == users.c.id)
R = TypeVar("R")


def new_id() -> str:
    return uuid.uuid4().hex


def user_key(username: str) -> str:
    """Usernames (UPNs) compare case-insensitively."""
    return username.strip().casefold()


# --- users -------------------------------------------------------------------------------


def get_user(conn: Connection, username: str) -> UserRecord | None:
    row = conn.execute(select(users).where(users.c.username_key == user_key(username))).first()
    return UserRecord.from_row(row) if row else None


def get_password_hash(conn: Connection, username: str) -> tuple[UserRecord, str | None] | None:
    row = conn.execute(select(users).where(users.c.username_key == user_key(username))).first()
    if row is None:
        return None
    return UserRecord.from_row(row), row._mapping["password_hash"]


def insert_user(conn: Connection, values: dict[str, Any]) -> UserRecord:
    """Insert a row made by :func:`user_values`, and read it back."""
    conn.execute(insert(users).values(**values))
    return UserRecord.from_row(conn.execute(select(users).where(users.c.id == values["id"])).one())


def user_values(username: str, *, now: datetime, **values: Any) -> dict[str, Any]:
    """A new users row (with a new id): ``values`` over those of an enabled user without a
    password; for :func:`insert_user` and for bulk inserts."""
    return {
        "id": new_id(),
        "username": username.strip(),
        "username_key": user_key(username),
        "display_name": "",
        "password_hash": None,
        "must_change_password": False,
        "role": Role.USER,
        "disabled": False,
        "created_at": now,
        **values,
    }


def user_ids(conn: Connection, usernames: list[str]) -> dict[str, str]:
    """The ids of those of ``usernames`` that exist, by :func:`user_key` (500 a statement)."""
    keys = sorted({user_key(u) for u in usernames})
    found: dict[str, str] = {}
    for i in range(0, len(keys), 500):
        query = select(users.c.username_key, users.c.id).where(
            users.c.username_key.in_(keys[i : i + 500])
        )
        found.update((key, uid) for key, uid in conn.execute(query))
    return found


def update_user(conn: Connection, user_id: str, **values: Any) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(**values))


def list_users(
    conn: Connection, where: UserFilter, *, limit: int = 100, offset: int = 0
) -> Page[UserRecord]:
    """One page of users by :func:`user_key` (unique, so pages never overlap or skip), and how
    many match. The prefix is compared case-folded, through :func:`starts_with`."""
    conds = _conditions(
        (where.prefix, lambda v: starts_with(users.c.username_key, user_key(v))),
        (where.role, lambda v: users.c.role == v),
    )
    query = select(users).order_by(users.c.username_key)
    return _page(conn, query, users, conds, UserRecord.from_row, limit=limit, offset=offset)


def count_users(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(users)).scalar_one()


_ENABLED_ADMIN = and_(users.c.role == Role.ADMIN, users.c.disabled.is_(False))


def lock_enabled_admins(conn: Connection) -> set[str]:
    """The ids of the enabled admins, their rows locked until ``conn``'s transaction ends: what
    takes an enabled admin away (a delete, a disable) checks that another one stays under this
    lock, in the transaction that makes the change, so two such changes never both count the
    other's admin (the last-admin rule, accounts.py).

    PostgreSQL: ``SELECT … FOR NO KEY UPDATE`` in id order, so two callers lock in the same
    order and never deadlock; NO KEY, because plain FOR UPDATE would also block (and could
    deadlock with) every insert of a row that points at an admin — a token assigned, a sign-in
    session — whose foreign-key check takes KEY SHARE on the admin's row. One that waited
    re-reads each row a rival changed, and a row deleted or disabled meanwhile drops out (READ
    COMMITTED). SQLite: an UPDATE that changes nothing comes first and takes the database's
    write lock (pysqlite would run a first SELECT outside the transaction, where another
    process could commit between the count and the change)."""
    if conn.dialect.name == "sqlite":
        conn.execute(update(users).where(_ENABLED_ADMIN).values(role=Role.ADMIN))
    query = select(users.c.id).where(_ENABLED_ADMIN).order_by(users.c.id)
    query = query.with_for_update(key_share=True)
    return set(conn.execute(query).scalars())


def delete_user(conn: Connection, user_id: str) -> None:
    """The user's row; their sessions and directory link go with it (ON DELETE CASCADE), and
    tokens still theirs lose their owner (SET NULL): move or delete them first."""
    conn.execute(delete(users).where(users.c.id == user_id))


def lock_user(conn: Connection, user_id: str) -> None:
    """Serialise this user's transactions until ``conn`` ends (PostgreSQL row lock; SQLite
    writers are serialised by its write lock anyway)."""
    conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update())


# --- tokens ------------------------------------------------------------------------------


def _token_select() -> Select[Any]:
    return select(*_TOKEN_COLUMNS).select_from(_TOKENS_AND_OWNERS)


# Hot-path statements are built once: constructing a SQLAlchemy statement costs more than
# running it on SQLite. Parameters are bound per call.
_ACTIVE_TOKENS = (
    select(users, *[c.label(f"t_{c.name}") for c in tokens.c])
    .select_from(
        users.outerjoin(
            tokens, and_(tokens.c.owner_id == users.c.id, tokens.c.state == TokenStatus.ACTIVE)
        )
    )
    .where(users.c.username_key == bindparam("ukey"))
)
_CAS = (
    update(tokens)
    .where(tokens.c.id == bindparam("b_id"), tokens.c.version == bindparam("b_version"))
    .values({c: bindparam(f"v_{c}") for c in (*STATE_COLUMNS, "version")})
)
_CAS_ACCEPT = (
    update(tokens)
    .where(
        tokens.c.id == bindparam("b_id"),
        tokens.c.version == bindparam("b_version"),
        tokens.c.last_step < bindparam("b_step"),
    )
    .values(
        {
            c: bindparam(f"v_{c}")
            for c in (*STATE_COLUMNS, "version", "last_used_at", "drift_history")
        }
    )
)
_INSERT_AUDIT = insert(audit)


def active_tokens_of(
    conn: Connection, username: str
) -> tuple[UserRecord | None, list[TokenRecord]]:
    """The validation read: a user's active tokens through the (owner_id, state) index.

    One statement: the user row and its tokens come back together (LEFT JOIN), so an unknown
    user, a disabled one and one without tokens cost the same single query.
    """
    rows = conn.execute(_ACTIVE_TOKENS, {"ukey": user_key(username)}).all()
    if not rows:
        return None, []
    user = UserRecord.from_row(rows[0])
    found = [active_token(row, user.username) for row in rows if row._mapping["t_id"] is not None]
    return user, found


def active_token(row: Any, owner: str) -> TokenRecord:
    """One token of an :func:`active_tokens_of` row (its columns are prefixed ``t_``); public so
    that validation can spend the same parsing work on a decoy row (keyfob.server.decoy)."""
    m = row._mapping
    data = {c.name: m[f"t_{c.name}"] for c in tokens.c}
    data["owner"] = owner
    return TokenRecord.from_row(Row(data))


class Row:
    """Adapter so that from_row works on a plain dict."""

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping


def get_token(conn: Connection, token_id: str) -> TokenRecord | None:
    row = conn.execute(_token_select().where(tokens.c.id == token_id)).first()
    return TokenRecord.from_row(row) if row else None


def get_token_by_serial(conn: Connection, serial: str) -> TokenRecord | None:
    row = conn.execute(_token_select().where(tokens.c.serial == serial)).first()
    return TokenRecord.from_row(row) if row else None


def tokens_of(conn: Connection, user_id: str) -> list[TokenRecord]:
    rows = conn.execute(
        _token_select().where(tokens.c.owner_id == user_id).order_by(tokens.c.created_at)
    )
    return [TokenRecord.from_row(r) for r in rows]


def has_second_factor(conn: Connection, user_id: str) -> bool:
    """Whether the user holds, or held, a method beyond a pending enrolment: an active, disabled
    or lost token, or one retired from them (``users.token_retired_at``: the mark outlives the
    retired row, which a re-import of its serial replaces). Only a user without any (never
    enrolled, or every method deleted) may act with a password alone (api/auth.py) or sign in
    on the pages without a code (web/auth_pages.py)."""
    owned = select(tokens.c.id).where(
        tokens.c.owner_id == user_id, tokens.c.state != TokenStatus.PENDING
    )
    retired = select(users.c.id).where(users.c.id == user_id, users.c.token_retired_at.is_not(None))
    return conn.execute(select(owned.union_all(retired).exists())).scalar_one()


def end_sessions_signed_in_with(conn: Connection, token_id: str, owner_id: str | None) -> int:
    """Sign out every web session that a code of this token opened (it was lost or retired:
    whoever holds it must not stay signed in), and every full session of its owner that does
    not say how it signed in (opened before revision 0009: it may have been this token); how
    many there were."""
    opened = web_sessions.c.signed_in_with == token_id
    if owner_id is not None:
        unknown = and_(
            web_sessions.c.user_id == owner_id,
            web_sessions.c.signed_in_with.is_(None),
            web_sessions.c.stage == "full",
        )
        opened = or_(opened, unknown)
    return conn.execute(delete(web_sessions).where(opened)).rowcount


def count_methods(conn: Connection, user_id: str) -> int:
    return conn.execute(
        select(func.count())
        .select_from(tokens)
        .where(
            tokens.c.owner_id == user_id,
            tokens.c.state.in_([TokenStatus.ACTIVE, TokenStatus.PENDING]),
        )
    ).scalar_one()


def starts_with(column: ColumnElement[str], text: str) -> ColumnElement[bool]:
    """``column`` starts with ``text``, every character of it taken literally: the one way a
    listing's text filter is matched (users by prefix, tokens by serial, the audit log by
    action). LIKE's wildcards ``%`` and ``_`` in what a user typed are escaped (with the
    escape character itself, ``/``), so they match themselves, never any character. Case does
    not count, on either database: both sides are lowered (PostgreSQL's LIKE would otherwise
    tell ``kf`` from ``KF`` where SQLite's does not)."""
    return column.istartswith(text, autoescape=True)


def _conditions(*pairs: tuple[Any, Callable[[Any], ColumnElement[bool]]]) -> list[Any]:
    """The condition of each (value, condition) pair whose value is given (not None, not "")."""
    return [condition(value) for value, condition in pairs if value is not None and value != ""]


def _page(
    conn: Connection,
    query: Select[Any],
    counted: FromClause,
    where: list[Any],
    record: Callable[[Any], R],
    *,
    limit: int,
    offset: int,
) -> Page[R]:
    """One page of ``query`` under ``where``, and the count of every row it matches."""
    total = conn.execute(select(func.count()).select_from(counted).where(*where)).scalar_one()
    rows = conn.execute(query.where(*where).limit(limit).offset(offset))
    return Page([record(r) for r in rows], total)


def list_tokens(
    conn: Connection, where: TokenFilter, *, now: float, limit: int = 100, offset: int = 0
) -> Page[TokenRecord]:
    conds = _conditions(
        (where.state, lambda v: tokens.c.state == v),
        (where.kind, lambda v: tokens.c.kind == v),
        (where.owner, lambda v: users.c.username_key == user_key(v)),
        (
            where.assigned,
            lambda v: tokens.c.owner_id.isnot(None) if v else tokens.c.owner_id.is_(None),
        ),
        (
            where.serial,
            lambda v: or_(
                starts_with(tokens.c.serial, v), starts_with(tokens.c.reported_serial, v)
            ),
        ),
        (now if where.locked else None, lambda v: tokens.c.locked_until > v),
        (where.drift_over, lambda v: func.abs(tokens.c.drift * tokens.c.period) > v),
    )
    query = _token_select().order_by(tokens.c.serial, tokens.c.created_at)
    return _page(
        conn, query, _TOKENS_AND_OWNERS, conds, TokenRecord.from_row, limit=limit, offset=offset
    )


_NEW_TOKEN: dict[str, Any] = {
    **{c.name: None for c in tokens.c if c.nullable},
    **state_values(TokenState()),
    "label": "",
    "version": 0,
    "imported_drift": 0,
    "source": "enrolled",
}


def token_values(**values: Any) -> dict[str, Any]:
    """A whole new tokens row: ``values`` over those of a fresh token (no owner, no serial, no
    use yet, a new verification state), for :func:`insert_token` and for staged imports."""
    return {**_NEW_TOKEN, **values}


def insert_token(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(tokens).values(**values))


class Staging:
    """Rows waiting to enter tokens and users, in temporary tables of one connection.

    An import fills them as it reads its file, with no lock on the real tables (a temporary
    table is private to its connection, on SQLite and PostgreSQL alike), and then
    :meth:`publish` copies them over with two ``INSERT … SELECT`` in the caller's write
    transaction: no Python work per row while SQLite's single write lock is held, nothing
    visible before that commit, and nothing left behind by a crash (the tables die with the
    connection).

    The tables are described once, in ``_STAGING``, never per import: SQLAlchemy's compiled
    statement cache is keyed on the ``Table`` object, so tables made anew for each import made
    each import's statements new entries (about 200 KB an import, kept until the engine's LRU
    cache reached 750 entries, pushing the validation's statements out on the way; the soak
    saw it as a server growing ~5 MB a minute)."""

    def __init__(self, conn: Connection) -> None:
        self.tokens, self.users = _STAGED_TOKENS, _STAGED_USERS
        _STAGING.drop_all(conn, checkfirst=True)  # left by an earlier import on this connection
        _STAGING.create_all(conn)

    def add(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            conn.execute(insert(table), rows)

    def publish(self, conn: Connection) -> None:
        for real, staged in ((users, self.users), (tokens, self.tokens)):
            names = [c.name for c in real.c]
            conn.execute(insert(real).from_select(names, select(*[staged.c[n] for n in names])))

    def drop(self, conn: Connection) -> None:
        _STAGING.drop_all(conn)


def _staging_table(meta: MetaData, real: Table) -> Table:
    """A temporary table with the columns (types and scalar defaults) of ``real``, no keys."""
    columns = [
        Column(
            c.name,
            c.type,
            default=c.default.arg
            if isinstance(c.default, ColumnDefault) and c.default.is_scalar
            else None,
        )
        for c in real.c
    ]
    return Table(f"staged_{real.name}", meta, *columns, prefixes=["TEMPORARY"])


_STAGING = MetaData()
_STAGED_TOKENS = _staging_table(_STAGING, tokens)
_STAGED_USERS = _staging_table(_STAGING, users)


def update_token(conn: Connection, token_id: str, **values: Any) -> None:
    conn.execute(
        update(tokens).where(tokens.c.id == token_id).values(version=tokens.c.version + 1, **values)
    )


def delete_token(conn: Connection, token_id: str) -> None:
    conn.execute(delete(tokens).where(tokens.c.id == token_id))


def delete_expired_pending(conn: Connection, now: datetime) -> int:
    return conn.execute(
        delete(tokens).where(tokens.c.state == TokenStatus.PENDING, tokens.c.expires_at < now)
    ).rowcount


def apply_state(
    conn: Connection,
    token: TokenRecord,
    state: TokenState,
    *,
    accepted_step: int | None,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> bool:
    """Compare-and-set a verification decision; False means someone else got there first."""
    if not extra:
        params = _cas_params(token, state, accepted_step, now)
        cas = _CAS if accepted_step is None else _CAS_ACCEPT
        return conn.execute(cas, params).rowcount == 1
    stmt = update(tokens).where(tokens.c.id == token.id, tokens.c.version == token.version)
    values: dict[str, Any] = {**state_values(state), "version": token.version + 1}
    if accepted_step is not None:
        stmt = stmt.where(tokens.c.last_step < accepted_step)
        values["last_used_at"] = now
        values["drift_history"] = driftlog.append(token.drift_history, now.timestamp(), state.drift)
    if extra:
        values.update(extra)
    return conn.execute(stmt.values(**values)).rowcount == 1


def _cas_params(
    token: TokenRecord, state: TokenState, accepted_step: int | None, now: datetime
) -> dict[str, Any]:
    """The bound values of ``_CAS`` (a refusal) or ``_CAS_ACCEPT`` (``accepted_step`` given)."""
    params = {f"v_{k}": v for k, v in state_values(state).items()}
    params.update(b_id=token.id, b_version=token.version, v_version=token.version + 1)
    if accepted_step is not None:
        params.update(
            b_step=accepted_step,
            v_last_used_at=now,
            v_drift_history=driftlog.append(token.drift_history, now.timestamp(), state.drift),
        )
    return params


_AUDIT_COLUMNS = [c.name for c in audit.c if not c.primary_key]


@functools.cache
def _cas_then_audit(accept: bool, rows: int, always: bool) -> Insert:
    """The compare-and-set UPDATE and the audit INSERT as one PostgreSQL statement: the UPDATE
    is a data-modifying WITH, and the INSERT takes its rows only when the UPDATE returned its
    token (``always``: whatever it returned). One statement is its own transaction, so an
    autocommit connection sends it in one round trip, where BEGIN, UPDATE, INSERT and COMMIT
    take four; and it is all or nothing like they are. Built once per shape, so SQLAlchemy's
    compiled cache (and psycopg's prepared statements) serve every later call."""
    cas = (_CAS_ACCEPT if accept else _CAS).returning(tokens.c.id).cte("cas")
    won = exists(select(cas.c.id))
    selects = []
    for i in range(rows):
        row = select(*[bindparam(f"a{i}_{c}", type_=audit.c[c].type) for c in _AUDIT_COLUMNS])
        selects.append(row if always else row.where(won))
    source = selects[0] if rows == 1 else union_all(*selects)
    return insert(audit).from_select(_AUDIT_COLUMNS, source).add_cte(cas).returning(audit.c.id)


def cas_then_audit(
    conn: Connection,
    token: TokenRecord,
    state: TokenState,
    *,
    accepted_step: int | None,
    now: datetime,
    rows: list[dict[str, Any]],
    always: bool = False,
) -> bool:
    """:func:`apply_state` and :func:`insert_audits` in one statement (PostgreSQL only): True
    when the compare-and-set won; the audit rows are written only then, unless ``always``."""
    params = _cas_params(token, state, accepted_step, now)
    for i, row in enumerate(rows):
        params.update({f"a{i}_{c}": row[c] for c in _AUDIT_COLUMNS})
    stmt = _cas_then_audit(accepted_step is not None, len(rows), always)
    written = conn.execute(stmt, params).all()
    return bool(written) if not always else True


def serials_present(conn: Connection, serials: list[str]) -> dict[str, TokenRecord]:
    found: dict[str, TokenRecord] = {}
    for i in range(0, len(serials), 500):
        chunk = serials[i : i + 500]
        for r in conn.execute(_token_select().where(tokens.c.serial.in_(chunk))):
            rec = TokenRecord.from_row(r)
            found[rec.serial or ""] = rec
    return found


# --- audit -------------------------------------------------------------------------------


def insert_audit(conn: Connection, values: dict[str, Any]) -> None:
    """One audit row (with every column given)."""
    conn.execute(_INSERT_AUDIT, values)


def insert_audits(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Several audit rows in one statement (each row with every column given)."""
    conn.execute(_INSERT_AUDIT, rows)


def count_audit(
    conn: Connection,
    *,
    action: str,
    outcome: str,
    since: datetime,
    target_user: str | None = None,
    client: str | None = None,
) -> tuple[int, datetime | None]:
    """How many audit rows of one action and outcome since a time, for one user or address,
    and when the oldest of them was written."""
    conds = [audit.c.action == action, audit.c.outcome == outcome, audit.c.at >= since]
    if target_user is not None:
        conds.append(audit.c.target_user == target_user)
    if client is not None:
        conds.append(audit.c.client == client)
    row = conn.execute(select(func.count(), func.min(audit.c.at)).where(*conds)).one()
    return int(row[0]), row[1]


def query_audit(
    conn: Connection, where: AuditFilter, *, limit: int = 50, offset: int = 0
) -> Page[AuditRecord]:
    conds = _conditions(
        (
            where.user,
            lambda v: or_(
                func.lower(audit.c.target_user) == user_key(v),
                func.lower(audit.c.actor) == user_key(v),
            ),
        ),
        (where.serial, lambda v: audit.c.target_serial == v),
        (where.action, lambda v: starts_with(audit.c.action, v)),
        (where.outcome, lambda v: audit.c.outcome == v),
        (where.since, lambda v: audit.c.at >= v),
        (where.until, lambda v: audit.c.at < v),
    )
    query = select(audit).order_by(audit.c.id.desc())
    return _page(conn, query, audit, conds, AuditRecord.from_row, limit=limit, offset=offset)


# --- API keys ----------------------------------------------------------------------------


def insert_api_key(conn: Connection, **values: Any) -> None:
    conn.execute(insert(api_keys).values(**values))


# Built once: every bearer request runs it, and building a SELECT costs more than running it.
_GET_API_KEY = select(api_keys).where(api_keys.c.id == bindparam("key_id"))


def get_api_key(conn: Connection, key_id: str) -> ApiKeyRecord | None:
    row = conn.execute(_GET_API_KEY, {"key_id": key_id}).first()
    return ApiKeyRecord.from_row(row) if row else None


def api_keys_named(conn: Connection, name: str) -> list[ApiKeyRecord]:
    rows = conn.execute(select(api_keys).where(api_keys.c.name == name).order_by(api_keys.c.id))
    return [ApiKeyRecord.from_row(r) for r in rows]


def touch_api_key(conn: Connection, key_id: str, now: datetime, older_than: datetime) -> None:
    """Record a use, unless some worker already recorded one since ``older_than``."""
    used = api_keys.c.last_used_at
    conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, or_(used.is_(None), used < older_than))
        .values(last_used_at=now)
    )


def revoke_api_key(conn: Connection, key_id: str, now: datetime) -> bool:
    """Set ``revoked_at`` once; False if the key was already revoked (a concurrent revoke)."""
    stmt = update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
    return conn.execute(stmt.values(revoked_at=now)).rowcount == 1


def list_api_keys(conn: Connection) -> list[ApiKeyRecord]:
    """Every key, revoked ones too (they stay for the record), never the hashes."""
    columns = [c for c in api_keys.c if c.name != "hash"]
    query = select(*columns).order_by(api_keys.c.created_at, api_keys.c.id)
    return [ApiKeyRecord.from_row(r) for r in conn.execute(query)]
