"""The one status-word table: every SW but OK maps to one error class, and the sessions raise
exactly that class (they have no mapping of their own)."""

from __future__ import annotations

import pytest

from keyfob.token import protocol as p
from keyfob.token.connection import Connection
from keyfob.token.errors import AuthenticationFailed, NotAuthenticated, TokenError
from keyfob.token.session import (
    SESSION_EXPIRED,
    SW_RULES,
    Molto2Session,
    SingleProfileSession,
    error_for,
)

FAILURES = [sw for sw in p.Sw if sw is not p.Sw.OK]


class Answers(Connection):
    """A card that answers every command with the same status word."""

    def __init__(self, sw: int) -> None:
        self.sw = sw

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        return b"", self.sw


def test_every_status_word_but_ok_has_exactly_one_rule() -> None:
    assert set(SW_RULES) == set(FAILURES)
    assert error_for(p.Sw.OK, "anything") is None


@pytest.mark.parametrize("sw", FAILURES, ids=lambda sw: sw.name)
def test_each_status_word_is_its_class(sw: p.Sw) -> None:
    err = error_for(sw, "write seed")
    assert type(err) is SW_RULES[sw].error
    assert issubclass(SW_RULES[sw].error, TokenError)
    assert err.sw == sw
    assert err.message.startswith("write seed: ")
    assert err.hint == SW_RULES[sw].hint
    assert sw.meaning


@pytest.mark.parametrize("sw", FAILURES, ids=lambda sw: sw.name)
@pytest.mark.parametrize("session", [SingleProfileSession, Molto2Session])
def test_sessions_raise_the_table_class(session, sw: p.Sw) -> None:
    with pytest.raises(TokenError) as err:
        session(Answers(sw)).get_info()
    assert type(err.value) is SW_RULES[sw].error
    assert err.value.sw == sw


@pytest.mark.parametrize("tries", [0, 1, 9, 0xFF])
def test_63nn_is_a_wrong_key_with_tries_left(tries: int) -> None:
    err = error_for(0x6300 | tries, "authenticate")
    assert type(err) is AuthenticationFailed
    assert err.tries_left == tries
    assert f"{tries} tries left" in err.message
    assert p.Sw.of(0x6300 | tries) is p.Sw.WRONG_KEY


def test_6983_in_an_authenticated_session_means_it_expired() -> None:
    err = error_for(p.Sw.AUTH_FAILED, "write seed", authenticated=True)
    assert type(err) is SESSION_EXPIRED.error is NotAuthenticated
    assert isinstance(err, AuthenticationFailed)  # still the table's class for 6983
    assert "authenticate again" in err.hint


def test_unknown_status_is_a_plain_token_error() -> None:
    err = error_for(0x6F00, "get info")
    assert type(err) is TokenError
    assert err.message == "get info: unknown status 6F00"
    assert p.Sw.of(0x6F00) is None
