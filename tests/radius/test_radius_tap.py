"""A temporary access passcode over RADIUS, asked with FreeRADIUS's own ``radclient``, on SQLite
and PostgreSQL: the whole User-Password in otp mode; typed with the password in password+otp
mode (after it or before it, with its spaces or without); the answer to the Access-Challenge in
challenge mode. Each time it is accepted once and then refused, and a 6-digit code still works
beside it."""

from __future__ import annotations

import pytest
from radiuskit import PASSWORD, RadClient, Radius

from keyfob.server import helpdesk, tap
from keyfob.server.store import repo

HELPDESK = "helpdesk@example.com"


def _issue(radius: Radius, name: str = "alice") -> str:
    _, passcode = tap.issue(radius.ctx, name, actor=HELPDESK, reason="INC-9")
    return passcode


def _uses(radius: Radius) -> list[str]:
    return [r["target_user"] for r in radius.audit("tap.use")]


@pytest.mark.parametrize("spaced", [True, False], ids=["as-shown", "digits-only"])
def test_otp_mode(radius: Radius, radclient: RadClient, spaced: bool) -> None:
    radius.add_client()
    radius.add_user("alice")
    passcode = _issue(radius)
    typed = passcode if spaced else passcode.replace(" ", "")
    reply = radclient(radius.port, User_Name="alice", User_Password=typed)
    assert reply.kind == "Access-Accept", reply.output
    assert radclient(radius.port, User_Name="alice", User_Password=typed).kind == "Access-Reject"
    assert _uses(radius) == ["alice"]
    row = radius.audit()[-2]  # the accepted validation, before the refused one
    assert (row["outcome"], row["reason"], row["actor"]) == ("success", "tap", "radius:nas")


@pytest.mark.parametrize("spaced", [True, False], ids=["as-shown", "digits-only"])
@pytest.mark.parametrize("otp_first", [False, True], ids=["password-then-code", "code-first"])
def test_password_and_otp_mode(
    radius: Radius, radclient: RadClient, otp_first: bool, spaced: bool
) -> None:
    """The password ends in digits on purpose (radiuskit.PASSWORD): the split is at the
    passcode's length, not wherever the digits begin."""
    radius.add_client(mode="password+otp", otp_first=otp_first)
    alice = radius.add_user("alice")
    passcode = _issue(radius)
    typed = passcode if spaced else passcode.replace(" ", "")

    def joined(code: str, password: str = PASSWORD) -> str:
        return code + password if otp_first else password + code

    # A wrong password is checked at both splits (the passcode's, the token's): two argon2
    # runs before the answer, so radclient waits longer than its usual 1.5 s.
    wrong = radclient(
        radius.port, timeout=5, User_Name="alice", User_Password=joined(typed, "wrong")
    )
    assert wrong.kind == "Access-Reject" and radius.audit()[-1]["reason"] == "bad_password"
    assert _uses(radius) == []  # a wrong password never reaches the passcode: still good
    reply = radclient(radius.port, User_Name="alice", User_Password=joined(typed))
    assert reply.kind == "Access-Accept", reply.output
    assert _uses(radius) == ["alice"]
    spent = radclient(radius.port, User_Name="alice", User_Password=joined(typed))
    assert spent.kind == "Access-Reject"
    code = radclient(
        radius.port, User_Name="alice", User_Password=joined(alice.code(radius.clock()))
    )
    assert code.kind == "Access-Accept", code.output  # the token's code, beside it, still works


def test_challenge_mode(radius: Radius, radclient: RadClient) -> None:
    radius.add_client(mode="challenge")
    radius.add_user("alice")
    passcode = _issue(radius)
    for expected in ("Access-Accept", "Access-Reject"):
        first = radclient(radius.port, User_Name="alice", User_Password=PASSWORD)
        assert first.kind == "Access-Challenge", first.output
        state = first.get("State") or ""
        reply = radclient(radius.port, User_Name="alice", User_Password=passcode, State=state)
        assert reply.kind == expected, reply.output
    assert _uses(radius) == ["alice"]


def test_a_lost_token_and_a_passcode(radius: Radius, radclient: RadClient) -> None:
    """Her only token lost: its code is refused, the passcode the helpdesk gave her is not —
    split at its own length although she has no active token to take a length from."""
    radius.add_client(mode="password+otp")
    alice = radius.add_user("alice")
    with radius.ctx.engine.connect() as conn:
        _, (token,) = repo.active_tokens_of(conn, "alice")
    _, passcode = helpdesk.mark_lost(radius.ctx, token.id, actor=HELPDESK, issue_tap=True)
    assert passcode is not None
    code = alice.code(radius.clock())
    assert radclient(radius.port, User_Name="alice", User_Password=PASSWORD + code).kind == (
        "Access-Reject"
    )
    reply = radclient(radius.port, User_Name="alice", User_Password=PASSWORD + passcode)
    assert reply.kind == "Access-Accept", reply.output
