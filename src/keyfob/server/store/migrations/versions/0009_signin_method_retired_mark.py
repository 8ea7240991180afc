"""How a web session was signed in; the mark of a retired token on its former owner (issue 13)

Revision ID: 0009
Revises: 0008

``web_sessions.signed_in_with``: the id of the token whose code signed the session in, ``tap``
(a temporary access passcode) or ``password`` (a user without a second factor), so that a user
may mark their *other* tokens lost from the page, and a token marked lost ends the sessions it
opened. Sessions from before this revision keep NULL: unknown.

``users.token_retired_at``: when a token of the user's was last retired. Revision 0008 kept that
mark on the retired token's row (``tokens.retired_owner_id``), but a re-import of the serial
with ``--allow-retired`` replaces that row with a new life of the serial, and the mark went with
it: the former owner's password alone opened HTTP Basic again. The mark now lives on the user;
it is filled in from the retired rows there are. ``retired_owner_id`` stays, as where a retired
row came from.

Downgrade drops both columns: a former owner whose retired row was since replaced loses the mark
(revision 0008 has nowhere to keep it).
"""

from alembic import op

from keyfob.server.store.migrations.columns import batch_index, string, timestamp

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.add_column(string("signed_in_with", 32, nullable=True))
        batch_index(batch_op, "web_sessions", "signed_in_with")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(timestamp("token_retired_at", nullable=True))
    op.execute(
        "UPDATE users SET token_retired_at = "
        "COALESCE((SELECT MAX(tokens.retired_at) FROM tokens "
        "WHERE tokens.retired_owner_id = users.id), users.created_at) "
        "WHERE EXISTS (SELECT 1 FROM tokens WHERE tokens.retired_owner_id = users.id)"
    )


def downgrade() -> None:
    # Never a copy of users on SQLite: its DROP TABLE would run the foreign keys' actions (every
    # session and passcode deleted, every token's owner cleared). SQLite (3.35+) drops a plain
    # column in place.
    with op.batch_alter_table("users", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("token_retired_at")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_signed_in_with"))
        batch_op.drop_column("signed_in_with")
