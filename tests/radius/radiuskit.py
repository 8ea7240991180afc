"""What the RADIUS tests share: a keyfob RADIUS server with its context and clock, users with
a TOTP token, FreeRADIUS's ``radclient`` driven as a NAS would, and a recording relay that
keeps every raw reply so that tests can read its attributes in order. The fixtures that build
them are in conftest.py."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from keyfob.otp.hotp import totp
from keyfob.server import accounts, enrolment
from keyfob.server.context import ServerContext
from keyfob.server.radius import clients
from keyfob.server.radius.clients import ClientSettings
from keyfob.server.radius.server import RadiusServer, RadiusThread
from testkit import Clock

STRICT = os.environ.get("KEYFOB_STRICT") == "1"
SECRET = "testing-secret-0123456789"  # the shared secret of the test client
PASSWORD = "correct horse 42"  # ends in digits on purpose: the split is by the token's digits


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reset_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if sa.inspect(conn).has_table("key_state"):
                tables = sa.inspect(conn).get_table_names()
                names = ", ".join(t for t in tables if t != "alembic_version")
                conn.exec_driver_sql(f"TRUNCATE {names} CASCADE")
    finally:
        engine.dispose()


def enrol_app(
    ctx: ServerContext, name: str, at: float, *, digits: int = 6, password: str | None = PASSWORD
) -> bytes:
    """Create ``name`` with ``password`` (their own, not one-time) and activate a TOTP app with
    the code of time ``at``; returns the app's secret."""
    accounts.create_user(ctx, name, password=password, one_time=False)
    begun = enrolment.begin(ctx, name, "app", digits=digits, actor="test")
    secret = begun.credential.secret
    code = totp(secret, at, digits)
    enrolment.verify_enrolment(ctx, name, begun.id, code, actor="test")
    return secret


@dataclass
class User:
    name: str
    secret: bytes
    digits: int = 6

    def code(self, at: float) -> str:
        return totp(self.secret, at, self.digits)


@dataclass
class Radius:
    """A keyfob RADIUS server on 127.0.0.1:``port``, with its context and clock."""

    ctx: ServerContext
    clock: Clock
    port: int
    thread: RadiusThread | None = None
    users: dict[str, User] = field(default_factory=dict)

    @property
    def server(self) -> RadiusServer:
        assert self.thread is not None
        return self.thread.server

    def add_user(self, name: str, *, digits: int = 6, password: str | None = PASSWORD) -> User:
        """A user with a password (their own, not one-time) and an active TOTP app."""
        secret = enrol_app(self.ctx, name, self.clock(), digits=digits, password=password)
        self.clock.advance(30)  # the enrolment code's step is used: the next one is fresh
        user = self.users[name] = User(name, secret, digits)
        return user

    def add_client(
        self, name: str = "nas", address: str = "127.0.0.1", secret: str = SECRET, **kw: Any
    ) -> None:
        clients.add_client(self.ctx, name, address, secret=secret, settings=ClientSettings(**kw))
        self.server.clients.refresh()

    def set_client(self, name: str = "nas", **kw: Any) -> None:
        clients.set_client(self.ctx, name, ClientSettings(**kw))
        self.server.clients.refresh()

    def audit(self, action: str = "validate") -> list[dict[str, Any]]:
        from keyfob.server.store.schema import audit

        with self.ctx.engine.connect() as conn:
            rows = conn.execute(
                sa.select(audit).where(audit.c.action == action).order_by(audit.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]


# --- radclient ------------------------------------------------------------------------------


@dataclass
class Reply:
    """What radclient printed: the answer's name and its attributes, in the order received."""

    kind: str | None  # Access-Accept | Access-Reject | Access-Challenge | None (no answer)
    attributes: list[tuple[str, str]]
    output: str

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.attributes if k == name), None)


_RECEIVED = re.compile(r"Received (Access-\w+) Id")
_ATTRIBUTE = re.compile(r"^\s+([A-Za-z0-9-]+) = (.*)$")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


RadClient = Callable[..., Reply]


def run_radclient(
    binary: str,
    port: int,
    *,
    secret: str = SECRET,
    message_authenticator: bool = True,
    timeout: float = 1.5,
    **attributes: str,
) -> Reply:
    """One Access-Request with one try (``-r 1``), the reply parsed from ``-x`` output."""
    lines = [
        f"{k.replace('_', '-')} = {v if v.startswith('0x') else _quote(v)}"
        for k, v in attributes.items()
    ]
    if message_authenticator:
        lines.append("Message-Authenticator = 0x00")  # radclient computes it
    proc = subprocess.run(
        [binary, "-x", "-r", "1", "-t", str(timeout), f"127.0.0.1:{port}", "auth", secret],
        input=",\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    out = proc.stdout + proc.stderr
    received = _RECEIVED.search(out)
    attrs: list[tuple[str, str]] = []
    if received:
        for line in out[received.end() :].splitlines()[1:]:
            found = _ATTRIBUTE.match(line)
            if not found:
                break
            attrs.append((found.group(1), found.group(2).strip()))
    return Reply(received.group(1) if received else None, attrs, out)


class Relay:
    """A UDP relay between radclient and keyfob that keeps every raw reply."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.replies: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, sender = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
                up.settimeout(3)
                up.sendto(data, self.upstream)
                try:
                    reply = up.recv(65535)
                except TimeoutError:
                    continue
            self.replies.append(reply)
            self.sock.sendto(reply, sender)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
