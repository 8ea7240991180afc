"""SingleProfileSession against the emulator: a whole burn, typed errors, faults."""

from __future__ import annotations

import pytest

from keyfob.otp import Algorithm, hotp
from keyfob.token.emulator import create
from keyfob.token.errors import AuthenticationFailed, BadData, NotAuthenticated, TransportLost
from keyfob.token.memory import MemoryConnection
from keyfob.token.models import by_name
from keyfob.token.session import SingleProfileSession
from testkit import T0, Clock


def burn(model: str = "OTPC-P2", **kw):
    """An emulated token of ``model`` on its own clock (at T0) and a session with it."""
    clock = Clock()
    card = create(by_name(model), host_clock=clock, **kw)
    return clock, card, SingleProfileSession(MemoryConnection(card))


def test_full_burn_sequence() -> None:
    _clock, card, s = burn(clock_offset=-400)
    info = s.get_info()
    assert info.model.name == "OTPC-P2-i" and info.restricted_sync is True
    assert info.clock == T0 - 400
    s.authenticate()
    s.write_config(clock=T0, algorithm=Algorithm.SHA256, period=60)
    s.write_seed(b"S" * 32)
    assert s.get_info().clock == T0
    assert card.press() == hotp(b"S" * 32, T0 // 60, 6, Algorithm.SHA256)


def test_unknown_serial_prefix_has_no_model() -> None:
    _, _, s = burn(serial="1234567890")
    assert s.get_info().model is None


def test_wrong_key_is_a_typed_error() -> None:
    _, _card, s = burn()
    s.key = b"\x00" * 16
    with pytest.raises(AuthenticationFailed) as err:
        s.authenticate()
    assert "sealed" in err.value.hint


def test_secure_command_without_auth() -> None:
    _, _card, s = burn()
    s.authenticated = True  # the client thinks so; the token does not
    with pytest.raises(NotAuthenticated):
        s.write_seed(b"x" * 20)


def test_parameters_the_token_cannot_hold_are_refused_before_sending() -> None:
    _, card, s = burn()
    s.authenticate()
    before = card.apdu_count
    with pytest.raises(BadData, match="SHA512"):
        s.write_config(algorithm=Algorithm.SHA512)
    with pytest.raises(BadData, match="45 s"):
        s.write_config(period=45)
    with pytest.raises(BadData, match="64 bytes"):
        s.write_seed(b"x" * 64)
    assert card.apdu_count == before


def test_link_drop_is_transport_lost_and_nothing_changed() -> None:
    _, card, s = burn("C302")
    s.authenticate()
    s.write_seed(b"old seed is twenty b")
    card.faults.drop_on = 1
    with pytest.raises(TransportLost) as err:
        s.write_seed(b"new seed is twenty b")
    assert "hold it still" in err.value.hint
    assert card.seed == b"old seed is twenty b"
    assert not card.authenticated  # the field was lost: a fresh challenge is needed
    s.authenticate()
    s.write_seed(b"new seed is twenty b")
    assert card.seed == b"new seed is twenty b"


def test_delay_fault(monkeypatch) -> None:
    _, card, s = burn()
    slept = []
    monkeypatch.setattr("time.sleep", lambda x: slept.append(x))
    card.faults.delay = 0.25
    s.get_info()
    assert slept == [0.25]
