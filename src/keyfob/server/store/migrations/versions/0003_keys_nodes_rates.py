"""key ids, server registry, shared rate limiter, API key revocation

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from keyfob.server.store.migrations.columns import (
    column,
    primary_key,
    row_id,
    serial_id,
    string,
    timestamp,
)

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "key_state",
        column("id", sa.Integer(), autoincrement=False),
        string("current_kid", 8),
        timestamp("changed_at"),
        primary_key("key_state"),
    )
    op.create_table(
        "server_nodes",
        row_id(),
        string("host", 255),
        column("pid", sa.Integer()),
        timestamp("started_at"),
        timestamp("seen_at"),
        string("key_ids", 255),
        primary_key("server_nodes"),
    )
    with op.batch_alter_table("server_nodes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_server_nodes_seen_at"), ["seen_at"], unique=False)
    op.create_table(
        "rate_events",
        serial_id(),
        string("bucket", 320),
        column("at", sa.Float()),
        primary_key("rate_events"),
    )
    with op.batch_alter_table("rate_events", schema=None) as batch_op:
        batch_op.create_index("ix_rate_events_bucket_at", ["bucket", "at"], unique=False)
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(timestamp("revoked_at", nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
    with op.batch_alter_table("rate_events", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_events_bucket_at")
    op.drop_table("rate_events")
    with op.batch_alter_table("server_nodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_server_nodes_seen_at"))
    op.drop_table("server_nodes")
    op.drop_table("key_state")
