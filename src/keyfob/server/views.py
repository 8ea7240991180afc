"""How the service layer's records are shown to API clients, the pages and the CLI: plain
JSON values (ISO 8601 times, enums as their words), never a secret but the one an enrolment
hands out once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from keyfob.formats.qr import encode_svg
from keyfob.otp import group_key, to_base32
from keyfob.server.store.records import (
    ApiKeyRecord,
    AuditRecord,
    Enrolment,
    Page,
    TokenRecord,
    UserRecord,
)

T = TypeVar("T")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value.value if isinstance(value, Enum) else value


def _at(seconds: float) -> str:
    """Unix seconds as ISO 8601 UTC, like every other time in a view."""
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def _pick(record: object, *names: str) -> dict[str, Any]:
    return {name: _plain(getattr(record, name)) for name in names}


def token_view(t: TokenRecord, now: float) -> dict[str, Any]:
    v = t.verification
    locked = v.locked_until > now
    return (
        _pick(t, "id", "serial", "reported_serial", "kind", "type", "algorithm", "digits")
        | _pick(t, "period", "owner", "label", "state")
        | {
            "drift_steps": v.drift,
            "drift_seconds": v.drift * t.period,
            "fail_count": v.fail_count,
            "locked": locked,
            "locked_until": _at(v.locked_until) if locked else None,
        }
        | _pick(t, "manufacturer", "model", "source", "created_at", "activated_at")
        | _pick(t, "last_used_at", "expires_at", "lost_at", "retired_at")
    )


def tokens_view(page: Page[TokenRecord], now: float) -> dict[str, Any]:
    return {"items": [token_view(t, now) for t in page.items], "total": page.total}


def user_view(u: UserRecord) -> dict[str, Any]:
    return _pick(
        u, "username", "display_name", "role", "disabled", "must_change_password", "created_at"
    )


def page_view(
    page: Page[T], view: Callable[[T], dict[str, Any]], *, limit: int, offset: int
) -> dict[str, Any]:
    """One page of a listing as the REST API answers it (users, the audit log) and
    ``keyfob admin user list --json`` prints it: each item through ``view``, with where the
    page starts, how long it may be and how many rows match in all."""
    items = [view(item) for item in page.items]
    return {"items": items, "total": page.total, "limit": limit, "offset": offset}


def users_view(page: Page[UserRecord], *, limit: int, offset: int) -> dict[str, Any]:
    """One page of users as the REST API and ``keyfob admin user list --json`` answer it."""
    return page_view(page, user_view, limit=limit, offset=offset)


def api_key_view(k: ApiKeyRecord) -> dict[str, Any]:
    """An API key's record: what it is, when it was made, last used and revoked; no hash."""
    return _pick(k, "id", "name", "role", "created_at", "last_used_at", "revoked_at")


def audit_view(e: AuditRecord) -> dict[str, Any]:
    return _pick(e, "id", "at", "actor", "action", "target_user", "target_serial", "outcome") | (
        _pick(e, "reason", "client", "details")
    )


def enrolment_view(e: Enrolment) -> dict[str, Any]:
    """What a user needs to set a method up: the ``otpauth://`` URI and its QR code, the key in
    base32 and in groups of four, the parameters, and until when it can be verified."""
    uri, secret = e.otpauth_uri, e.credential.secret
    return (
        _pick(e, "id", "kind", "label")
        | {
            "otpauth_uri": uri,
            "secret": to_base32(secret),
            "manual_key": group_key(secret),
            "qr_svg": encode_svg(uri, title="Scan with your authenticator app"),
        }
        | _pick(e.credential, "algorithm", "digits", "period")
        | _pick(e, "expires_at")
    )
