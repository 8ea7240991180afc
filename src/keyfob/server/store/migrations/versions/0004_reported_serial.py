"""reported_serial: the serial a user gives at self-service enrolment, apart from inventory serials

Revision ID: 0004
Revises: 0003

A serial typed (or read by the burner) when a user enrols a programmable token is the user's
word, not the vendor's: it used to go into ``tokens.serial``, which is unique, so it could block
the import of the vendor's seed file that holds the same serial, and answering "already
registered" told anyone whether a serial existed. It now lives in ``reported_serial`` (not
unique, never looked up as an inventory serial). Rows written the old way are moved over:
self-service enrolments (``source = 'enrolled'``, kind app or programmable; imports are always
kind classic) give their serial up to the new column.

Downgrade moves them back where that breaks no uniqueness (a serial the inventory now holds,
or a second copy of one reported serial, stays behind and is lost with the column).
"""

from alembic import op

from keyfob.server.store.migrations.columns import string

revision = "0004"
down_revision = "0003"

_SELF_ENROLLED = "kind IN ('app', 'programmable') AND source = 'enrolled'"


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(string("reported_serial", 128, nullable=True))
    op.execute(
        "UPDATE tokens SET reported_serial = serial, serial = NULL "
        f"WHERE serial IS NOT NULL AND {_SELF_ENROLLED}"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE tokens SET serial = reported_serial "
        "WHERE serial IS NULL AND reported_serial IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM tokens AS t2 WHERE t2.serial = tokens.reported_serial) "
        "AND NOT EXISTS (SELECT 1 FROM tokens AS t3 "
        "WHERE t3.reported_serial = tokens.reported_serial AND t3.id < tokens.id)"
    )
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_column("reported_serial")
