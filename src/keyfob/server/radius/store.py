"""Every SQL statement of the RADIUS front end: clients and challenge states.

Kept beside the RADIUS code rather than in ``store/repo.py`` so that the front end can be read
(and reviewed) as one package; the tables themselves are in ``store/schema.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from keyfob.server.store.schema import radius_challenges, radius_clients


@dataclass(frozen=True)
class ClientRecord:
    """A ``radius_clients`` row; the secret stays sealed here."""

    id: str
    name: str
    address: str
    mode: str
    otp_first: bool
    require_message_authenticator: bool
    created_at: datetime
    secret_enc: bytes

    @classmethod
    def from_row(cls, row: Any) -> ClientRecord:
        m = row._mapping
        return cls(
            id=m["id"],
            name=m["name"],
            address=m["address"],
            mode=m["mode"],
            otp_first=bool(m["otp_first"]),
            require_message_authenticator=bool(m["require_message_authenticator"]),
            created_at=m["created_at"],
            secret_enc=bytes(m["secret_enc"]),
        )


def all_clients(conn: Connection) -> list[ClientRecord]:
    rows = conn.execute(select(radius_clients).order_by(radius_clients.c.name))
    return [ClientRecord.from_row(r) for r in rows]


def get_client(conn: Connection, name: str) -> ClientRecord | None:
    row = conn.execute(select(radius_clients).where(radius_clients.c.name == name)).first()
    return ClientRecord.from_row(row) if row else None


def insert_client(conn: Connection, **values: Any) -> None:
    conn.execute(insert(radius_clients).values(**values))


def update_client(conn: Connection, client_id: str, **values: Any) -> None:
    conn.execute(update(radius_clients).where(radius_clients.c.id == client_id).values(**values))


def delete_client(conn: Connection, client_id: str) -> None:
    conn.execute(delete(radius_clients).where(radius_clients.c.id == client_id))
    conn.execute(delete(radius_challenges).where(radius_challenges.c.client_id == client_id))


def insert_challenge(
    conn: Connection, state_hash: str, user_key: str, client_id: str, expires_at: float, now: float
) -> None:
    """A new challenge; expired ones go first (through the index on ``expires_at``)."""
    conn.execute(delete(radius_challenges).where(radius_challenges.c.expires_at < now))
    conn.execute(
        insert(radius_challenges).values(
            id=state_hash, user_key=user_key, client_id=client_id, expires_at=expires_at
        )
    )


def take_challenge(
    conn: Connection, state_hash: str, user_key: str, client_id: str, now: float
) -> bool:
    """Consume a live challenge of this user and client: one DELETE, so that of two processes
    given the same State at once, exactly one gets True. A State presented for another user or
    client is consumed all the same (it was seen by the wrong party: it must not work later)."""
    taken = conn.execute(
        delete(radius_challenges)
        .where(radius_challenges.c.id == state_hash)
        .returning(
            radius_challenges.c.user_key,
            radius_challenges.c.client_id,
            radius_challenges.c.expires_at,
        )
    ).first()
    if taken is None:
        return False
    return bool(
        taken.user_key == user_key and taken.client_id == client_id and taken.expires_at > now
    )
