"""Server settings: explicit, typed, from arguments or ``KEYFOB_*`` environment variables.

One :class:`Settings` object is built at start and passed down; nothing reads the environment
later (no global state).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from keyfob.errors import KeyfobError
from keyfob.otp.verify import Policy

DEFAULT_DB = "sqlite:///keyfob.db"


class SettingsError(KeyfobError):
    code = "settings"


class Settings(BaseSettings):
    """Everything the server can be told; defaults follow docs/design.md §4 to §6."""

    model_config = SettingsConfigDict(env_prefix="KEYFOB_", extra="ignore")

    db: str = DEFAULT_DB
    host: str = "127.0.0.1"
    port: int = 8400
    key_file: Path | None = None
    master_key: SecretStr | None = None
    issuer: str = "keyfob"
    max_methods: int = Field(5, ge=1, le=100)
    enrol_ttl: int = Field(600, ge=60, le=86400)
    max_request_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    window: int = Field(1, ge=0, le=10)
    resync_window: int = Field(120, ge=1, le=2880)
    lockout_threshold: int = Field(5, ge=1, le=100)
    # A running server records itself and the master keys it holds this often (seconds), so
    # that rotate-key can refuse to switch to a key some live server cannot open.
    node_heartbeat: float = Field(10.0, ge=0.05, le=3600)
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: comma-separated
    # addresses or networks, or "*". Empty (the default): none, so no client can pick the
    # address that the sign-in limiter counts and the audit records.
    forwarded_allow_ips: str = ""

    def policy(self) -> Policy:
        return Policy(
            window=self.window,
            resync_window=self.resync_window,
            lockout_threshold=self.lockout_threshold,
        )

    def trusted_proxies(self) -> list[str]:
        """``forwarded_allow_ips`` checked, as a list (uvicorn would quietly take a typo for a
        host name that never matches, or a network written with host bits for nothing)."""
        items = [item.strip() for item in self.forwarded_allow_ips.split(",") if item.strip()]
        for item in items:
            if item == "*":
                continue
            try:
                ipaddress.ip_network(item)
            except ValueError as exc:
                raise SettingsError(
                    f"--forwarded-allow-ips: {item!r} is not an IP address or network ({exc})",
                    hint="give the proxies' addresses, e.g. 127.0.0.1 or 10.0.0.0/8 (no host "
                    "bits in a network), comma-separated",
                ) from None
        return items

    def resolved_key_file(self) -> Path:
        """Next to a SQLite database by default, else in the working directory."""
        if self.key_file is not None:
            return self.key_file
        if self.db.startswith("sqlite:///") and self.db != "sqlite:///:memory:":
            return Path(self.db.removeprefix("sqlite:///")).with_suffix(".key")
        return Path("keyfob.key")
