"""Temporary access passcodes (issue 13)

Revision ID: 0007
Revises: 0006

``access_passes``: one row per passcode issued, holding only a peppered, salted hash.
"""

from alembic import op

from keyfob.server.store.migrations.columns import (
    create_id_table,
    foreign_key,
    integers,
    row_id,
    string,
    timestamp,
)

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    create_id_table(
        "access_passes",
        row_id("user_id"),
        string("kid", 8),
        string("salt", 32),
        string("hash", 64),
        *integers("uses_left", "uses", "failures"),
        string("issued_by", 255),
        string("reason", 255),
        timestamp("created_at"),
        timestamp("expires_at"),
        timestamp("revoked_at", nullable=True),
        foreign_key("access_passes", "user_id", "users", ondelete="CASCADE"),
    )
    op.create_index(op.f("ix_access_passes_user_id"), "access_passes", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_access_passes_user_id"), table_name="access_passes")
    op.drop_table("access_passes")
