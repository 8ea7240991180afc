"""The Molto2 v2.1 screen lock end to end: `keyfob token lock/unlock` and Token2's own framing
→ pyscard → pcscd → vpcd → `keyfob emulator` (docs/token-protocol.md §5.5).

Run under `flock /tmp/keyfob-pcsc.lock`: every PC/SC test shares one pcscd and one reader.
"""

from __future__ import annotations

import time

from keyfob.otp import parse_secret
from keyfob.token import protocol as p
from keyfob.token.crypto import MOLTO2_DEFAULT_CUSTOMER_KEY, molto2_key

from .test_burn_e2e import SEED_HEX, URI, interactive_burn, keyfob, oathtool_now

URI_SECRET = parse_secret("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
NO_LOCK = "no screen lock (Molto2 v2.1 or later needed)"


def shows_oathtools_code(emu, oathtool, secret: bytes, profile: int = 0) -> bool:
    before = time.time()
    shown = emu.cli("press", "--profile", str(profile))
    after = time.time()
    return shown in {oathtool_now(oathtool, secret, t) for t in (before, after)}


def as_molto2_py(*apdus: str) -> list[int]:
    """Token2's molto2.py, step for step: pyscard on the first reader, get info, the
    challenge and its answer, then the given commands; their status words."""
    from smartcard.System import readers

    conn = next(r for r in readers() if "Virtual PCD 00 00" in str(r)).createConnection()
    conn.connect()
    try:
        conn.transmit(list(bytes.fromhex("8041000000")))
        challenge, _, _ = conn.transmit(list(bytes.fromhex("804B080000")))
        answer = p.auth_answer(bytes(challenge), molto2_key(MOLTO2_DEFAULT_CUSTOMER_KEY))
        _, sw1, _ = conn.transmit([0x80, 0xCE, 0x00, 0x00, 0x10, *answer])
        assert sw1 == 0x90
        return [
            (sw1 << 8) | sw2
            for sw1, sw2 in (conn.transmit(list(bytes.fromhex(a)))[1:] for a in apdus)
        ]
    finally:
        conn.disconnect()


def test_lock_and_unlock_a_molto2v2_kept_in_its_state(emulator, tmp_path) -> None:
    state = tmp_path / "molto2v2.json"
    emu = emulator("--model", "Molto2v2", "--serial", "M2000211", "--state", str(state))
    assert emu.status()["screen_locked"] is False
    out = keyfob("token", "lock").stdout
    assert "M2000211: screen locked" in out
    assert emu.status()["screen_locked"] is True
    assert "screen locked    yes" in emu.cli("status")
    emu.stop()
    emu = emulator("--state", str(state))  # the same token, plugged in again
    assert emu.status()["screen_locked"] is True
    assert "screen unlocked" in keyfob("token", "unlock").stdout
    assert emu.status()["screen_locked"] is False
    assert emu.status()["commands"]["D8"] == 1


def test_token2s_framing_gets_9000_from_a_molto2v2(emulator) -> None:
    emu = emulator("--model", "Molto2v2")
    assert as_molto2_py("80D80C0200") == [0x9000]  # molto2.py --lock
    assert emu.status()["screen_locked"] is True
    assert as_molto2_py("80D80C020101") == [0x9000]  # molto2.py --unlock
    assert emu.status()["screen_locked"] is False


def test_the_first_generation_molto2_answers_6d00(emulator) -> None:
    emu = emulator("--model", "Molto2")
    assert as_molto2_py("80D80C0200", "80D80C020101") == [0x6D00, 0x6D00]
    for command in ("lock", "unlock"):
        result = keyfob("token", command, check=False)
        assert result.returncode == 1 and NO_LOCK in result.stderr
        assert "Traceback" not in result.stderr
    status = emu.status()
    assert status["screen_locked"] is None and status["commands"]["D8"] == 4


def test_a_single_profile_token_is_refused_before_any_write(emulator) -> None:
    emu = emulator("--model", "OTPC-P2")
    result = keyfob("token", "lock", check=False)
    assert result.returncode == 1 and NO_LOCK in result.stderr
    assert not {"CE", "D8"} & set(emu.status()["commands"])


def test_a_burn_onto_a_locked_molto2v2_leaves_it_locked(emulator, oathtool) -> None:
    emu = emulator("--model", "Molto2v2")
    keyfob("burn", URI, "--molto2", "--no-check")  # profile 0
    assert shows_oathtools_code(emu, oathtool, URI_SECRET)
    keyfob("token", "lock")
    assert shows_oathtools_code(emu, oathtool, URI_SECRET)  # §5.5: the lock hides nothing
    keyfob("burn", "--seed", SEED_HEX, "--molto2", "--no-check")  # profile 1, while locked
    assert emu.status()["screen_locked"] is True
    assert emu.status()["occupied_profiles"] == [0, 1]
    assert shows_oathtools_code(emu, oathtool, bytes.fromhex(SEED_HEX), profile=1)
    keyfob("token", "unlock")
    assert shows_oathtools_code(emu, oathtool, URI_SECRET)
    assert shows_oathtools_code(emu, oathtool, bytes.fromhex(SEED_HEX), profile=1)


def test_the_typed_code_check_works_on_a_locked_molto2v2(emulator, oathtool) -> None:
    emu = emulator("--model", "Molto2v2")
    keyfob("token", "lock")
    result = interactive_burn(emu, URI, "--molto2")
    assert result.returncode == 0, result.stderr
    assert emu.status()["screen_locked"] is True
    assert shows_oathtools_code(emu, oathtool, URI_SECRET)
