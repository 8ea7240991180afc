"""The database schema (docs/design.md §5) as SQLAlchemy Core tables.

Core rather than ORM: the hot path (validation) is three hand-written statements — one SELECT of
a user's active tokens through an index, one compare-and-set UPDATE, one audit INSERT — and the
atomic ``UPDATE … WHERE version = :v AND last_step < :s`` is clearer written out than hidden
behind a unit of work. Alembic migrations (``migrations/versions``) create exactly these tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    TypeDecorator,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are UTC everywhere: aware in Python, ``timestamptz`` in PostgreSQL, and
    naive-UTC text in SQLite (which has no time zones), read back as aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("username", String(255), nullable=False),
    Column("username_key", String(255), nullable=False, unique=True),  # casefolded UPN
    Column("display_name", String(255), nullable=False, default=""),
    Column("password_hash", String(255), nullable=True),
    Column("must_change_password", Boolean, nullable=False, default=False),
    Column("role", String(16), nullable=False, default="user"),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # When a token of this user's was last retired (issue 13). A retired token counts as their
    # second factor for good, so their password alone never enrols a new one (api/auth.py);
    # kept here rather than on the token row, which a re-import with --allow-retired replaces.
    Column("token_retired_at", UTCDateTime(), nullable=True),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("serial", String(128), nullable=True, unique=True),  # the inventory's (vendor) serial
    Column("kind", String(16), nullable=False),  # app | programmable | classic
    Column("type", String(8), nullable=False),  # totp | hotp
    Column("algorithm", String(8), nullable=False),
    Column("digits", Integer, nullable=False),
    Column("period", Integer, nullable=False),
    Column("secret_enc", LargeBinary, nullable=False),
    Column("owner_id", String(32), ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("label", String(255), nullable=False, default=""),
    Column("state", String(16), nullable=False),  # store.vocab.TokenStatus
    # verification state (docs/design.md §4.1); times are Unix seconds
    Column("last_step", BigInteger, nullable=False, default=-1),
    Column("drift", Integer, nullable=False, default=0),
    Column("fail_count", Integer, nullable=False, default=0),
    Column("locked_until", Float, nullable=False, default=0.0),
    Column("resync_step", BigInteger, nullable=True),
    Column("resync_offset", Integer, nullable=True),
    Column("resync_at", Float, nullable=True),
    Column("version", Integer, nullable=False, default=0),  # optimistic concurrency
    Column("imported_drift", Integer, nullable=False, default=0),
    Column("manufacturer", String(128), nullable=True),
    Column("model", String(128), nullable=True),
    Column("source", String(255), nullable=False, default="enrolled"),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("activated_at", UTCDateTime(), nullable=True),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("expires_at", UTCDateTime(), nullable=True),
    # The serial a user gave when enrolling a programmable token: their word, not the vendor's,
    # so neither unique nor an inventory serial (it must never block a seed-file import).
    Column("reported_serial", String(128), nullable=True),
    # Issue 13: when a token was marked lost (state lost) or retired (state retired: its
    # secret_enc overwritten), and the drift at each accepted code (store/driftlog.py).
    Column("lost_at", UTCDateTime(), nullable=True),
    Column("retired_at", UTCDateTime(), nullable=True),
    Column("drift_history", String(1024), nullable=True),
    # The user a retired token belonged to (owner_id is cleared): where the row came from. The
    # mark that it still counts as their second factor is users.token_retired_at, which outlives
    # this row (a re-import of the serial with --allow-retired replaces it with a new life).
    Column("retired_owner_id", String(32), nullable=True),
    Index("ix_tokens_owner_state", "owner_id", "state"),
    Index("ix_tokens_retired_owner_id", "retired_owner_id"),
    Index("ix_tokens_state_kind", "state", "kind"),
)

audit = Table(
    "audit",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False, index=True),
    Column("target_user", String(255), nullable=True, index=True),
    Column("target_serial", String(128), nullable=True, index=True),
    Column("outcome", String(16), nullable=False),
    Column("reason", String(64), nullable=True),
    Column("client", String(64), nullable=True),
    Column("details", JSON, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("role", String(16), nullable=False),  # validate | admin
    Column("hash", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),  # set once; a revoked key never works
)

radius_clients = Table(
    "radius_clients",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("address", String(64), nullable=False),
    Column("secret_enc", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # docs/design.md §6.4: how User-Password is read, and the Blast-RADIUS relaxation
    Column("mode", String(16), nullable=False, default="otp"),  # otp | password+otp | challenge
    Column("otp_first", Boolean, nullable=False, default=False),
    Column("require_message_authenticator", Boolean, nullable=False, default=True),
)

# One row per Access-Challenge sent: the State is single-use, bound to the user and the client,
# and lives 120 s. In the database, so that any server process may get the second request.
radius_challenges = Table(
    "radius_challenges",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the State, never the State
    Column("user_key", String(255), nullable=False),
    Column("client_id", String(32), nullable=False),
    Column("expires_at", Float, nullable=False, index=True),  # Unix seconds
)


def _users_row() -> Column[Any]:
    """``user_id``: the user a row belongs to (indexed); the row goes with the user."""
    return Column(
        "user_id",
        String(32),
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )


web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the cookie value, never the value
    _users_row(),
    Column("stage", String(16), nullable=False),  # password | full
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    # How a full session was signed in (issue 13): the id of the token whose code was typed,
    # "tap" (a temporary access passcode) or "password" (no second factor to ask for); NULL at
    # stage password, and for sessions from before revision 0009 (unknown).
    Column("signed_in_with", String(32), nullable=True, index=True),
)


# --- master keys (ids only, never key material) --------------------------------------------
# One row: the id of the key every new secret is sealed with. Sealing reads it in the sealing
# transaction (FOR SHARE on PostgreSQL), and rotate-key changes it in the re-encrypting
# transaction (FOR UPDATE), so no secret is ever sealed with a key that a rotation retires.
key_state = Table(
    "key_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("current_kid", String(8), nullable=False),  # hex of the 4-byte key id
    Column("changed_at", UTCDateTime(), nullable=False),
)

# Every running server process, with the key ids it holds: rotate-key refuses to switch to a
# key that a live server cannot open, instead of leaving that server answering errors.
server_nodes = Table(
    "server_nodes",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("seen_at", UTCDateTime(), nullable=False, index=True),
    Column("key_ids", String(255), nullable=False),  # comma-separated hex key ids
)

# --- rate limiting, shared by every worker and node ------------------------------------------
# One row per failed attempt in a bucket ("u:<user>|<address>", "a:<address>"…); rows older
# than the window are deleted as the limiter goes.
rate_events = Table(
    "rate_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("bucket", String(320), nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_rate_events_bucket_at", "bucket", "at"),
)

# --- directory users (docs/design.md §5, server/directory/) --------------------------------
# An LDAP or Active Directory server as a user source. The bind password is sealed like a
# token secret (the row id as associated data) and re-encrypted by rotate-key.
directories = Table(
    "directories",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # ad | openldap
    Column("urls", String(1024), nullable=False),  # comma-separated, in failover order
    Column("base_dn", String(1024), nullable=False),
    Column("bind_dn", String(1024), nullable=False),
    Column("secret_enc", LargeBinary, nullable=False),  # the bind password, sealed
    Column("login_attribute", String(64), nullable=False),
    Column("user_filter", String(1024), nullable=False, default=""),
    Column("group_dn", String(1024), nullable=False, default=""),
    Column("disabled_filter", String(1024), nullable=False, default=""),
    Column("ca_file", String(1024), nullable=False, default=""),
    Column("starttls", Boolean, nullable=False, default=False),
    Column("cache_ttl", Integer, nullable=False, default=300),
    Column("created_at", UTCDateTime(), nullable=False),
)

# A local user row that stands for a directory user, keyed by the directory's stable id
# (objectGUID, entryUUID): a renamed user keeps the row and its tokens, a new user who reuses
# an old name gets a new row.
directory_users = Table(
    "directory_users",
    metadata,
    Column("user_id", String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "directory_id",
        String(32),
        ForeignKey("directories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("external_id", String(64), nullable=False),
    Column("dn", String(1024), nullable=False),
    Column("seen_at", UTCDateTime(), nullable=False),
    Index("ix_directory_users_directory_external", "directory_id", "external_id", unique=True),
)


# --- temporary access passcodes (server/tap.py, issue 13) ------------------------------------
# At most one live pass per user (a new one revokes the old). Only HMAC-SHA256(pepper, salt ‖
# passcode) is stored; the pepper is derived from master key ``kid`` (KeyRing.pepper).
access_passes = Table(
    "access_passes",
    metadata,
    Column("id", String(32), primary_key=True),
    _users_row(),
    Column("kid", String(8), nullable=False),
    Column("salt", String(32), nullable=False),  # hex
    Column("hash", String(64), nullable=False),  # hex
    Column("uses_left", Integer, nullable=False),
    Column("uses", Integer, nullable=False),
    Column("failures", Integer, nullable=False, default=0),
    Column("issued_by", String(255), nullable=False),
    Column("reason", String(255), nullable=False, default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
)
