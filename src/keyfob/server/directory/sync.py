"""Keep the local row of a directory user in step with the directory, by stable id.

- found, never seen: a new ``users`` row (no password: the directory checks it) and its link;
- found under a new name (renamed in the directory): the same row, renamed — tokens stay;
- a name now held by another directory user's row (the name was reused): that row is set aside
  under a name nobody signs in with, and the new user gets a row of their own, without tokens;
- a linked row under a name no directory knows any more: set aside the same way.

A set-aside row comes back under its new name the day the directory shows its stable id again.
"""

from __future__ import annotations

from sqlalchemy import Connection

from keyfob.server import auditlog
from keyfob.server.context import ServerContext
from keyfob.server.directory import store
from keyfob.server.directory.config import DirectoryRecord
from keyfob.server.directory.lookup import Found
from keyfob.server.directory.store import LocalRow
from keyfob.server.store import repo

ACTOR = "directory"


def aside_name(directory_id: str, external_id: str) -> str:
    """Where a row goes when its name passes to someone else: not a name anyone types (a
    lookup of it finds no directory user, and is refused like an unknown user)."""
    return f"~{directory_id[:8]}:{external_id}"[:255]


def _audit(ctx: ServerContext, conn: Connection, action: str, user: str, **details: str) -> None:
    auditlog.record(
        conn, ctx, actor=ACTOR, action=action, outcome="success", target_user=user, details=details
    )


def set_aside(ctx: ServerContext, conn: Connection, row: LocalRow) -> None:
    if row.directory_id is None or row.external_id is None:
        return
    name = aside_name(row.directory_id, row.external_id)
    if repo.user_key(row.username) == repo.user_key(name):
        return
    store.rename_user(conn, row.user_id, name)
    _audit(ctx, conn, "directory.user.set_aside", name, former=row.username)


def link(ctx: ServerContext, record: DirectoryRecord, found: Found) -> str | None:
    """The id of the row standing for ``found`` (created or renamed as needed); None when a
    local keyfob user holds the name (local users come first)."""
    now_dt = ctx.now_dt()
    with ctx.begin() as conn:
        linked = store.linked_row(conn, record.id, found.external_id)
        holder = store.local_row(conn, found.login)
        if holder is not None and (linked is None or holder.user_id != linked.user_id):
            if holder.directory_id is None:
                return None
            set_aside(ctx, conn, holder)
        if linked is None:
            return _create(ctx, conn, record, found)
        if linked.username != found.login:
            store.rename_user(conn, linked.user_id, found.login)
            _audit(ctx, conn, "directory.user.rename", found.login, former=linked.username)
            store.touch_link(conn, linked.user_id, found.dn, now_dt)
        return linked.user_id


def _create(ctx: ServerContext, conn: Connection, record: DirectoryRecord, found: Found) -> str:
    now_dt = ctx.now_dt()
    values = repo.user_values(found.login, now=now_dt, display_name=found.display_name[:255])
    user = repo.insert_user(conn, values)
    store.insert_link(
        conn,
        user_id=user.id,
        directory_id=record.id,
        external_id=found.external_id,
        dn=found.dn[:1024],
        seen_at=now_dt,
    )
    _audit(ctx, conn, "directory.user.link", found.login, directory=record.name)
    return user.id
