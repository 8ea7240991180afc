"""Column and constraint builders for the revisions in ``versions/``.

This module is not a revision: Alembic reads revisions from ``versions/`` only, and this file
sits beside ``env.py``. Each builder writes exactly what ``alembic revision --autogenerate``
wrote for that column; a column is NOT NULL unless ``nullable=True`` is given, and constraint
names follow the naming convention of ``store/schema.py`` (``pk_<table>``,
``uq_<table>_<column>``, ``fk_<table>_<column>_<target>``).

Released revisions call these builders, so what a builder makes must never change (that would
change the schema an old revision builds): when a new column needs something else, write it
out or add another builder.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

ROW_ID = 32  # repo.new_id(): a UUID4 in hex


def column(name: str, type_: Any, *, nullable: bool = False, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, type_, nullable=nullable, **kw)


def string(name: str, length: int, *, nullable: bool = False) -> sa.Column[Any]:
    return column(name, sa.String(length=length), nullable=nullable)


def row_id(name: str = "id", *, nullable: bool = False) -> sa.Column[Any]:
    """A row's own id, or the id of the row it refers to."""
    return string(name, ROW_ID, nullable=nullable)


def serial_id() -> sa.Column[Any]:
    """An autoincrementing ``id``: BIGINT on PostgreSQL, INTEGER (the rowid) on SQLite."""
    integer = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    return column("id", integer, autoincrement=True)


def timestamp(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    """A UTC point in time (``TIMESTAMP WITH TIME ZONE``; SQLite stores text)."""
    return column(name, sa.DateTime(timezone=True), nullable=nullable)


def primary_key(table: str, name: str = "id") -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(name, name=op.f(f"pk_{table}"))


def unique(table: str, name: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(name, name=op.f(f"uq_{table}_{name}"))


def foreign_key(table: str, name: str, target: str, *, ondelete: str) -> sa.ForeignKeyConstraint:
    """``table.name`` refers to ``target.id``."""
    return sa.ForeignKeyConstraint(
        [name], [f"{target}.id"], name=op.f(f"fk_{table}_{name}_{target}"), ondelete=ondelete
    )


def integers(*names: str) -> list[sa.Column[Any]]:
    """NOT NULL ``INTEGER`` columns, in order."""
    return [column(name, sa.Integer()) for name in names]


def create_id_table(table: str, *items: sa.schema.SchemaItem) -> None:
    """``op.create_table`` of a table keyed by its own row id: ``id``, the ``items``, the
    primary key ``pk_<table>`` (CREATE TABLE writes the primary key before other constraints
    wherever it is given)."""
    op.create_table(table, row_id(), *items, primary_key(table))


def batch_index(batch_op: BatchOperations, table: str, name: str) -> None:
    """Autogenerate's plain index ``ix_<table>_<name>`` of one column, in a batch."""
    batch_op.create_index(batch_op.f(f"ix_{table}_{name}"), [name], unique=False)
