"""initial schema: users, tokens, audit, api_keys, radius_clients

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from keyfob.server.store.migrations.columns import (
    column,
    foreign_key,
    integers,
    primary_key,
    row_id,
    serial_id,
    string,
    timestamp,
    unique,
)

revision = "0001"
down_revision = None


def upgrade() -> None:

    op.create_table(
        "api_keys",
        string("id", 16),
        string("name", 255),
        string("role", 16),
        string("hash", 64),
        timestamp("created_at"),
        timestamp("last_used_at", nullable=True),
        primary_key("api_keys"),
    )
    op.create_table(
        "audit",
        serial_id(),
        timestamp("at"),
        string("actor", 255),
        string("action", 64),
        string("target_user", 255, nullable=True),
        string("target_serial", 128, nullable=True),
        string("outcome", 16),
        string("reason", 64, nullable=True),
        string("client", 64, nullable=True),
        column("details", sa.JSON(), nullable=True),
        primary_key("audit"),
    )
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_target_serial"), ["target_serial"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_target_user"), ["target_user"], unique=False)

    op.create_table(
        "radius_clients",
        row_id(),
        string("name", 255),
        string("address", 64),
        column("secret_enc", sa.LargeBinary()),
        timestamp("created_at"),
        primary_key("radius_clients"),
        unique("radius_clients", "name"),
    )
    op.create_table(
        "users",
        row_id(),
        string("username", 255),
        string("username_key", 255),
        string("display_name", 255),
        string("password_hash", 255, nullable=True),
        column("must_change_password", sa.Boolean()),
        string("role", 16),
        column("disabled", sa.Boolean()),
        timestamp("created_at"),
        primary_key("users"),
        unique("users", "username_key"),
    )
    op.create_table(
        "tokens",
        row_id(),
        string("serial", 128, nullable=True),
        string("kind", 16),
        string("type", 8),
        string("algorithm", 8),
        *integers("digits", "period"),
        column("secret_enc", sa.LargeBinary()),
        row_id("owner_id", nullable=True),
        string("label", 255),
        string("state", 16),
        column("last_step", sa.BigInteger()),
        column("drift", sa.Integer()),
        column("fail_count", sa.Integer()),
        column("locked_until", sa.Float()),
        column("resync_step", sa.BigInteger(), nullable=True),
        column("resync_offset", sa.Integer(), nullable=True),
        column("resync_at", sa.Float(), nullable=True),
        column("version", sa.Integer()),
        column("imported_drift", sa.Integer()),
        string("manufacturer", 128, nullable=True),
        string("model", 128, nullable=True),
        string("source", 255),
        timestamp("created_at"),
        timestamp("activated_at", nullable=True),
        timestamp("last_used_at", nullable=True),
        timestamp("expires_at", nullable=True),
        foreign_key("tokens", "owner_id", "users", ondelete="SET NULL"),
        primary_key("tokens"),
        unique("tokens", "serial"),
    )
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.create_index("ix_tokens_owner_state", ["owner_id", "state"], unique=False)
        batch_op.create_index("ix_tokens_state_kind", ["state", "kind"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_tokens_state_kind")
        batch_op.drop_index("ix_tokens_owner_state")

    op.drop_table("tokens")
    op.drop_table("users")
    op.drop_table("radius_clients")
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_target_user"))
        batch_op.drop_index(batch_op.f("ix_audit_target_serial"))
        batch_op.drop_index(batch_op.f("ix_audit_at"))
        batch_op.drop_index(batch_op.f("ix_audit_action"))

    op.drop_table("audit")
    op.drop_table("api_keys")
