"""Lost, found and retired tokens; drift history (issue 13)

Revision ID: 0008
Revises: 0007

``tokens.lost_at`` (when a token was marked lost; state ``lost``), ``tokens.retired_at`` (state
``retired``: the secret column overwritten), ``tokens.drift_history`` (the drift at each accepted
code, run-length encoded as JSON: keyfob.server.store.driftlog), ``tokens.retired_owner_id`` (whom
a retired token belonged to: it still counts as their second factor). New states are stored
words only.
"""

from alembic import op

from keyfob.server.store.migrations.columns import batch_index, row_id, string, timestamp

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(timestamp("lost_at", nullable=True))
        batch_op.add_column(timestamp("retired_at", nullable=True))
        batch_op.add_column(string("drift_history", 1024, nullable=True))
        batch_op.add_column(row_id("retired_owner_id", nullable=True))
        batch_index(batch_op, "tokens", "retired_owner_id")


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tokens_retired_owner_id"))
        batch_op.drop_column("retired_owner_id")
        batch_op.drop_column("drift_history")
        batch_op.drop_column("retired_at")
        batch_op.drop_column("lost_at")
