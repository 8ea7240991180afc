"""Directory users over RADIUS password+otp (code first: a wrong code never reaches slapd),
failover across two slapd instances, the cache (zero LDAP requests), and 503 over REST."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import ldap3
import pytest
from fastapi.testclient import TestClient
from pyrad.packet import AccessRequest, AuthPacket
from slapdkit import Slapd, Tree

from conftest import AddDirectory, start_slapd
from keyfob.server import accounts, tap
from keyfob.server.api.app import create_app
from keyfob.server.context import ServerContext
from keyfob.server.directory import DirectoryUnavailable, admit, ldap
from keyfob.server.radius import clients
from keyfob.server.radius.clients import ClientSettings
from keyfob.server.radius.packets import dictionary
from keyfob.server.radius.server import RadiusServer
from keyfob.server.validation import validate
from testkit import Clock, activate_app

PW = "directory-pw-123"
SECRET = "radius-shared-secret-0123456789"
ACCEPT, REJECT = 2, 3


def radius_request(server: RadiusServer, user: str, password: str, ident: int) -> int | None:
    packet = AuthPacket(code=AccessRequest, id=ident, secret=SECRET.encode(), dict=dictionary())
    packet["User-Name"] = user
    packet[2] = [packet.PwCrypt(password)]
    packet.add_message_authenticator()
    reply = server.handle(bytes(packet.RequestPacket()), "127.0.0.1")
    return None if reply is None else reply[0]


def test_radius_password_otp_checks_the_code_first(
    ctx: ServerContext, clock: Clock, slapd: Slapd, tree: Tree, add_directory: AddDirectory
) -> None:
    tree.add_user("hank", PW)
    add_directory(tree)
    app = activate_app(ctx, clock, "hank")
    clients.add_client(
        ctx, "nas", "127.0.0.1", secret=SECRET, settings=ClientSettings(mode="password+otp")
    )
    server = RadiusServer(ctx)
    try:
        mark = slapd.log_mark()
        wrong = f"{(int(app.at(clock.now)) + 1) % 1_000_000:06d}"
        assert radius_request(server, "hank", PW + wrong, 1) == REJECT
        assert slapd.ops_since(mark, "BIND") == []  # a wrong code never reached slapd
        clock.advance(30)
        assert radius_request(server, "hank", "not-the-pw" + app.at(clock.now), 2) == REJECT
        assert len(slapd.ops_since(mark, "BIND")) == 1  # right code: then the password bind
        clock.advance(30)
        assert radius_request(server, "hank", PW + app.at(clock.now), 3) == ACCEPT
    finally:
        server.close()


def test_radius_password_otp_directory_user_with_a_passcode(
    ctx: ServerContext, clock: Clock, slapd: Slapd, tree: Tree, add_directory: AddDirectory
) -> None:
    """A temporary access passcode after the directory password: checked first, as a code is,
    at its own length (24 characters as shown); accepted once."""
    tree.add_user("ivy", PW)
    add_directory(tree)
    activate_app(ctx, clock, "ivy")
    _, passcode = tap.issue(ctx, "ivy", actor="helpdesk")
    clients.add_client(
        ctx, "nas", "127.0.0.1", secret=SECRET, settings=ClientSettings(mode="password+otp")
    )
    server = RadiusServer(ctx)
    try:
        mark = slapd.log_mark()
        assert radius_request(server, "ivy", PW + passcode, 1) == ACCEPT
        assert len(slapd.ops_since(mark, "BIND")) == 1
        assert radius_request(server, "ivy", PW + passcode, 2) == REJECT  # used up
        assert len(slapd.ops_since(mark, "BIND")) == 1  # refused before the directory
    finally:
        server.close()


@pytest.fixture
def pair(tls_dir: Path, tmp_path: Path) -> Iterator[list[Slapd]]:
    """Two slapd instances of their own (they get stopped), with the same tree."""
    servers = [start_slapd(tls_dir, tmp_path / f"slapd{i}") for i in range(2)]
    yield servers
    for s in servers:
        s.stop()


class Counting(ldap3.Connection):
    """The real ldap3 connection, counting what it sends."""

    sent: ClassVar[list[str]] = []

    def open(self, read_server_info: bool = True) -> None:
        Counting.sent.append("open")
        super().open(read_server_info)

    def bind(self, *args: Any, **kw: Any) -> bool:
        Counting.sent.append("bind")
        return bool(super().bind(*args, **kw))

    def search(self, *args: Any, **kw: Any) -> Any:
        Counting.sent.append("search")
        return super().search(*args, **kw)


def test_failover_cache_and_outage(
    ctx: ServerContext,
    clock: Clock,
    pair: list[Slapd],
    add_directory: AddDirectory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = Tree(pair)
    tree.create()
    for uid in ("ivy", "jack"):
        tree.add_user(uid, PW)
    add_directory(tree)
    pair[0].stop()  # the first server is down: the second answers, within the timeout
    started = time.monotonic()
    app = activate_app(ctx, clock, "ivy")
    assert time.monotonic() - started < ldap.CONNECT_TIMEOUT + 1
    # A cached user: not one LDAP request, counted on the wire and in slapd's log.
    monkeypatch.setattr(ldap, "CONNECTION_FACTORY", Counting)
    Counting.sent.clear()
    mark = pair[1].log_mark()
    assert validate(ctx, "ivy", app.at(clock.now)).accepted
    assert Counting.sent == []
    assert pair[1].ops_since(mark, "SRCH") == [] and pair[1].ops_since(mark, "BIND") == []
    pair[1].stop()  # every server down
    clock.advance(30)
    assert validate(ctx, "ivy", app.at(clock.now)).accepted  # cached: still validates
    with pytest.raises(DirectoryUnavailable):
        validate(ctx, "jack", "123456")  # never "wrong code"
    accounts.create_user(ctx, "local-user@example.com")
    assert not admit(ctx, "local-user@example.com").directory_user  # local users unaffected


def test_rest_answers_503_when_the_directory_is_down(
    ctx: ServerContext, pair: list[Slapd], add_directory: AddDirectory
) -> None:
    tree = Tree(pair)
    tree.create()
    add_directory(tree)
    for s in pair:
        s.stop()
    key = accounts.create_api_key(ctx, "t", "validate")[1]
    with TestClient(create_app(ctx)) as api:
        resp = api.post(
            "/api/v1/validate",
            json={"username": "kate", "code": "123456"},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "directory_unavailable"
