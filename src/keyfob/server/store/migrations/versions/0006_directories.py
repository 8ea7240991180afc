"""Directory users: LDAP / Active Directory sources and the links of their local rows

Revision ID: 0006
Revises: 0005

``directories`` holds each directory's servers, search settings and sealed bind password;
``directory_users`` links a local ``users`` row to its directory entry by the stable id
(objectGUID, entryUUID), unique per directory.
"""

import sqlalchemy as sa
from alembic import op

from keyfob.server.store.migrations.columns import (
    column,
    create_id_table,
    foreign_key,
    primary_key,
    row_id,
    string,
    timestamp,
    unique,
)

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    create_id_table(
        "directories",
        string("name", 64),
        string("kind", 16),
        string("urls", 1024),
        string("base_dn", 1024),
        string("bind_dn", 1024),
        column("secret_enc", sa.LargeBinary()),
        string("login_attribute", 64),
        string("user_filter", 1024),
        string("group_dn", 1024),
        string("disabled_filter", 1024),
        string("ca_file", 1024),
        column("starttls", sa.Boolean()),
        column("cache_ttl", sa.Integer()),
        timestamp("created_at"),
        unique("directories", "name"),
    )
    op.create_table(
        "directory_users",
        row_id("user_id"),
        row_id("directory_id"),
        string("external_id", 64),
        string("dn", 1024),
        timestamp("seen_at"),
        foreign_key("directory_users", "user_id", "users", ondelete="CASCADE"),
        foreign_key("directory_users", "directory_id", "directories", ondelete="CASCADE"),
        primary_key("directory_users", "user_id"),
    )
    op.create_index(
        "ix_directory_users_directory_external",
        "directory_users",
        ["directory_id", "external_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_directory_users_directory_external", table_name="directory_users")
    op.drop_table("directory_users")
    op.drop_table("directories")
