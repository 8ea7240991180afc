"""The Molto2 emulator (docs/token-protocol.md §5, §6.2), driven through Molto2Session."""

from __future__ import annotations

import pytest

from keyfob.otp import Algorithm, hotp
from keyfob.token import protocol as p
from keyfob.token.crypto import molto2_key
from keyfob.token.emulator import MOLTO2_AUTH_TRIES, Molto2Token, create
from keyfob.token.errors import AuthenticationFailed, NeedsButton, NotAuthenticated, TokenError
from keyfob.token.memory import MemoryConnection
from keyfob.token.models import by_name
from keyfob.token.session import Molto2Session
from testkit import T0, Clock

H = bytes.fromhex


@pytest.fixture
def card(clock: Clock) -> Molto2Token:
    c = create(by_name("Molto2"), host_clock=clock)
    assert isinstance(c, Molto2Token)
    return c


def session(card: Molto2Token, key: bytes = b"TOKEN2MOLTO1-KEY") -> Molto2Session:
    return Molto2Session(MemoryConnection(card), key)


def test_fifty_independent_profiles(card, clock) -> None:
    s = session(card)
    s.authenticate()
    s.write_config(3, clock=T0, digits=8, period=60)
    s.write_seed(3, b"profile-three-seed!!")
    s.write_title(3, "GitHub")
    s.write_config(7, clock=T0, algorithm=Algorithm.SHA256)
    s.write_seed(7, b"profile-seven-seed!!")
    profiles = s.profiles()
    assert len(profiles) == 50
    assert [pr.index for pr in profiles if pr.occupied] == [3, 7]
    assert (profiles[3].title, profiles[3].digits, profiles[3].period) == ("GitHub", 8, 60)
    assert card.press(3) == hotp(b"profile-three-seed!!", T0 // 60, 8)
    assert card.press(7) == hotp(b"profile-seven-seed!!", T0 // 30, 6, Algorithm.SHA256)
    assert card.press(0) == "no seed"


def test_wrong_key_counts_down(card) -> None:
    s = session(card, b"not the key")
    with pytest.raises(AuthenticationFailed) as err:
        s.authenticate()
    assert err.value.tries_left == MOLTO2_AUTH_TRIES - 1
    assert err.value.sw == 0x6300 | (MOLTO2_AUTH_TRIES - 1)
    with pytest.raises(AuthenticationFailed) as err:
        s.authenticate()
    assert err.value.tries_left == MOLTO2_AUTH_TRIES - 2
    session(card).authenticate()  # success resets the counter
    assert card.tries_left == MOLTO2_AUTH_TRIES


def test_unauthenticated_reads_deletes_and_reset(card) -> None:
    s = session(card)
    s.authenticate()
    s.write_seed(5, b"x" * 20)
    s.write_title(5, "Keep")
    fresh = session(card)
    card.power_off()
    assert fresh.read_profile(5).occupied
    fresh.delete_seed(5)  # no authentication needed
    assert not fresh.read_profile(5).occupied
    assert fresh.read_profile(5).title == "Keep"  # the title survives a delete
    with pytest.raises(TokenError) as err:
        fresh.delete_seed(5)
    assert err.value.sw == 0x6A83
    with pytest.raises(NotAuthenticated):
        fresh.authenticated = True
        fresh.write_seed(5, b"y" * 20)


def test_public_block_must_be_case_3(card) -> None:
    assert card.transmit(H("804100010170") + b"\x00")[-2:] == H("6FFB")  # Le appended
    assert card.transmit(H("804100010170"))[-2:] == H("9000")


def test_set_key_waits_for_the_button(card) -> None:
    s = session(card)
    s.authenticate()
    with pytest.raises(NeedsButton):
        s.set_customer_key(b"new customer key")
    session(card).authenticate()  # not committed yet
    assert card.confirm() == "set_key"
    assert card.key == molto2_key(b"new customer key")
    with pytest.raises(AuthenticationFailed):
        session(card).authenticate()
    assert not card.authenticated
    session(card, b"new customer key").authenticate()
    assert card.authenticated


def test_factory_reset_needs_no_key_and_the_button(card) -> None:
    s = session(card)
    s.authenticate()
    s.write_seed(1, b"z" * 20)
    card.key = molto2_key(b"forgotten")  # the owner changed the key and lost it
    nokey = session(card, b"whatever")
    with pytest.raises(NeedsButton):
        nokey.factory_reset()
    assert card.profiles[1].seed == b"z" * 20  # nothing yet
    assert card.confirm() == "factory_reset"
    assert not card.profiles[1].seed
    session(card).authenticate()  # back to TOKEN2MOLTO1-KEY
    assert card.key == molto2_key(b"TOKEN2MOLTO1-KEY") and card.authenticated


def test_all_zero_seed_clears_the_profile(card) -> None:
    s = session(card)
    s.authenticate()
    s.write_seed(2, b"w" * 20)
    body = p.clear_seed_ciphertext(20, card.key)
    resp = card.transmit(p.secure(p.Ins.WRITE_SEED, 1, 2, body, card.key).to_bytes())
    assert resp == H("9000")
    assert card.profiles[2].seed is None


def test_time_sync_per_profile_keeps_seed(card, clock) -> None:
    s = session(card)
    s.authenticate()
    s.write_config(4, clock=T0 - 600)  # profile clock ten minutes slow
    s.write_seed(4, b"v" * 20)
    assert card.press(4) == hotp(b"v" * 20, (T0 - 600) // 30)
    s.sync_time(4, T0)
    assert card.profiles[4].seed == b"v" * 20
    assert card.press(4) == hotp(b"v" * 20, T0 // 30)


def test_profile_out_of_range(card) -> None:
    s = session(card)
    with pytest.raises(TokenError) as err:
        s.read_profile(50)
    assert err.value.sw == 0x6A86
