"""RADIUS: per-client mode and Message-Authenticator flag, challenge states

Revision ID: 0005
Revises: 0004

``radius_clients`` (empty until now: nothing wrote to it) gets the client's mode, whether the
code comes first, and whether an Access-Request must carry a Message-Authenticator (yes by
default: Blast-RADIUS, CVE-2024-3596). ``radius_challenges`` holds the State of every
Access-Challenge in flight, so that any server process may receive the answer to it.
"""

import sqlalchemy as sa
from alembic import op

from keyfob.server.store.migrations.columns import batch_index, column, primary_key, row_id, string

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    with op.batch_alter_table("radius_clients", schema=None) as batch_op:
        batch_op.add_column(column("mode", sa.String(length=16), server_default="otp"))
        batch_op.add_column(column("otp_first", sa.Boolean(), server_default=sa.false()))
        batch_op.add_column(
            column("require_message_authenticator", sa.Boolean(), server_default=sa.true())
        )
    op.create_table(
        "radius_challenges",
        string("id", 64),
        string("user_key", 255),
        row_id("client_id"),
        column("expires_at", sa.Float()),
        primary_key("radius_challenges"),
    )
    with op.batch_alter_table("radius_challenges", schema=None) as batch_op:
        batch_index(batch_op, "radius_challenges", "expires_at")


def downgrade() -> None:
    with op.batch_alter_table("radius_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_radius_challenges_expires_at"))
    op.drop_table("radius_challenges")
    with op.batch_alter_table("radius_clients", schema=None) as batch_op:
        batch_op.drop_column("require_message_authenticator")
        batch_op.drop_column("otp_first")
        batch_op.drop_column("mode")
