"""End to end through the real stack: emulator → vpcd → pcscd → pyscard → keyfob."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from keyfob.otp import Algorithm, to_base32
from keyfob.token.errors import TransportLost
from keyfob.token.pcsc import PcscConnection, list_readers
from keyfob.token.session import SingleProfileSession
from testkit import keyfob


def test_pyscard_sees_the_token_and_token_info_reads_it(emulator) -> None:
    emu = emulator("--model", "OTPC-P2", "--serial", "8659622000001", "--clock-offset", "-120")
    assert "Virtual PCD 00 00" in list_readers(with_card=True)
    out = keyfob("token", "info", "--reader", "Virtual PCD 00 00", "--json").stdout
    info = json.loads(out)
    assert info["serial"] == "8659622000001"
    assert info["model"] == "OTPC-P2-i"
    assert info["restricted_sync"] is True
    assert abs(info["offset_seconds"] + 120) <= 2
    assert abs(info["clock"] - (time.time() - 120)) <= 3
    text = keyfob("token", "info").stdout
    assert "OTPC-P2-i" in text and "8659622000001" in text and "erases the seed" in text
    assert emu.status()["apdus"] >= 2


def _oathtool_codes(oathtool: str, seed: bytes, flag: str, period: int, t0: float, t1: float):
    return {
        subprocess.run(
            [oathtool, "-b", flag, "-s", f"{period}s", "-N", f"@{int(t)}", to_base32(seed)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for t in (t0, t1)
    }


@pytest.mark.parametrize(
    ("model", "alg", "period", "flag"),
    [
        ("OTPC-P2", Algorithm.SHA1, 30, "--totp"),
        ("C302", Algorithm.SHA256, 60, "--totp=SHA256"),
    ],
)
def test_display_after_a_burn_over_pcsc_matches_oathtool(
    emulator, oathtool, model, alg, period, flag
) -> None:
    emu = emulator("--model", model, "--clock-offset", "3600")
    seed = bytes(range(40, 60))
    with PcscConnection("Virtual PCD 00 00") as conn:
        session = SingleProfileSession(conn)
        assert session.get_info().clock > time.time() + 3500
        session.authenticate()
        session.write_config(algorithm=alg, period=period)
        session.write_seed(seed)
        assert abs(session.get_info().clock - time.time()) <= 2
    before = time.time()
    shown = emu.cli("press")
    after = time.time()
    assert shown in _oathtool_codes(oathtool, seed, flag, period, before, after)


def test_dropped_link_over_pcsc_is_transport_lost_then_recovers(emulator) -> None:
    emu = emulator("--model", "C302")
    with PcscConnection("Virtual PCD 00 00") as conn:
        session = SingleProfileSession(conn)
        session.authenticate()
        emu.cli("fault", "--drop-on", "1")
        with pytest.raises(TransportLost):
            session.write_seed(b"x" * 20)
        conn.reconnect(timeout=10)
        session.authenticate()
        session.write_seed(b"y" * 20)
    assert emu.status()["seed_present"] is True


def test_molto2_profiles_over_pcsc(emulator) -> None:
    from keyfob.token.session import Molto2Session

    emulator("--model", "Molto2", "--serial", "M2000042")
    with PcscConnection("Virtual PCD 00 00") as conn:
        molto2 = Molto2Session(conn)
        molto2.authenticate()
        molto2.write_config(3)
        molto2.write_seed(3, b"molto2 profile three")
        molto2.write_title(3, "VPN")
    info = json.loads(keyfob("token", "info", "--json").stdout)
    assert (info["family"], info["model"], info["serial"]) == ("molto2", "Molto2", "M2000042")
    assert info["profiles"] == 50
    assert info["occupied_profiles"] == [{"index": 3, "title": "VPN"}]
