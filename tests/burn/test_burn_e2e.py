"""`keyfob burn` end to end: the CLI → pyscard → pcscd → vpcd → `keyfob emulator`."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from keyfob.formats import qr
from keyfob.otp import Algorithm, hotp, parse_secret, to_base32
from testkit import KEYFOB, cli_api_key, keyfob, serve

SEED_HEX = "3132333435363738393031323334353637383930"
URI = (
    "otpauth://totp/ACME:alice@acme.example?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    "&issuer=ACME&algorithm=SHA1&digits=6&period=30"
)


def oathtool_now(
    oathtool: str, secret: bytes, t: float, alg: str = "SHA1", period: int = 30
) -> str:
    return subprocess.run(
        [
            oathtool,
            "-b",
            f"--totp={alg}",
            "-s",
            f"{period}s",
            "-N",
            f"@{int(t)}",
            to_base32(secret),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def shown_matches_oathtool(emu, oathtool, secret: bytes, alg: str = "SHA1", period: int = 30):
    # The burn sets the token's clock to whole seconds, so it may run up to 1 s behind ours: a
    # press in the first second of a step may still show the step before.
    before = time.time() - 1
    shown = emu.cli("press")
    after = time.time()
    assert shown in {oathtool_now(oathtool, secret, t, alg, period) for t in (before, after)}


def interactive_burn(emu, *args: str) -> subprocess.CompletedProcess:
    """Run `keyfob burn` and, at its prompt, press the emulated button and type the code."""
    proc = subprocess.Popen(
        [*KEYFOB, "burn", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    buffer = bytearray()

    def pump() -> None:
        while chunk := os.read(proc.stderr.fileno(), 4096):
            buffer.extend(chunk)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.time() + 60
    while b"type the code it shows" not in buffer:
        if proc.poll() is not None or time.time() > deadline:
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.stdin.write((emu.cli("press") + "\n").encode())
        proc.stdin.flush()
    out = proc.stdout.read().decode()
    proc.wait(timeout=60)
    reader.join(timeout=5)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, buffer.decode())


def test_burn_from_a_png_screenshot(emulator, oathtool, tmp_path) -> None:
    emu = emulator("--model", "OTPC-P2", "--clock-offset", "-500")
    shot = tmp_path / "screenshot.png"
    shot.write_bytes(qr.encode_png(URI))
    out = keyfob("burn", str(shot), "--no-check", "--json")
    report = json.loads(out.stdout)
    assert report["model"] == "OTPC-P2-i" and abs(report["clock_offset_before"] + 500) <= 2
    shown_matches_oathtool(emu, oathtool, parse_secret("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"))


def test_burn_from_a_uri_with_the_typed_check(emulator, oathtool) -> None:
    emu = emulator("--model", "C302")
    result = interactive_burn(emu, URI)
    assert result.returncode == 0, result.stderr
    assert "shows the current code" in result.stderr or "code: its clock" in result.stderr
    shown_matches_oathtool(emu, oathtool, parse_secret("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"))


def test_burn_from_a_typed_seed_sha256_60s(emulator, oathtool) -> None:
    emu = emulator("--model", "miniOTP-2")
    keyfob("burn", "--seed", SEED_HEX, "--algorithm", "SHA256", "--period", "60", "--no-check")
    shown_matches_oathtool(emu, oathtool, bytes.fromhex(SEED_HEX), "SHA256", 60)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param(
            "phonefactor://activate_account?code=123456789&url=https%3A%2F%2Fx.phonefactor.net%2Fpad",
            "I want to use a different authenticator app",
            id="microsoft push qr",
        ),
        pytest.param(
            "otpauth://totp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DP&algorithm=SHA512",
            "SHA512",
            id="sha512",
        ),
        pytest.param(
            "otpauth://totp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DP&digits=8",
            "8-digit codes",
            id="8 digits",
        ),
    ],
)
def test_refused_before_any_apdu(emulator, tmp_path, source, message) -> None:
    emu = emulator("--model", "OTPC-P2")
    shot = tmp_path / "qr.png"
    shot.write_bytes(qr.encode_png(source))
    result = keyfob("burn", str(shot), "--no-check", check=False)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert emu.status()["apdus"] == 0


def test_link_dropped_during_seed_write_is_retried(emulator, oathtool) -> None:
    emu = emulator("--model", "C302")
    emu.cli("fault", "--drop-on", "5")  # info, challenge, answer, config, seed
    result = keyfob("burn", URI, "--no-check")
    assert "hold the token still" in result.stderr
    shown_matches_oathtool(emu, oathtool, parse_secret("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"))


def test_link_dropped_after_config_on_restricted_model_erases_seed(emulator) -> None:
    emu = emulator("--model", "OTPC-P2")
    keyfob("burn", URI, "--no-check")
    assert emu.status()["seed_present"]
    emu.cli("fault", "--drop-ins", "C5")
    result = keyfob("burn", "--seed", SEED_HEX, "--no-check", check=False)
    assert result.returncode == 1
    assert "seed is now ERASED" in result.stderr and "burning again fixes it" in result.stderr
    assert emu.status()["seed_present"] is False
    assert emu.cli("press") == "no seed"


def test_sync_time_on_c302_keeps_seed_and_fixes_clock(emulator, tmp_path) -> None:
    state = tmp_path / "c302.json"
    first = emulator("--model", "C302", "--state", str(state))
    keyfob("burn", URI, "--no-check")
    first.stop()
    # The same token, five minutes fast (as if its clock had drifted).
    emu = emulator("--state", str(state), "--clock-offset", "300")
    assert abs(emu.status()["clock_offset"] - 300) < 2 and emu.status()["seed_present"]
    result = json.loads(keyfob("token", "sync-time", "--json").stdout)
    assert abs(result["corrected"]["0"] + 300) <= 2
    status = emu.status()
    assert status["seed_present"] is True and abs(status["clock_offset"]) < 2
    assert status["commands"].get("C5") is None  # the seed was not rewritten


def test_sync_time_on_otpc_p2_refuses_without_a_config_write(emulator) -> None:
    emu = emulator("--model", "OTPC-P2", "--clock-offset", "300")
    result = keyfob("token", "sync-time", check=False)
    assert result.returncode == 1
    assert "restricted time sync" in result.stderr and "re-burn" in result.stderr
    assert "D4" not in emu.status()["commands"]


@pytest.fixture
def server(tmp_path):
    """`keyfob serve` on a fresh database: its URL, an admin key and a validate key."""
    db = f"sqlite:///{tmp_path / 'srv.db'}"
    with serve(db, cwd=tmp_path) as served:
        keys = [cli_api_key(db, tmp_path / "srv.key", role) for role in ("admin", "validate")]
        yield served.url, *keys, db


def test_enroll_then_validate_the_next_code(emulator, server) -> None:
    url, admin, validator, _ = server
    emu = emulator("--model", "OTPC-P2")
    assert (
        httpx.post(
            f"{url}/api/v1/users",
            json={"username": "bob@example.com"},
            headers={"Authorization": f"Bearer {admin}"},
        ).status_code
        == 201
    )
    result = interactive_burn(emu, "--enroll", url, "--user", "bob@example.com", "--api-key", admin)
    assert result.returncode == 0, result.stderr
    assert "enrolled for bob@example.com" in result.stderr
    methods = httpx.get(
        f"{url}/api/v1/users/bob@example.com/tokens", headers={"Authorization": f"Bearer {admin}"}
    ).json()["items"]
    # the serial read from the card is the user's report, not an inventory serial
    assert [(m["kind"], m["state"], m["serial"], m["reported_serial"]) for m in methods] == [
        ("programmable", "active", None, emu.status()["serial"])
    ]
    # the next time step: a fresh code (the token clock was set to whole seconds, so it may
    # run up to a second behind this machine: press well past the boundary)
    time.sleep(30 - time.time() % 30 + 1.5)
    code = emu.cli("press")
    resp = httpx.post(
        f"{url}/api/v1/validate",
        json={"username": "bob@example.com", "code": code},
        headers={"Authorization": f"Bearer {validator}"},
    )
    assert resp.json() == {"result": "accept"}


def test_batch_of_five_with_an_interruption(emulator, tmp_path) -> None:
    users = tmp_path / "users.csv"
    users.write_text(
        "upn,label\n" + "".join(f"user{i}@example.com,Token {i}\n" for i in range(1, 6))
    )
    out = tmp_path / "out"
    journal = out / "journal.jsonl"
    serials = [f"865963200010{i}" for i in range(1, 6)]
    shown: dict[str, tuple[str, float]] = {}

    def done_count() -> int:
        if not journal.exists():
            return 0
        return journal.read_text().count('"status": "done"')

    def start_batch() -> subprocess.Popen:
        return subprocess.Popen(
            [
                *KEYFOB,
                "burn",
                "batch",
                str(users),
                "--out",
                str(out),
                "--pskc-password",
                "batch-export-pw",
                "--no-check",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def present(i: int, proc: subprocess.Popen):
        """Put token i on the reader and wait until the batch has burned it."""
        emu = emulator("--model", "C302", "--serial", serials[i])
        deadline = time.time() + 60
        while done_count() < i + 1:
            assert proc.poll() is None, proc.stdout.read()
            assert time.time() < deadline, "the batch did not burn the token"
            time.sleep(0.2)
        shown[serials[i]] = (emu.cli("press"), time.time())
        return emu

    first = start_batch()
    on_reader = None
    for i in range(3):
        if on_reader is not None:
            on_reader.stop()
        on_reader = present(i, first)
    first.terminate()  # interrupted after the 3rd token
    first.wait(timeout=15)
    assert done_count() == 3

    # The 3rd token is still on the reader: the re-run must not burn it for user 4.
    second = start_batch()
    time.sleep(3)
    assert done_count() == 3 and on_reader.status()["commands"].get("C5", 0) == 1
    for i in (3, 4):
        on_reader.stop()
        on_reader = present(i, second)
    output, _ = second.communicate(timeout=60)
    assert second.returncode == 0, output
    assert "3 already done, 2 to go" in output
    assert "already burned for user3@example.com" in output

    rows = (out / "entra.csv").read_text().splitlines()
    assert rows[0] == "upn,serial number,secret key,time interval,manufacturer,model"
    assert len(rows) == 6
    for i, row in enumerate(rows[1:]):
        upn, serial, secret, interval, maker, model = row.split(",")
        assert (upn, serial, interval, maker, model) == (
            f"user{i + 1}@example.com",
            serials[i],
            "30",
            "Token2",
            "C302-i",
        )
        code, when = shown[serial]
        key = parse_secret(secret)
        assert code in {hotp(key, int(t // 30), 6, Algorithm.SHA1) for t in (when - 1, when)}
    from keyfob.formats.pskc import read_pskc

    pskc = read_pskc((out / "tokens.pskcxml").read_bytes(), password="batch-export-pw")
    assert sorted(r.serial for r in pskc.records) == serials
    for path in (out / "entra.csv", out / "tokens.pskcxml", journal):
        assert Path(path).stat().st_mode & 0o077 == 0


def test_batch_enrols_on_the_server(emulator, server, tmp_path) -> None:
    url, admin, _, _ = server
    headers = {"Authorization": f"Bearer {admin}"}
    for name in ("ann@example.com", "ben@example.com"):
        assert (
            httpx.post(f"{url}/api/v1/users", json={"username": name}, headers=headers).status_code
            == 201
        )
    users = tmp_path / "staff.csv"
    users.write_text("ann@example.com,Ann's fob\nben@example.com\n")
    journal = tmp_path / "staff.journal"
    serials = ["8659600000201", "8659600000202"]
    proc = subprocess.Popen(
        [
            *KEYFOB,
            "burn",
            "batch",
            str(users),
            "--enroll",
            url,
            "--api-key",
            admin,
            "--journal",
            str(journal),
            "--no-check",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    on_reader = None
    for i, serial in enumerate(serials):
        if on_reader is not None:
            on_reader.stop()
        on_reader = emulator("--model", "miniOTP-2", "--serial", serial)
        deadline = time.time() + 60
        while not journal.exists() or journal.read_text().count('"status": "done"') < i + 1:
            assert proc.poll() is None, proc.stdout.read()
            assert time.time() < deadline
            time.sleep(0.2)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "secret" not in journal.read_text()  # without --out the journal holds no secrets
    for name, serial, label in (
        ("ann@example.com", serials[0], "Ann's fob"),
        ("ben@example.com", serials[1], "Hardware token"),
    ):
        methods = httpx.get(f"{url}/api/v1/users/{name}/tokens", headers=headers).json()["items"]
        assert [(m["kind"], m["state"], m["reported_serial"], m["label"]) for m in methods] == [
            ("programmable", "active", serial, label)
        ]
