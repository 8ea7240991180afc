"""The Molto2 v2.1 screen lock (docs/token-protocol.md §5.5): the builder's bytes are Token2's,
the emulated Molto2v2 answers 9000 on an authenticated session and keeps the flag, the first
generation answers 6D00, which the one status-word table turns into a clear refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keyfob.otp import hotp
from keyfob.token import protocol as p
from keyfob.token.emulator import LockedScreen, Molto2Token, create
from keyfob.token.errors import AuthenticationFailed, CommandRejected, NotSupported
from keyfob.token.memory import MemoryConnection
from keyfob.token.models import by_name
from keyfob.token.session import NO_SCREEN_LOCK, Molto2Session, error_for
from testkit import Clock

H = bytes.fromhex
SEED = b"locked but still burnable"


def molto2(
    clock: Clock | None = None, model: str = "Molto2v2", state_file: Path | None = None
) -> Molto2Token:
    card = create(by_name(model), host_clock=clock or Clock(), state_file=state_file)
    assert isinstance(card, Molto2Token)
    return card


def signed_in(card: Molto2Token) -> Molto2Session:
    session = Molto2Session(MemoryConnection(card))
    session.authenticate()
    return session


@pytest.mark.parametrize("locked", [True, False])
def test_the_card_reads_what_the_builder_writes(locked: bool) -> None:
    """The bytes are Token2's (test_vectors.py); nothing secret in them, so they are logged."""
    apdu = p.screen_lock(locked)
    assert apdu.log_data
    assert p.SCREEN_LOCK_REQUEST[p.Apdu.parse(apdu.to_bytes()).data] is locked


def test_lock_and_unlock_on_a_molto2v2(tmp_path) -> None:
    state = tmp_path / "m2.json"
    card = molto2(state_file=state)
    session = signed_in(card)
    assert card.status()["screen_locked"] is False
    session.lock_screen()
    assert card.status()["screen_locked"] is True
    assert json.loads(state.read_text())["screen_locked"] is True
    assert molto2(state_file=state).screen_locked  # the state file keeps it
    session.unlock_screen()
    assert card.status()["screen_locked"] is False
    assert molto2(state_file=state).screen_locked is False


def test_the_vendor_framing_byte_for_byte() -> None:
    card = molto2()
    signed_in(card)
    assert card.transmit(H("80D80C0200")) == H("9000")
    assert card.screen_locked
    assert card.transmit(H("80D80C020101")) == H("9000")
    assert not card.screen_locked


def test_lock_needs_an_authenticated_session() -> None:
    card = molto2()
    with pytest.raises(AuthenticationFailed):
        Molto2Session(MemoryConnection(card)).lock_screen()
    assert card.transmit(H("80D80C0200")) == H("6983")
    assert not card.screen_locked


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("80D80C020100", "6A80"),  # M2A's unlock body: not the vendor's current one (§11)
        ("80D80C02020101", "6A80"),
        ("80D80C0300", "6A86"),
        ("80D80D0200", "6A86"),
    ],
)
def test_other_bodies_and_parameters_are_refused(apdu: str, sw: str) -> None:
    card = molto2()
    signed_in(card)
    assert card.transmit(H(apdu)) == H(sw)
    assert not card.screen_locked


def test_the_first_generation_answers_6d00() -> None:
    card = molto2(model="Molto2")
    session = signed_in(card)
    with pytest.raises(NotSupported) as err:
        session.lock_screen()
    assert err.value.sw == 0x6D00
    assert "no screen lock (Molto2 v2.1 or later needed)" in err.value.message
    with pytest.raises(NotSupported):
        session.unlock_screen()
    assert card.transmit(H("80D80C0200")) == H("6D00")
    assert card.status()["screen_locked"] is None  # the model has none


def test_6d00_means_no_screen_lock_only_to_the_screen_lock() -> None:
    lock = error_for(p.Sw.INS_NOT_SUPPORTED, "lock screen", ins=p.Ins.SCREEN_LOCK)
    other = error_for(p.Sw.INS_NOT_SUPPORTED, "write title", ins=p.Ins.WRITE_TITLE)
    assert type(lock) is NotSupported and isinstance(lock, CommandRejected)
    assert type(other) is CommandRejected
    assert lock.hint == NO_SCREEN_LOCK.hint


def test_a_locked_token_takes_a_burn_and_shows_its_code(clock: Clock) -> None:
    """The assumption of §5.5: the lock changes nothing else (LockedScreen's defaults)."""
    card = molto2(clock)
    session = signed_in(card)
    session.lock_screen()
    session.write_config(4, clock=int(clock()))
    session.write_seed(4, SEED)
    session.write_title(4, "Locked")
    assert card.screen_locked
    assert card.press(4) == hotp(SEED, int(clock()) // 30)
    clock.advance(30)
    session.unlock_screen()
    assert card.press(4) == hotp(SEED, int(clock()) // 30)


def test_the_assumption_lives_in_one_place(clock: Clock) -> None:
    """Should a real token show or refuse something while locked, LockedScreen says so."""
    card = molto2(clock)
    session = signed_in(card)
    session.write_seed(1, SEED)
    card.locked_screen = LockedScreen("LOCKED", frozenset({p.Ins.WRITE_SEED}))
    session.lock_screen()
    assert card.press(1) == "LOCKED"
    with pytest.raises(AuthenticationFailed):
        session.write_seed(1, SEED)
    session.unlock_screen()
    assert card.press(1) == hotp(SEED, int(clock()) // 30)


def test_a_factory_reset_unlocks() -> None:
    card = molto2()
    signed_in(card).lock_screen()
    card.transmit(p.factory_reset().to_bytes())
    assert card.confirm() == "factory_reset"
    assert not card.screen_locked
