"""keyfob convert: every pair of formats round-trips 50 tokens (SHA1/SHA256, 30/60 s, 6/8 digits)
wherever the target can hold them, checked by computing codes from the result with pyotp; rows
that do not fit are refused with row and reason; output is atomic and never less protected."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import stat
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest

from keyfob.cli.main import main
from keyfob.formats.pskc import write_plain_pskc
from keyfob.formats.seeds import SeedRecord
from keyfob.otp import Algorithm
from keyfob.toolset.convert import ConvertJob, Format, convert, read_source

PASSWORD = "correct horse battery"
TIMES = (59, 1_111_111_109, 1_700_000_000, 2_000_000_000)
KINDS = ["pskc", "pskc-enc", "azure-csv", "oath-csv", "otpauth", "migration"]
SUFFIX = {
    "pskc": ".xml",
    "pskc-enc": ".xml",
    "azure-csv": ".csv",
    "oath-csv": ".csv",
    "otpauth": ".txt",
    "migration": ".png",
}


def _tokens() -> list[SeedRecord]:
    combos = itertools.cycle(
        itertools.product((Algorithm.SHA1, Algorithm.SHA256), (30, 60), (6, 8))
    )
    tokens = []
    for i, (alg, period, digits) in zip(range(50), combos, strict=False):
        secret = hashlib.sha256(f"token {i}".encode()).digest()[: 20 if i % 3 else 32]
        tokens.append(
            SeedRecord(
                serial=f"KF{i:05d}", secret=secret, algorithm=alg, period=period, digits=digits
            )
        )
    return tokens


def _holds(kind: str, rec: SeedRecord) -> bool:
    """What each format can hold, restated from docs/formats.md (not from the converter)."""
    if kind == "azure-csv":
        return rec.algorithm is Algorithm.SHA1 and rec.digits == 6 and rec.period in (30, 60)
    if kind == "oath-csv":
        return rec.algorithm is Algorithm.SHA1
    if kind == "migration":
        return rec.period == 30 and rec.digits in (6, 8)
    return True


def _pyotp_codes(secret: bytes, alg: Algorithm, digits: int, period: int) -> list[str]:
    key = base64.b32encode(secret).decode()
    totp = pyotp.TOTP(key, digits=digits, interval=period, digest=getattr(hashlib, alg.lower()))
    return [totp.at(t) for t in TIMES]


def _job(kind: str, inputs: list[Path], out: Path, **kw) -> ConvertJob:
    target = Format.PSKC if kind == "pskc-enc" else Format(kind)
    out_password = PASSWORD if kind == "pskc-enc" else None
    return ConvertJob(
        inputs, out, target=target, out_password=out_password, skip_unsupported=True, **kw
    )


def _outputs(out: Path) -> list[Path]:
    if out.exists():
        return [out]
    return sorted(out.parent.glob(f"{out.stem}-*{out.suffix}"), key=lambda p: len(p.name))


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, list[Path]]:
    """Each format written once from a plain PSKC of all 50 tokens."""
    tmp = tmp_path_factory.mktemp("sources")
    master = tmp / "all.xml"
    master.write_bytes(write_plain_pskc(_tokens()))
    made = {}
    for kind in KINDS:
        out = tmp / f"src-{kind}{SUFFIX[kind]}"
        convert(_job(kind, [master], out))
        made[kind] = _outputs(out)
    return made


@pytest.mark.parametrize(
    ("a", "b"), [(a, b) for a in KINDS for b in KINDS if a != b], ids=lambda k: k
)
def test_every_pair_round_trips_what_both_can_hold(sources, tmp_path, a, b) -> None:
    out = tmp_path / f"out{SUFFIX[b]}"
    convert(_job(b, sources[a], out, password=PASSWORD, plaintext=True))
    files = _outputs(out)
    want = {r.serial: r for r in _tokens() if _holds(a, r) and _holds(b, r)}
    if b == "migration":  # split like the app: at most 10 accounts per QR code
        assert len(files) == -(-len(want) // 10)
    got = read_source(files, None, PASSWORD)
    assert got.errors == ()
    # never weaker: PSKC out of an encrypted PSKC is encrypted again, with its password
    assert got.encrypted is (b == "pskc-enc" or (a, b) == ("pskc-enc", "pskc"))
    assert sorted(r.serial for r in got.records) == sorted(want)
    for rec in got.records:
        orig = want[rec.serial]
        assert (rec.algorithm, rec.digits, rec.period) == (
            orig.algorithm,
            orig.digits,
            orig.period,
        )
        assert _pyotp_codes(rec.secret, rec.algorithm, rec.digits, rec.period) == _pyotp_codes(
            orig.secret, orig.algorithm, orig.digits, orig.period
        )
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600


def test_unsupported_rows_are_refused_with_row_and_reason(sources, tmp_path, capsys) -> None:
    out = tmp_path / "entra.csv"
    code = main(["convert", str(sources["otpauth"][0]), str(out), "--to", "azure-csv"])
    err = capsys.readouterr().err
    assert code == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing, not even a temp file
    assert "keyfob: line 2: 8 digits: Entra takes 6-digit codes only" in err
    assert "keyfob: line 5: SHA256: Entra takes SHA1 only" in err
    assert err.count("Entra takes") == 38  # every refused row, not only the first
    assert "--skip-unsupported" in err
    for rec in _tokens():
        assert base64.b32encode(rec.secret).decode().rstrip("=") not in err


def test_encrypted_pskc_never_becomes_plaintext_silently(sources, tmp_path, capsys) -> None:
    enc = str(sources["pskc-enc"][0])
    out = tmp_path / "uris.txt"
    assert main(["convert", enc, str(out), "--password", PASSWORD]) == 1
    assert "--plaintext" in capsys.readouterr().err and not out.exists()
    # PSKC out of an encrypted PSKC: encrypted again, with the input's password by default
    again = tmp_path / "again.xml"
    assert main(["convert", enc, str(again), "--password", PASSWORD]) == 0
    assert read_source([again], None, PASSWORD).encrypted
    assert main(["convert", enc, str(out), "--password", PASSWORD, "--plaintext"]) == 0
    assert out.read_text().count("otpauth://") == 50


def test_formats_are_detected_from_content_and_json_summary(sources, tmp_path) -> None:
    for kind in ("pskc", "azure-csv", "oath-csv", "otpauth", "migration"):
        renamed = tmp_path / f"input-{kind}.dat"
        renamed.write_bytes(sources[kind][0].read_bytes())
        assert read_source([renamed], None, None).format is Format(kind)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from keyfob.cli.main import run; run()",
            "convert",
            str(sources["otpauth"][0]),
            str(tmp_path / "o.csv"),
            "--to",
            "oath-csv",
            "--skip-unsupported",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(proc.stdout)
    assert summary["rows"] == 26 and len(summary["skipped"]) == 24  # 50 cycle over 8 combos
    assert summary["skipped"][0]["reason"].startswith("SHA256")
