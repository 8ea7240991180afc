"""Without a PC/SC stack no token can ever arrive, so the burner must not wait for one: the real
libpcsclite is pointed at a socket where no pcscd listens (``PCSCLITE_CSOCK_NAME``, which
pcsc-lite honours) and answers "no service"; pyscard is made unimportable for its own case.
Nothing here touches the shared pcscd."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

RUN = "from keyfob.cli.main import run; run()"
NO_PYSCARD = "import sys; sys.modules['smartcard'] = None; " + RUN
URI = "otpauth://totp/ACME:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ACME"
PROMPT = 20.0  # seconds; the batch would otherwise wait --wait (600 s) per token


@pytest.fixture
def no_pcscd(tmp_path: Path) -> dict[str, str]:
    pytest.importorskip("smartcard", reason="pyscard is not installed")
    return {**os.environ, "PCSCLITE_CSOCK_NAME": str(tmp_path / "no-pcscd.comm")}


def keyfob(code: str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    return result, time.monotonic() - start


def batch_args(tmp_path: Path) -> list[str]:
    users = tmp_path / "users.csv"
    users.write_text("upn\nann@example.com\n")
    return ["burn", "batch", str(users), "--out", str(tmp_path / "out"), "--pskc-password", "pw"]


def test_batch_stops_at_once_when_pcscd_is_not_running(tmp_path, no_pcscd) -> None:
    result, took = keyfob(RUN, *batch_args(tmp_path), "--no-check", env=no_pcscd)
    assert took < PROMPT, f"waited {took:.0f} s for a token that could never come"
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("keyfob: error: cannot reach a token:")
    assert "pcscd" in error and "is not running" in error
    assert "systemctl start pcscd" in error  # how to start it
    assert "pending" in result.stderr  # the summary table still says where it stopped


def test_batch_stops_at_once_without_pyscard(tmp_path) -> None:
    result, took = keyfob(NO_PYSCARD, *batch_args(tmp_path), "--no-check")
    assert took < PROMPT
    assert result.returncode == 1 and "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert "pyscard is not installed" in error and "pip install pyscard" in error


def test_single_burn_does_not_wait_for_a_missing_pcscd(tmp_path, no_pcscd) -> None:
    result, took = keyfob(RUN, "burn", URI, "--no-check", "--wait", "60", env=no_pcscd)
    assert took < PROMPT
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "pcscd" in result.stderr and "systemctl start pcscd" in result.stderr


def test_a_refusal_still_comes_before_the_reader(tmp_path, no_pcscd) -> None:
    """What the token could never hold is said first, pcscd or not."""
    sha512 = URI + "&algorithm=SHA512"
    result, _ = keyfob(RUN, "burn", sha512, "--no-check", env=no_pcscd)
    assert result.returncode == 1 and "SHA512" in result.stderr and "pcscd" not in result.stderr
