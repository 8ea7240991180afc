"""Raw datagrams: retransmissions, malformed and hostile packets (hypothesis-made among them).

A request is built with pyrad (the same packet code keyfob uses, but as a client) and sent
over a plain UDP socket, so a test can send the very same bytes twice or break them on purpose.
"""

from __future__ import annotations

import os
import socket
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyrad.packet import AccessRequest, AuthPacket
from radiuskit import SECRET, Radius

from keyfob.server.radius.packets import dictionary


def request(user: str, password: str, *, secret: str = SECRET, ident: int = 7) -> bytes:
    packet = AuthPacket(code=AccessRequest, id=ident, secret=secret.encode(), dict=dictionary())
    packet["User-Name"] = user
    packet[2] = [packet.PwCrypt(password)]
    packet.add_message_authenticator()
    return bytes(packet.RequestPacket())


def exchange(port: int, data: bytes, wait: float = 1.0) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(wait)
        sock.sendto(data, ("127.0.0.1", port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def test_retransmission_is_answered_from_the_cache(radius: Radius) -> None:
    """The same packet twice: the same answer twice, one verification in the audit log."""
    radius.add_client()
    alice = radius.add_user("alice")
    data = request("alice", alice.code(radius.clock()))
    first = exchange(radius.port, data)
    second = exchange(radius.port, data)
    assert first is not None and first[0] == 2  # Access-Accept
    assert second == first
    assert len(radius.audit()) == 1
    # a new request (new authenticator) with the same code is a replay: checked, refused
    third = exchange(radius.port, request("alice", alice.code(radius.clock())))
    assert third is not None and third[0] == 3
    assert [r["reason"] for r in radius.audit()][-1] == "replay"
    retransmitted = radius.server.metrics.registry.get_sample_value(
        "keyfob_radius_retransmissions_total"
    )
    assert retransmitted == 1


def test_retransmitted_reject_is_not_a_second_failure(radius: Radius) -> None:
    radius.add_client()
    radius.add_user("alice")
    data = request("alice", "000000")
    answers = {exchange(radius.port, data) for _ in range(4)}
    assert len(answers) == 1
    assert len(radius.audit()) == 1


def test_same_key_other_bytes_is_dropped(radius: Radius) -> None:
    radius.add_client()
    radius.add_user("alice")
    data = request("alice", "000000")
    assert exchange(radius.port, data) is not None
    forged = data[:20] + data[20:-1] + bytes([data[-1] ^ 1])
    assert exchange(radius.port, forged, 0.5) is None


def _still_serving(radius: Radius) -> None:
    answer = exchange(radius.port, request("nobody", "123456", ident=99), 3.0)
    assert answer is not None and answer[0] == 3


def test_malformed_packets_get_no_answer(radius: Radius) -> None:
    radius.add_client()
    radius.add_user("alice")
    good = request("alice", "123456")
    header = good[:4]
    bad = [
        b"",
        good[:19],  # shorter than a header
        good[:30],  # truncated: Length says more than arrived
        header[:2] + struct.pack("!H", 19) + good[4:],  # Length below 20
        header[:2] + struct.pack("!H", 5000) + good[4:] + bytes(5000),  # Length above 4096
        good[:20] + bytes([1, 0]) + good[20:],  # attribute length 0 (Length not updated)
        header[:2] + struct.pack("!H", len(good) + 3) + good[4:] + bytes([1, 200, 0]),  # overflow
        header[:2] + struct.pack("!H", len(good) + 1) + good[4:] + b"\x01",  # half a header
        os.urandom(4096),  # 4 KiB of garbage
        bytes([1]) + os.urandom(4095),
        bytes([4]) + good[1:],  # Accounting-Request to the auth port
        bytes([12]) + good[1:],  # Status-Server
    ]
    for data in bad:
        assert exchange(radius.port, data, 0.3) is None, data[:24].hex()
    _still_serving(radius)
    dropped = radius.server.metrics.registry.get_sample_value(
        "keyfob_radius_dropped_total", {"reason": "malformed"}
    )
    assert dropped is not None and dropped >= 8


def test_two_message_authenticators_are_malformed(radius: Radius) -> None:
    radius.add_client()
    good = request("alice", "123456")
    extra = bytes([80, 18]) + bytes(16)
    data = good[:2] + struct.pack("!H", len(good) + 18) + good[4:] + extra
    assert exchange(radius.port, data, 0.3) is None
    _still_serving(radius)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    blob=st.binary(min_size=0, max_size=600),
    code=st.sampled_from([1, 1, 1, 2, 4, 11, 12, 255]),
    attrs=st.lists(
        st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=40)),
        max_size=12,
    ),
)
def test_hypothesis_made_packets_never_crash_the_server(
    radius: Radius, blob: bytes, code: int, attrs: list[tuple[int, int, bytes]]
) -> None:
    """Packets with a plausible header and any attributes, and plain noise: no answer (none
    can carry the right Message-Authenticator), no crash, and the server goes on serving."""
    if not radius.server.clients.clients():
        radius.add_client()
    body = b"".join(bytes([kind, size]) + value for kind, size, value in attrs)
    data = bytes([code, 1]) + struct.pack("!H", 20 + len(body)) + os.urandom(16) + body
    for datagram in (data, blob):
        radius.server.handle(datagram, "127.0.0.1")  # the whole pipeline, synchronously
        assert radius.server.handle(datagram, "127.0.0.1") is None
    errors = radius.server.metrics.registry.get_sample_value(
        "keyfob_radius_dropped_total", {"reason": "internal_error"}
    )
    assert not errors


def test_hostile_packets_over_udp_then_still_serving(radius: Radius) -> None:
    radius.add_client()
    for size in (20, 21, 60, 253, 1024, 4096):
        body = os.urandom(size - 20)
        data = bytes([1, 3]) + struct.pack("!H", size) + os.urandom(16) + body
        assert exchange(radius.port, data, 0.2) is None
    _still_serving(radius)
