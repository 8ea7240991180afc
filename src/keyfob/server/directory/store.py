"""Every SQL statement of the directory users: the directories and the links of local rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from keyfob.server.directory.config import DirectoryRecord
from keyfob.server.store import repo
from keyfob.server.store.schema import directories, directory_users, users


@dataclass(frozen=True)
class LocalRow:
    """The ``users`` row holding a name, and its link when it stands for a directory user."""

    user_id: str
    username: str
    disabled: bool
    directory_id: str | None
    external_id: str | None


def all_directories(conn: Connection) -> list[DirectoryRecord]:
    rows = conn.execute(select(directories).order_by(directories.c.created_at, directories.c.name))
    return [DirectoryRecord.from_row(r) for r in rows]


def get_directory(conn: Connection, name: str) -> DirectoryRecord | None:
    row = conn.execute(select(directories).where(directories.c.name == name)).first()
    return DirectoryRecord.from_row(row) if row else None


def insert_directory(conn: Connection, **values: Any) -> None:
    conn.execute(insert(directories).values(**values))


def update_directory(conn: Connection, directory_id: str, **values: Any) -> None:
    conn.execute(update(directories).where(directories.c.id == directory_id).values(**values))


def delete_directory(conn: Connection, directory_id: str) -> list[str]:
    """Delete a directory and its links; the ids of the users that were linked to it."""
    linked = [
        r.user_id
        for r in conn.execute(
            select(directory_users.c.user_id).where(directory_users.c.directory_id == directory_id)
        )
    ]
    conn.execute(delete(directory_users).where(directory_users.c.directory_id == directory_id))
    conn.execute(delete(directories).where(directories.c.id == directory_id))
    return linked


def _local_select() -> Any:
    return select(
        users.c.id,
        users.c.username,
        users.c.disabled,
        directory_users.c.directory_id,
        directory_users.c.external_id,
    ).select_from(users.outerjoin(directory_users, directory_users.c.user_id == users.c.id))


def _local(row: Any) -> LocalRow | None:
    if row is None:
        return None
    return LocalRow(row.id, row.username, bool(row.disabled), row.directory_id, row.external_id)


def local_row(conn: Connection, username: str) -> LocalRow | None:
    """The row holding ``username`` (any case), with its directory link if any: one SELECT."""
    stmt = _local_select().where(users.c.username_key == repo.user_key(username))
    return _local(conn.execute(stmt).first())


def linked_row(conn: Connection, directory_id: str, external_id: str) -> LocalRow | None:
    stmt = _local_select().where(
        directory_users.c.directory_id == directory_id,
        directory_users.c.external_id == external_id,
    )
    return _local(conn.execute(stmt).first())


def rename_user(conn: Connection, user_id: str, username: str) -> None:
    conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(username=username, username_key=repo.user_key(username))
    )


def insert_link(conn: Connection, **values: Any) -> None:
    conn.execute(insert(directory_users).values(**values))


def touch_link(conn: Connection, user_id: str, dn: str, now: datetime) -> None:
    conn.execute(
        update(directory_users)
        .where(directory_users.c.user_id == user_id)
        .values(dn=dn, seen_at=now)
    )


def set_disabled(conn: Connection, user_ids: list[str], disabled: bool) -> None:
    if user_ids:
        conn.execute(update(users).where(users.c.id.in_(user_ids)).values(disabled=disabled))


def count_links(conn: Connection) -> dict[str, int]:
    """Linked users per directory id."""
    stmt = select(directory_users.c.directory_id, func.count()).group_by(
        directory_users.c.directory_id
    )
    return {row[0]: int(row[1]) for row in conn.execute(stmt)}
