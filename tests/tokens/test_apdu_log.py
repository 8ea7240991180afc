"""``-v``: every APDU on the ``keyfob.token`` logger — headers and status words, and never a
seed, a key, an auth answer or a MAC, in any spelling."""

from __future__ import annotations

import base64
import io
import logging

import pytest

from keyfob.otp import to_base32
from keyfob.token import protocol as p
from keyfob.token import trace
from keyfob.token.crypto import MOLTO2_DEFAULT_CUSTOMER_KEY, SINGLE_PROFILE_KEY, molto2_key
from keyfob.token.emulator import create
from keyfob.token.errors import NeedsButton, TransportLost
from keyfob.token.memory import MemoryConnection
from keyfob.token.models import by_name
from keyfob.token.session import Molto2Session, SingleProfileSession
from testkit import T0, Clock, keyfob

SEED = bytes(range(0xA0, 0xB4))  # 20 bytes: no accidental match in a log line
NEW_CUSTOMER_KEY = b"a customer key!!"


def spellings(secret: bytes) -> list[str]:
    """Every way a log could spell these bytes (compared case-insensitively)."""
    hexed = secret.hex()
    b32 = base64.b32encode(secret).decode()
    return [hexed, " ".join(f"{b:02x}" for b in secret), b32, b32.rstrip("=")]


def assert_carries_none(log: str, *secrets: bytes) -> None:
    text = log.lower()
    for secret in secrets:
        for spelled in spellings(secret):
            assert spelled.lower() not in text, f"{len(secret)}-byte secret leaked into the log"


def log_text(caplog) -> str:
    return "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records)


def test_a_single_profile_burn_logs_headers_and_status_words_only(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="keyfob.token")
    card = create(by_name("OTPC-P2"), host_clock=Clock())
    session = SingleProfileSession(MemoryConnection(card))
    session.get_info()
    session.authenticate()
    session.write_config(clock=T0)
    session.write_seed(SEED)
    log = log_text(caplog)
    seed_apdu = p.write_seed(SEED, SINGLE_PROFILE_KEY)
    assert_carries_none(log, SEED, SINGLE_PROFILE_KEY, seed_apdu.data, seed_apdu.data[-4:])
    assert "keyfob.token.client: write seed > 84 C5 01 00 Lc=36 data=(withheld)" in log
    assert "keyfob.token.client: write seed < SW=9000 len=0" in log
    assert "keyfob.token.client: get info > 80 41 00 00 Lc=2 data=0211" in log
    assert "keyfob.token.client: authenticate > 80 CE 00 00 Lc=16 data=(withheld)" in log
    assert "keyfob.token.card: card > 84 C5 01 00 Lc=36 data=(withheld)" in log
    assert log.count(" > ") == log.count(" < ") == 2 * 5  # client and card, five commands


def test_a_molto2_burn_and_key_change_log_no_key_material(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="keyfob.token")
    card = create(by_name("Molto2"), host_clock=Clock())
    session = Molto2Session(MemoryConnection(card))
    session.authenticate()
    session.write_config(4, clock=T0)
    session.write_seed(4, SEED)
    session.write_title(4, "VPN")
    with pytest.raises(NeedsButton):
        session.set_customer_key(NEW_CUSTOMER_KEY)
    key = molto2_key(MOLTO2_DEFAULT_CUSTOMER_KEY)
    assert_carries_none(log_text(caplog), SEED, key, NEW_CUSTOMER_KEY, molto2_key(NEW_CUSTOMER_KEY))
    assert "set customer key < SW=9060" in log_text(caplog)
    assert "write seed (profile 4) > 84 C5 01 04" in log_text(caplog)


def test_a_dropped_link_is_logged() -> None:
    stream = io.StringIO()
    trace.enable(stream)
    trace.enable(stream)  # twice: still one line per event
    try:
        card = create(by_name("C302"), host_clock=Clock())
        card.faults.drop_on = 1
        with pytest.raises(TransportLost):
            SingleProfileSession(MemoryConnection(card)).get_info()
    finally:
        trace.logger.handlers.clear()
        trace.logger.setLevel(logging.NOTSET)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "keyfob: debug: keyfob.token.client: get info > 80 41 00 00 Lc=2 data=0211",
        "keyfob: debug: keyfob.token.client: get info < link lost",
    ]


def test_verbose_flags_over_pcsc_log_a_whole_burn_without_the_seed(emulator) -> None:
    """``keyfob token -v`` (client) and ``keyfob emulator -v`` (card) on the real stack."""
    emu = emulator("-v", "--model", "OTPC-P2")
    uri = f"otpauth://totp/keyfob:log?secret={to_base32(SEED)}&issuer=keyfob"
    out = keyfob("token", "-v", "sync-time", "--reburn", uri)
    emu.stop()
    card_log = emu.proc.stdout.read()
    seed_apdu = p.write_seed(SEED, SINGLE_PROFILE_KEY)
    for log in (out.stderr, card_log):
        assert_carries_none(log, SEED, SINGLE_PROFILE_KEY, seed_apdu.data)
        assert "> 84 C5 01 00 Lc=36 data=(withheld)" in log
        assert "> 84 D4 00 00 Lc=23 data=(withheld)" in log
    assert "keyfob.token.client: write seed < SW=9000 len=0 (success (9000))" in out.stderr
    assert "keyfob.token.card: card < SW=9000" in card_log
