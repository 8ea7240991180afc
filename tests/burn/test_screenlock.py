"""`set_screen_lock` (burn/screenlock.py) against emulated tokens, in process."""

from __future__ import annotations

import pytest

from keyfob.burn.screenlock import set_screen_lock
from keyfob.token import protocol as p
from keyfob.token.emulator import Card, create
from keyfob.token.errors import AuthenticationFailed, NotSupported
from keyfob.token.memory import MemoryConnection
from keyfob.token.models import by_name

SCREEN_LOCK = f"{p.Ins.SCREEN_LOCK:02X}"


def token(model: str) -> Card:
    return create(by_name(model), serial="M2123456" if "Molto2" in model else None)


def test_locks_and_unlocks_a_molto2v2() -> None:
    card = token("Molto2v2")
    assert set_screen_lock(MemoryConnection(card), True).serial == "M2123456"
    assert card.status()["screen_locked"] is True
    assert set_screen_lock(MemoryConnection(card), False).locked is False
    assert card.status()["screen_locked"] is False
    assert card.command_counts()[SCREEN_LOCK] == 2


def test_first_generation_molto2_is_refused_by_its_6d00() -> None:
    card = token("Molto2")
    with pytest.raises(NotSupported, match=r"Molto2 v2\.1 or later needed") as err:
        set_screen_lock(MemoryConnection(card), True)
    assert err.value.sw == 0x6D00
    assert card.command_counts()[SCREEN_LOCK] == 1


def test_single_profile_token_is_refused_before_any_write() -> None:
    card = token("OTPC-P2")
    with pytest.raises(NotSupported, match="no screen lock") as err:
        set_screen_lock(MemoryConnection(card), True)
    assert err.value.sw is None  # nothing asked of the token
    assert SCREEN_LOCK not in card.command_counts()
    assert f"{p.Ins.ANSWER_CHALLENGE:02X}" not in card.command_counts()


def test_a_wrong_customer_key_changes_nothing() -> None:
    card = token("Molto2v2")
    with pytest.raises(AuthenticationFailed):
        set_screen_lock(MemoryConnection(card), True, customer_key=b"not the key")
    assert card.status()["screen_locked"] is False
    assert SCREEN_LOCK not in card.command_counts()
