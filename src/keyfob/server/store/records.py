"""Typed rows: what the service layer sees of the tables (secrets stay sealed here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keyfob.otp import Algorithm, OtpType
from keyfob.otp.verify import TokenParams, TokenState


@dataclass(frozen=True)
class UserRecord:
    id: str
    username: str
    display_name: str
    role: str
    disabled: bool
    must_change_password: bool
    has_password: bool
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> UserRecord:
        m = row._mapping
        return cls(
            id=m["id"],
            username=m["username"],
            display_name=m["display_name"],
            role=m["role"],
            disabled=bool(m["disabled"]),
            must_change_password=bool(m["must_change_password"]),
            has_password=m["password_hash"] is not None,
            created_at=m["created_at"],
        )


@dataclass(frozen=True)
class TokenRecord:
    id: str
    serial: str | None
    kind: str
    type: OtpType
    algorithm: Algorithm
    digits: int
    period: int
    secret_enc: bytes = field(repr=False)
    owner_id: str | None
    owner: str | None
    label: str
    state: str
    verification: TokenState
    version: int
    imported_drift: int
    manufacturer: str | None
    model: str | None
    source: str
    created_at: datetime
    activated_at: datetime | None
    last_used_at: datetime | None
    expires_at: datetime | None
    reported_serial: str | None = None  # a user's word, never an inventory serial

    @classmethod
    def from_row(cls, row: Any) -> TokenRecord:
        m = row._mapping
        return cls(
            id=m["id"],
            serial=m["serial"],
            kind=m["kind"],
            type=OtpType(m["type"]),
            algorithm=Algorithm(m["algorithm"]),
            digits=m["digits"],
            period=m["period"],
            secret_enc=bytes(m["secret_enc"]),
            owner_id=m["owner_id"],
            owner=m.get("owner"),
            label=m["label"],
            state=m["state"],
            verification=TokenState(
                last_step=m["last_step"],
                drift=m["drift"],
                fail_count=m["fail_count"],
                locked_until=m["locked_until"],
                resync_step=m["resync_step"],
                resync_offset=m["resync_offset"],
                resync_at=m["resync_at"],
            ),
            version=m["version"],
            imported_drift=m["imported_drift"],
            manufacturer=m["manufacturer"],
            model=m["model"],
            source=m["source"],
            created_at=m["created_at"],
            activated_at=m["activated_at"],
            last_used_at=m["last_used_at"],
            expires_at=m["expires_at"],
            reported_serial=m.get("reported_serial"),
        )

    def params(self, secret: bytes) -> TokenParams:
        return TokenParams(
            secret=secret,
            type=self.type,
            algorithm=self.algorithm,
            digits=self.digits,
            period=self.period,
        )


def state_values(state: TokenState) -> dict[str, Any]:
    """Column values of a verification state, for INSERT and UPDATE."""
    return {
        "last_step": state.last_step,
        "drift": state.drift,
        "fail_count": state.fail_count,
        "locked_until": state.locked_until,
        "resync_step": state.resync_step,
        "resync_offset": state.resync_offset,
        "resync_at": state.resync_at,
    }
