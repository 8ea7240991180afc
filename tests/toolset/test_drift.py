"""keyfob drift and keyfob token survey: from codes (the maths, no token needed) and through the
real PC/SC stack with emulated tokens (run under flock /tmp/keyfob-pcsc.lock)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time

import pytest

from keyfob.cli.main import main
from keyfob.otp import Credential, OtpType, hotp, parse_secret
from keyfob.toolset.drift import chance_of_collision, drift_from_codes

KEYFOB = [sys.executable, "-c", "from keyfob.cli.main import run; run()"]
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_700_000_000.0  # step 56 666 666, 20 s into it


def _code(step: int, digits: int = 6) -> str:
    return hotp(parse_secret(SECRET), step, digits)


def test_offset_from_one_code_and_unique_from_two() -> None:
    cred = Credential(secret=parse_secret(SECRET))
    now_step = int(NOW // 30)
    for offset in (-2880, -95, -1, 0, 4, 2880):
        one = drift_from_codes(cred, [_code(now_step + offset)], NOW)
        assert (one.offset_steps, one.offset_seconds) == (offset, offset * 30) or not one.unique
        two = drift_from_codes(cred, [_code(now_step + offset), _code(now_step + offset + 1)], NOW)
        assert (two.offset_steps, two.unique) == (offset, True)
    assert one.search_steps == 2880
    assert one.chance == pytest.approx(5760 / 1e6, rel=0.01)
    assert two.chance < 1e-8
    assert chance_of_collision(5760, 8) == pytest.approx(5760 / 1e8, rel=0.01)


def test_codes_that_cannot_be_used_are_refused(capsys) -> None:
    cred = Credential(secret=parse_secret(SECRET))
    now_step = int(NOW // 30)
    with pytest.raises(Exception, match="pressed twice in one time step"):
        drift_from_codes(cred, [_code(now_step)] * 2, NOW)
    with pytest.raises(Exception, match="no time step within ±24 h"):
        drift_from_codes(cred, [_code(now_step + 3000), _code(now_step + 3001)], NOW)
    with pytest.raises(Exception, match="HOTP token has no clock"):
        drift_from_codes(Credential(secret=cred.secret, type=OtpType.HOTP), ["123456"], NOW)
    uri = f"otpauth://totp/A:b?secret={SECRET}&digits=8&period=60"
    step = int(time.time() // 60)
    argv = ["drift", uri, "--code", _code(step - 2, 8), "--code", _code(step - 1, 8), "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) in (
        {"offset_steps": -2, "offset_seconds": -120, "unique": True},
        {"offset_steps": -3, "offset_seconds": -180, "unique": True},  # the minute just turned
    )
    assert main(["drift", SECRET, "--code", _code(int(time.time() // 30))]) == 0
    out = capsys.readouterr().out
    assert "searched ±2880 steps: 1 match(es)" in out and "by chance: 0.57%" in out
    assert SECRET not in out


def _phase(offset: float) -> float:
    return (time.time() + offset) % 30


def test_emulated_token_95_s_ahead(emulator) -> None:
    from keyfob.token.pcsc import PcscConnection
    from keyfob.token.session import SingleProfileSession

    emu = emulator("--model", "OTPC-P1", "--clock-offset", "95")
    out = subprocess.run(
        [*KEYFOB, "drift", "--reader", "--reader-name", "Virtual PCD 00 00", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    measured = json.loads(out)
    assert abs(measured["offset_seconds"] - 95) <= 1
    assert measured["offset_steps"] == round(measured["offset_seconds"] / 30, 2)
    assert measured["unique"] is True

    seed = bytes(range(1, 21))
    with PcscConnection("Virtual PCD 00 00") as conn:
        session = SingleProfileSession(conn)
        session.authenticate()
        session.write_config(clock=int(time.time() + 95))  # burn, keeping the clock 95 s ahead
        session.write_seed(seed)
    cred = Credential(secret=seed)
    # Press late in the token's step (95 s = 3 steps + 5 s), then again in its next step.
    while not 24 <= _phase(95) <= 26:
        time.sleep(0.2)
    first, at = emu.cli("press"), time.time()
    one = drift_from_codes(cred, [first], at)
    assert one.offset_steps == 3  # floor((t + 95) / 30) - floor(t / 30), 5..21 s into a step
    time.sleep(30 - _phase(95) + 3)  # the burn wrote whole seconds: up to 1 s behind
    second = emu.cli("press")
    two = drift_from_codes(cred, [first, second], at)
    assert (two.offset_steps, two.unique) == (3, True)


def test_survey_of_three_tokens(emulator, tmp_path) -> None:
    out = tmp_path / "tokens.csv"
    proc = subprocess.Popen(
        [*KEYFOB, "token", "survey", "--count", "3", "--out", str(out), "--wait", "60", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    tokens = [
        ("--model", "OTPC-P2", "--clock-offset", "-120"),
        ("--model", "C302", "--clock-offset", "0"),
        ("--model", "Molto2", "--serial", "M2000077", "--clock-offset", "95"),
    ]
    try:
        for done, args in enumerate(tokens, 1):
            emu = emulator(*args)
            deadline = time.time() + 30
            while not out.exists() or len(out.read_text().splitlines()) < done + 1:
                assert time.time() < deadline, f"token {done} was not recorded"
                time.sleep(0.2)
            emu.stop()
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["model"] for r in rows] == ["OTPC-P2-i", "C302-i", "Molto2"]
    assert [r["seed"] for r in rows] == ["unknown", "unknown", "no"]
    offsets = [int(r["clock_offset_seconds"]) for r in rows]
    assert abs(offsets[0] + 120) <= 1 and abs(offsets[1]) <= 1 and abs(offsets[2] - 95) <= 1
    assert rows[2]["serial"] == "M2000077"
    assert json.loads(stdout)[2]["family"] == "molto2"
    assert "surveyed 3 token(s)" in stderr
