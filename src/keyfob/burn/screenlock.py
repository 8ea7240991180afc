"""Screen lock of a Molto2 with firmware 2.1 or later (docs/token-protocol.md §5.5).

A token operation like the time sync: find out what is on the reader, refuse at once what
cannot work, authenticate, send. A burn does not touch the lock, so a locked token stays locked.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyfob.token.connection import Connection
from keyfob.token.crypto import MOLTO2_DEFAULT_CUSTOMER_KEY
from keyfob.token.models import Family
from keyfob.token.probe import probe
from keyfob.token.session import NO_SCREEN_LOCK, Molto2Session


@dataclass(frozen=True)
class ScreenLockResult:
    serial: str
    locked: bool


def set_screen_lock(
    conn: Connection, locked: bool, *, customer_key: bytes = MOLTO2_DEFAULT_CUSTOMER_KEY
) -> ScreenLockResult:
    """Lock (or unlock) the screen of the Molto2 on ``conn``.

    A single-profile token has no screen lock: refused before any write, as the session would
    refuse a Molto2 whose firmware answers 6D00 (``NO_SCREEN_LOCK``, one message for both).
    Token2's tool authenticates first and its notes say the token needs it (§5.5)."""
    what = "lock screen" if locked else "unlock screen"
    found = probe(conn, read_profiles=False)
    if found.family is not Family.MOLTO2:
        raise NO_SCREEN_LOCK.make(what)
    session = Molto2Session(conn, customer_key)
    session.authenticate()
    if locked:
        session.lock_screen()
    else:
        session.unlock_screen()
    return ScreenLockResult(found.info.serial, locked)
