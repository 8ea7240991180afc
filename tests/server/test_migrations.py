"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from keyfob.otp.verify import TokenState
from keyfob.server.store import repo
from keyfob.server.store.db import migrate
from keyfob.server.store.records import state_values
from keyfob.server.store.schema import metadata, tokens, users
from testkit import migrate_to


def test_migrations_match_the_declared_schema(ctx) -> None:
    with ctx.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_migrating_twice_is_a_no_op(ctx) -> None:
    migrate(ctx.engine)
    with ctx.engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    assert version == "0009"


def test_migration_0009_moves_the_retired_mark_to_the_user(ctx) -> None:
    """A retired token's former owner (revision 0008: ``tokens.retired_owner_id``) gets
    ``users.token_retired_at``, so the mark outlives the row; down and up again works."""
    migrate_to(ctx, "0008", down=True)
    try:
        old = sa.MetaData()
        old_users = sa.Table("users", old, autoload_with=ctx.engine)
        old_tokens = sa.Table("tokens", old, autoload_with=ctx.engine)
        now = ctx.now_dt()
        with ctx.engine.begin() as conn:
            conn.execute(sa.insert(old_users), [_user("u1", "was", now), _user("u2", "never", now)])
            conn.execute(sa.insert(old_tokens), [_retired("t1", "SER-1", "u1", now)])
        migrate_to(ctx, "head")
        with ctx.engine.connect() as conn:
            marks = dict(conn.execute(sa.select(users.c.id, users.c.token_retired_at)).all())
            assert repo.has_second_factor(conn, "u1") and not repo.has_second_factor(conn, "u2")
        assert marks == {"u1": now, "u2": None}
        owned = {**_retired("t2", "SER-2", "u1", now), "state": "active", "owner_id": "u2"}
        with ctx.engine.begin() as conn:
            conn.execute(sa.insert(tokens), [owned])
        migrate_to(ctx, "0008", down=True)
        gone = sa.inspect(ctx.engine)
        assert "token_retired_at" not in {c["name"] for c in gone.get_columns("users")}
        assert "signed_in_with" not in {c["name"] for c in gone.get_columns("web_sessions")}
        with ctx.engine.connect() as conn:  # users kept in place: no foreign-key action ran
            owner = conn.execute(sa.text("SELECT owner_id FROM tokens WHERE id = 't2'"))
            assert owner.scalar_one() == "u2"
    finally:
        migrate_to(ctx, "head")
        with ctx.engine.begin() as conn:
            conn.execute(sa.delete(tokens))
            conn.execute(sa.delete(users))


def _user(user_id: str, name: str, now: datetime) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": name,
        "username_key": name,
        "display_name": "",
        "password_hash": None,
        "must_change_password": False,
        "role": "user",
        "disabled": False,
        "created_at": now,
    }


def _retired(token_id: str, serial: str, owner: str, now: datetime) -> dict[str, Any]:
    """A tokens row as revision 0008's ``helpdesk.retire`` left it."""
    return {
        "id": token_id,
        "serial": serial,
        "kind": "classic",
        "type": "totp",
        "algorithm": "SHA1",
        "digits": 6,
        "period": 30,
        "secret_enc": b"\x01" + bytes(48),
        "owner_id": None,
        "label": "",
        "state": "retired",
        **state_values(TokenState()),
        "version": 0,
        "imported_drift": 0,
        "source": "f.csv",
        "created_at": now,
        "retired_at": now,
        "retired_owner_id": owner,
    }
