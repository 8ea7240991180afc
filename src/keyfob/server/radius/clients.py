"""RADIUS clients (the NAS: a VPN concentrator, a Wi-Fi controller, NPS): who may ask, with
which shared secret, and how its User-Password is to be read.

Secrets are sealed with the key ring like token secrets (the row id as associated data), so
``rotate-key`` re-encrypts them with everything else (``store/keystate.sealed_rows``). A secret
keyfob generates is returned once, to be printed once; it is never shown again, logged or
audited. :class:`ClientTable` is the server's view: the clients with their opened secrets,
matched by source address, re-read every few seconds so that a change made with the CLI or
the admin page reaches every running server without a restart.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from keyfob.server import auditlog
from keyfob.server.context import ServerContext
from keyfob.server.errors import Conflict, NotFound, ServiceError
from keyfob.server.inputs import forbidden_at, one_of
from keyfob.server.radius import store
from keyfob.server.radius.store import ClientRecord
from keyfob.server.store import repo

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MIN_SECRET = 16  # draft-ietf-radext-deprecating-radius: long random secrets
MAX_SECRET = 128
GENERATED_SECRET = 32  # 32 letters and digits: 190 bits, typeable on any NAS form
_ALPHABET = string.ascii_letters + string.digits
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


class Mode(StrEnum):
    """How a client's User-Password is read (docs/design.md §6.4)."""

    OTP = "otp"
    PASSWORD_OTP = "password+otp"
    CHALLENGE = "challenge"


@dataclass(frozen=True)
class ClientSettings:
    """What an admin chooses for a client; ``None`` in an update means "unchanged"."""

    address: str | None = None
    mode: str | None = None
    otp_first: bool | None = None
    require_message_authenticator: bool | None = None


def generate_secret() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(GENERATED_SECRET))


def check_name(name: str) -> str:
    """1 to 64 letters, digits, dots, dashes and underscores: it goes into URLs and logs."""
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise ServiceError(
            "a RADIUS client name is 1 to 64 letters, digits, '.', '-' or '_'",
            hint="name it after the device, e.g. fortigate-hq",
        )
    return name


def check_address(address: str) -> str:
    """One address or a network, stored in its canonical form (``10.0.0.0/8``)."""
    try:
        network = ipaddress.ip_network(address.strip(), strict=True)
    except ValueError as exc:
        raise ServiceError(
            f"{address.strip()[:64]!r} is not an IP address or network ({exc})",
            hint="give the address the device sends from, e.g. 192.0.2.10 or 10.0.0.0/24 "
            "(no host bits in a network)",
        ) from None
    return str(network)


_MODE_HINT = (
    "otp: the code alone; password+otp: the password and the code; challenge: the password, "
    "then an Access-Challenge for the code"
)


def check_mode(mode: str) -> str:
    return one_of(Mode, mode, "RADIUS mode", hint=_MODE_HINT).value


def check_secret(secret: str) -> str:
    if not MIN_SECRET <= len(secret) <= MAX_SECRET or forbidden_at(secret) is not None:
        raise ServiceError(
            f"a shared secret is {MIN_SECRET} to {MAX_SECRET} printable characters",
            hint="leave --secret out and keyfob generates a strong one",
        )
    return secret


def add_client(
    ctx: ServerContext,
    name: str,
    address: str,
    *,
    secret: str | None = None,
    settings: ClientSettings | None = None,
    actor: str = "cli",
    client: str | None = None,
) -> tuple[ClientRecord, str | None]:
    """Register a client; returns it and the generated secret (None when one was given)."""
    chosen = settings or ClientSettings()
    name, address = check_name(name), check_address(address)
    generated = generate_secret() if secret is None else None
    plain = check_secret(secret) if secret is not None else generated
    assert plain is not None
    mode = check_mode(chosen.mode or Mode.OTP.value)
    row_id = repo.new_id()
    with ctx.begin() as conn:
        if store.get_client(conn, name) is not None:
            raise Conflict(f"RADIUS client {name!r} exists", hint="pick another name, or use set")
        store.insert_client(
            conn,
            id=row_id,
            name=name,
            address=address,
            secret_enc=ctx.seal(conn, plain.encode(), row_id),
            created_at=ctx.now_dt(),
            mode=mode,
            otp_first=bool(chosen.otp_first),
            require_message_authenticator=chosen.require_message_authenticator is not False,
        )
        record = store.get_client(conn, name)
        assert record is not None
        _audit(conn, ctx, "radius_client.add", record, actor, client)
    return record, generated


def list_clients(ctx: ServerContext) -> list[ClientRecord]:
    with ctx.engine.connect() as conn:
        return store.all_clients(conn)


def remove_client(
    ctx: ServerContext, name: str, *, actor: str = "cli", client: str | None = None
) -> None:
    with ctx.begin() as conn:
        record = _existing(conn, name)
        store.delete_client(conn, record.id)
        _audit(conn, ctx, "radius_client.remove", record, actor, client)


def set_client(
    ctx: ServerContext,
    name: str,
    settings: ClientSettings,
    *,
    secret: str | None = None,
    new_secret: bool = False,
    actor: str = "cli",
    client: str | None = None,
) -> tuple[ClientRecord, str | None]:
    """Change a client; ``new_secret`` generates a secret, returned once like at ``add``."""
    values: dict[str, Any] = {}
    if settings.address is not None:
        values["address"] = check_address(settings.address)
    if settings.mode is not None:
        values["mode"] = check_mode(settings.mode)
    if settings.otp_first is not None:
        values["otp_first"] = settings.otp_first
    if settings.require_message_authenticator is not None:
        values["require_message_authenticator"] = settings.require_message_authenticator
    generated = generate_secret() if new_secret and secret is None else None
    plain = check_secret(secret) if secret is not None else generated
    with ctx.begin() as conn:
        record = _existing(conn, name)
        if plain is not None:
            values["secret_enc"] = ctx.seal(conn, plain.encode(), record.id)
        if values:
            store.update_client(conn, record.id, **values)
        record = _existing(conn, name)
        changed = sorted(k if k != "secret_enc" else "secret_changed" for k in values)
        _audit(conn, ctx, "radius_client.set", record, actor, client, changed)
    return record, generated


def _existing(conn: Any, name: str) -> ClientRecord:
    record = store.get_client(conn, name.strip())
    if record is None:
        raise NotFound(f"no RADIUS client {name.strip()[:64]!r}", hint="see radius-client list")
    return record


def _audit(
    conn: Any,
    ctx: ServerContext,
    action: str,
    record: ClientRecord,
    actor: str,
    client: str | None,
    changed: list[str] | None = None,
) -> None:
    details: dict[str, Any] = {
        "name": record.name,
        "address": record.address,
        "mode": record.mode,
        "otp_first": record.otp_first,
        "require_message_authenticator": record.require_message_authenticator,
    }
    if changed is not None:
        details["changed"] = changed
    auditlog.record(
        conn, ctx, actor=actor, action=action, outcome="success", client=client, details=details
    )


# --- the server's view ----------------------------------------------------------------------


@dataclass(frozen=True)
class KnownClient:
    """A client as the server uses it: its network parsed and its secret opened."""

    record: ClientRecord
    network: IpNetwork
    secret: bytes

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def name(self) -> str:
        return self.record.name


def source_address(host: str) -> IpAddress | None:
    """The sender of a datagram; an IPv4-mapped IPv6 address (dual-stack socket) as IPv4."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientTable:
    """Every client, re-read from the database at most every ``ttl`` seconds.

    The most specific network wins, so a device can have its own secret inside a network
    that another entry covers."""

    def __init__(
        self, ctx: ServerContext, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ctx, self.ttl, self._clock = ctx, ttl, clock
        self._lock = threading.Lock()
        self._clients: list[KnownClient] = []
        self._loaded_at = -float("inf")

    def refresh(self) -> list[KnownClient]:
        with self.ctx.engine.connect() as conn:
            records = store.all_clients(conn)
        known = [
            KnownClient(r, ipaddress.ip_network(r.address), self.ctx.ring.open(r.secret_enc, r.id))
            for r in records
        ]
        known.sort(key=lambda k: k.network.prefixlen, reverse=True)
        with self._lock:
            self._clients, self._loaded_at = known, self._clock()
        return known

    def clients(self) -> list[KnownClient]:
        with self._lock:
            fresh = self._clock() - self._loaded_at < self.ttl
            current = self._clients
        return current if fresh else self.refresh()

    def match(self, host: str) -> KnownClient | None:
        address = source_address(host)
        if address is None:
            return None
        for known in self.clients():
            if address.version == known.network.version and address in known.network:
                return known
        return None
