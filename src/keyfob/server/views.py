"""How tokens and users are shown to API clients and the CLI (never a secret)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from keyfob.server.store.records import TokenRecord, UserRecord


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def token_view(t: TokenRecord, now: float) -> dict[str, Any]:
    v = t.verification
    return {
        "id": t.id,
        "serial": t.serial,
        "reported_serial": t.reported_serial,
        "kind": t.kind,
        "type": t.type.value,
        "algorithm": t.algorithm.value,
        "digits": t.digits,
        "period": t.period,
        "owner": t.owner,
        "label": t.label,
        "state": t.state,
        "drift_steps": v.drift,
        "drift_seconds": v.drift * t.period,
        "fail_count": v.fail_count,
        "locked": v.locked_until > now,
        "locked_until": v.locked_until if v.locked_until > now else None,
        "manufacturer": t.manufacturer,
        "model": t.model,
        "source": t.source,
        "created_at": _iso(t.created_at),
        "activated_at": _iso(t.activated_at),
        "last_used_at": _iso(t.last_used_at),
        "expires_at": _iso(t.expires_at),
    }


def user_view(u: UserRecord) -> dict[str, Any]:
    return {
        "username": u.username,
        "display_name": u.display_name,
        "role": u.role,
        "disabled": u.disabled,
        "must_change_password": u.must_change_password,
        "created_at": _iso(u.created_at),
    }


def api_key_view(k: dict[str, Any]) -> dict[str, Any]:
    """An API key's record: what it is, when it was made, last used and revoked; no hash."""
    return {
        "id": k["id"],
        "name": k["name"],
        "role": k["role"],
        "created_at": _iso(k["created_at"]),
        "last_used_at": _iso(k["last_used_at"]),
        "revoked_at": _iso(k["revoked_at"]),
    }
