"""keyfob's RADIUS server against FreeRADIUS's own client, ``radclient``, on loopback: the
cases of issue 11, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from radiuskit import PASSWORD, SECRET, RadClient, Radius, Relay

from keyfob.server.radius.packets import MESSAGE_AUTHENTICATOR


def _attributes(raw: bytes) -> list[int]:
    """The attribute types of a raw reply, in order."""
    found, pos = [], 20
    while pos < len(raw):
        found.append(raw[pos])
        pos += raw[pos + 1]
    return found


def test_valid_code_is_accepted_wrong_code_rejected(radius: Radius, radclient: RadClient) -> None:
    radius.add_client()
    alice = radius.add_user("alice")
    wrong = f"{(int(alice.code(radius.clock())) + 1) % 10**6:06d}"
    assert radclient(radius.port, User_Name="alice", User_Password=wrong).kind == "Access-Reject"
    good = alice.code(radius.clock())
    reply = radclient(radius.port, User_Name="alice", User_Password=good)
    assert reply.kind == "Access-Accept", reply.output
    rows = radius.audit()
    assert [r["outcome"] for r in rows[-2:]] == ["failure", "success"]
    assert rows[-1]["actor"] == "radius:nas" and rows[-1]["client"] == "127.0.0.1"


def test_replayed_code_is_rejected(radius: Radius, radclient: RadClient) -> None:
    radius.add_client()
    alice = radius.add_user("alice")
    code = alice.code(radius.clock())
    assert radclient(radius.port, User_Name="alice", User_Password=code).kind == "Access-Accept"
    again = radclient(radius.port, User_Name="alice", User_Password=code)
    assert again.kind == "Access-Reject"
    assert radius.audit()[-1]["reason"] == "replay"


def test_unknown_user_and_locked_token_get_the_same_reject(
    radius: Radius, radclient: RadClient
) -> None:
    radius.add_client()
    alice = radius.add_user("alice")
    unknown = radclient(radius.port, User_Name="nobody", User_Password="123456")
    for _ in range(6):  # locks alice's token
        radclient(radius.port, User_Name="alice", User_Password="000000")
    locked = radclient(radius.port, User_Name="alice", User_Password=alice.code(radius.clock()))
    assert unknown.kind == locked.kind == "Access-Reject"
    # nothing tells them apart: the same attributes (the Message-Authenticator alone differs)
    assert [k for k, _ in unknown.attributes] == [k for k, _ in locked.attributes]
    assert [k for k, _ in unknown.attributes] == ["Message-Authenticator"]
    assert radius.audit()[-1]["reason"] == "locked"


@pytest.mark.parametrize("otp_first", [False, True], ids=["password-then-code", "code-first"])
def test_password_and_code(radius: Radius, radclient: RadClient, otp_first: bool) -> None:
    radius.add_client(mode="password+otp", otp_first=otp_first)
    alice = radius.add_user("alice")
    code = alice.code(radius.clock())
    text = code + PASSWORD if otp_first else PASSWORD + code
    reply = radclient(radius.port, User_Name="alice", User_Password=text)
    assert reply.kind == "Access-Accept", reply.output
    wrong = ("x" + PASSWORD + code) if not otp_first else (code + PASSWORD + "x")
    radius.clock.advance(30)
    assert radclient(radius.port, User_Name="alice", User_Password=wrong).kind == "Access-Reject"
    assert radius.audit()[-1]["reason"] == "bad_password"


def test_password_and_code_split_by_token_digits(radius: Radius, radclient: RadClient) -> None:
    radius.add_client(mode="password+otp")
    bob = radius.add_user("bob", digits=8)
    reply = radclient(
        radius.port, User_Name="bob", User_Password=PASSWORD + bob.code(radius.clock())
    )
    assert reply.kind == "Access-Accept", reply.output


def test_challenge_round_trip(radius: Radius, radclient: RadClient) -> None:
    radius.add_client(mode="challenge")
    alice = radius.add_user("alice")
    first = radclient(radius.port, User_Name="alice", User_Password=PASSWORD)
    assert first.kind == "Access-Challenge", first.output
    assert first.get("Reply-Message") == '"Enter the code shown on your token"'
    state = first.get("State")
    assert state and state.startswith("0x")
    code = alice.code(radius.clock())
    second = radclient(radius.port, User_Name="alice", User_Password=code, State=state)
    assert second.kind == "Access-Accept", second.output
    # single-use: the same State again is refused, even with the next code
    radius.clock.advance(30)
    third = radclient(
        radius.port, User_Name="alice", User_Password=alice.code(radius.clock()), State=state
    )
    assert third.kind == "Access-Reject"
    assert radius.audit()[-1]["reason"] == "bad_state"


def test_challenge_state_expires_and_is_bound_to_the_user(
    radius: Radius, radclient: RadClient
) -> None:
    radius.add_client(mode="challenge")
    alice = radius.add_user("alice")
    radius.add_user("bob")
    state = radclient(radius.port, User_Name="alice", User_Password=PASSWORD).get("State")
    assert state
    other = radclient(radius.port, User_Name="bob", User_Password="123456", State=state)
    assert other.kind == "Access-Reject"
    state = radclient(radius.port, User_Name="alice", User_Password=PASSWORD).get("State")
    assert state
    radius.clock.advance(121)
    late = radclient(
        radius.port, User_Name="alice", User_Password=alice.code(radius.clock()), State=state
    )
    assert late.kind == "Access-Reject"
    assert radclient(radius.port, User_Name="alice", User_Password="wrong password").kind == (
        "Access-Reject"
    )


def test_wrong_secret_gets_no_answer(radius: Radius, radclient: RadClient) -> None:
    radius.add_client()
    alice = radius.add_user("alice")
    reply = radclient(
        radius.port,
        secret="another-secret-0123456789",
        User_Name="alice",
        User_Password=alice.code(radius.clock()),
    )
    assert reply.kind is None
    assert _dropped(radius, "bad_message_authenticator") == 1
    assert radius.audit() == []  # never reached the engine: nothing burned, nothing counted


@pytest.mark.parametrize(
    ("reason", "request_extra"),
    [
        ("bad_authenticator", {"secret": "another-secret-0123456789"}),
        ("proxy_state_without_message_authenticator", {"Proxy_State": "0x01020304"}),
    ],
    ids=["wrong-secret", "proxy-state"],
)
def test_dropped_without_message_authenticator(
    radius: Radius, radclient: RadClient, reason: str, request_extra: dict[str, str]
) -> None:
    """A client that need not send a Message-Authenticator, alice, and a request of alice's
    without one: with a wrong secret, or with a Proxy-State (RFC 3579 wants the authenticator
    then), it gets no answer and one drop for ``reason``."""
    radius.add_client(require_message_authenticator=False)
    radius.add_user("alice")
    reply = radclient(
        radius.port,
        message_authenticator=False,
        User_Name="alice",
        User_Password="123456",
        **request_extra,
    )
    assert reply.kind is None
    assert _dropped(radius, reason) == 1


def test_unknown_client_gets_no_answer(radius: Radius, radclient: RadClient) -> None:
    radius.add_client(address="127.0.0.2")
    alice = radius.add_user("alice")
    reply = radclient(radius.port, User_Name="alice", User_Password=alice.code(radius.clock()))
    assert reply.kind is None
    assert _dropped(radius, "unknown_client") == 1


def test_missing_message_authenticator(radius: Radius, radclient: RadClient) -> None:
    radius.add_client()
    alice = radius.add_user("alice")
    bare = dict(User_Name="alice", User_Password=alice.code(radius.clock()))
    assert radclient(radius.port, message_authenticator=False, **bare).kind is None
    assert _dropped(radius, "missing_message_authenticator") == 1
    radius.set_client(require_message_authenticator=False)
    reply = radclient(radius.port, message_authenticator=False, **bare)
    assert reply.kind == "Access-Accept", reply.output


def test_chap_is_rejected_with_a_reason(radius: Radius, radclient: RadClient) -> None:
    radius.add_client()
    radius.add_user("alice")
    reply = radclient(radius.port, User_Name="alice", CHAP_Password="123456")
    assert reply.kind == "Access-Reject"
    assert "CHAP is not supported" in (reply.get("Reply-Message") or "")


def test_message_authenticator_first_in_every_answer(
    radius: Radius, radclient: RadClient, relay: Relay
) -> None:
    radius.add_client(mode="challenge")
    alice = radius.add_user("alice")
    challenge = radclient(relay.port, User_Name="alice", User_Password=PASSWORD)
    accept = radclient(
        relay.port,
        User_Name="alice",
        User_Password=alice.code(radius.clock()),
        State=challenge.get("State") or "",
    )
    reject = radclient(relay.port, User_Name="alice", User_Password="wrong password")
    kinds = [challenge.kind, accept.kind, reject.kind]
    assert kinds == ["Access-Challenge", "Access-Accept", "Access-Reject"]
    assert [raw[0] for raw in relay.replies] == [11, 2, 3]
    for raw in relay.replies:
        assert _attributes(raw)[0] == MESSAGE_AUTHENTICATOR
    # radclient checked the Message-Authenticator of each (it reports a bad one)
    assert "invalid Message-Authenticator" not in challenge.output + accept.output


def _dropped(radius: Radius, reason: str) -> float:
    value = radius.server.metrics.registry.get_sample_value(
        "keyfob_radius_dropped_total", {"reason": reason}
    )
    return value or 0.0


def test_secret_is_kept_sealed(radius: Radius) -> None:
    radius.add_client()
    from keyfob.server.radius.store import all_clients

    with radius.ctx.engine.connect() as conn:
        (record,) = all_clients(conn)
    assert SECRET.encode() not in record.secret_enc
    assert radius.ctx.ring.open(record.secret_enc, record.id) == SECRET.encode()
