"""keyfob's codes against oathtool (OATH Toolkit, Debian), an implementation nobody here wrote."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyfob.cli.main import main
from keyfob.otp import Algorithm, hotp, to_base32, totp

ALGORITHMS = st.sampled_from(list(Algorithm))
SECRETS = st.binary(min_size=10, max_size=64)
TIMES = st.integers(min_value=0, max_value=2**36)
DIGITS = st.integers(min_value=6, max_value=8)  # oathtool supports 6, 7 and 8 only
PERIODS = st.sampled_from([30, 60, 15, 90, 20, 45])


def _oathtool(exe: str, *args: str) -> str:
    out = subprocess.run([exe, *args], capture_output=True, text=True, check=True)
    return out.stdout.strip()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(secret=SECRETS, t=TIMES, digits=DIGITS, algorithm=ALGORITHMS, period=PERIODS)
def test_totp_matches_oathtool(oathtool, secret, t, digits, algorithm, period) -> None:
    want = _oathtool(
        oathtool,
        f"--totp={algorithm.value}",
        "-d",
        str(digits),
        "-s",
        f"{period}s",
        "-N",
        f"@{t}",
        secret.hex(),
    )
    assert totp(secret, t, digits=digits, algorithm=algorithm, period=period) == want


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(secret=SECRETS, counter=st.integers(min_value=0, max_value=2**40), digits=DIGITS)
def test_hotp_matches_oathtool(oathtool, secret, counter, digits) -> None:
    # oathtool's HOTP mode is SHA1 only.
    want = _oathtool(oathtool, "-b", "-c", str(counter), "-d", str(digits), to_base32(secret))
    assert hotp(secret, counter, digits) == want


def test_oathtool_window_lists_rfc4226_codes(oathtool) -> None:
    codes = _oathtool(oathtool, "-w", "9", "3132333435363738393031323334353637383930").split()
    assert codes == [hotp(b"12345678901234567890", c) for c in range(10)]


def test_cli_code_matches_oathtool(oathtool, capsys) -> None:
    """The `keyfob code` command prints exactly what oathtool prints, for each input form."""
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    cases = [
        (["code", secret, "--at", "1700000000"], ["-b", "--totp", "-N", "@1700000000", secret]),
        (
            ["code", secret.lower(), "--at", "2026-11-28T10:00:00Z", "-d", "8", "-a", "sha256"],
            ["-b", "--totp=SHA256", "-d", "8", "-N", "2026-11-28 10:00:00 UTC", secret],
        ),
        (
            ["code", secret, "--at", "1700000000", "--period", "60"],
            ["-b", "--totp", "-s", "60s", "-N", "@1700000000", secret],
        ),
        (
            ["code", "3132333435363738393031323334353637383930", "--counter", "5"],
            ["-c", "5", "3132333435363738393031323334353637383930"],
        ),
        (
            ["code", f"otpauth://totp/A:b?secret={secret}&digits=7&algorithm=SHA512", "--at", "99"],
            ["-b", "--totp=SHA512", "-d", "7", "-N", "@99", secret],
        ),
    ]
    for ours, theirs in cases:
        assert main(ours) == 0, capsys.readouterr().err
        assert capsys.readouterr().out.strip() == _oathtool(oathtool, *theirs)


def test_installed_console_script_matches_oathtool(oathtool) -> None:
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    exe = [sys.executable, "-c", "from keyfob.cli.main import run; run()"]
    ours = subprocess.run(
        [*exe, "code", secret, "--at", "1111111109", "-d", "8"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        ours == _oathtool(oathtool, "-b", "--totp", "-d", "8", "-N", "@1111111109", secret) + "\n"
    )
