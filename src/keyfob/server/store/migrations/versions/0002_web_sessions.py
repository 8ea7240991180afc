"""web sessions for the self-service and admin pages

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from keyfob.server.store.migrations.columns import (
    foreign_key,
    primary_key,
    row_id,
    string,
    timestamp,
)

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        string("id", 64),
        row_id("user_id"),
        string("stage", 16),
        string("csrf", 64),
        timestamp("created_at"),
        timestamp("expires_at"),
        foreign_key("web_sessions", "user_id", "users", ondelete="CASCADE"),
        primary_key("web_sessions"),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_sessions_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_user_id"))
    op.drop_table("web_sessions")
