"""The command line as a user meets it: outputs, JSON shapes, one-line errors."""

from __future__ import annotations

import io
import json

import pytest

from keyfob.cli.common import print_json, print_json_rows
from keyfob.cli.main import main
from keyfob.formats import qr

MS_URI = "otpauth://totp/Test+Und%2BFirma%3Atest%40firma.onmicrosoft.com?secret=frjlnxsknymgykjx&issuer=Microsoft"
PHONEFACTOR = "phonefactor://activate_account?code=123456789&url=https%3A%2F%2Fsomething.phonefactor.net%2Fpad%2F987654321"
MIGRATION_TWO = (
    "otpauth-migration://offline?data=CigKEPqlBekzoNEukL7qlsjBCDYSDnBpQHJhc3BiZXJyeXBpIAEo"
    "ATACCjUKEPqlBekzoNEukL7qlsjBCDYSDnBpQHJhc3BiZXJyeXBpGgtyYXNwYmVycnlwaSABKAEwAhABGAEgAC"
    "iQ7OOa%2Bf%2F%2F%2F%2F8B"
)


CODE = ["code", "JBSWY3DPEHPK3PXP"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_code_prints_only_the_code(capsys) -> None:
    assert run(capsys, "code", "JBSWY3DPEHPK3PXP", "--at", "1700000000") == (0, "324550\n", "")


def test_code_json(capsys) -> None:
    code, out, _ = run(capsys, "code", "JBSWY3DPEHPK3PXP", "--at", "1700000000", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["code"] == "324550"
    assert data["step"] == 1700000000 // 30
    assert data["valid_for"] == 30 - 1700000000 % 30


def test_code_from_stdin(capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("jbsw y3dp ehpk 3pxp\n"))
    assert run(capsys, "code", "-", "--at", "0")[1] == "282760\n"


def test_code_iso_time_with_offset(capsys) -> None:
    # 2023-11-14T22:13:20Z is 1700000000; the same instant in +02:00.
    assert (
        run(capsys, "code", "JBSWY3DPEHPK3PXP", "--at", "2023-11-15T00:13:20+02:00")[1]
        == "324550\n"
    )


def test_code_from_migration_needs_account(capsys) -> None:
    code, out, err = run(capsys, "code", MIGRATION_TWO, "--at", "1700000000")
    assert code == 1 and out == ""
    assert err.startswith("keyfob: error: the payload holds 2 accounts")
    assert "--account" in err
    assert (
        run(capsys, "code", MIGRATION_TWO, "--at", "1700000000", "--account", "raspberrypi:")[1]
        == "056725\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["code", "IAmShashank11111111"],
            "secret is not valid base32: character '1' at position 12",
            id="code: bad secret",
        ),
        pytest.param(
            [*CODE, "--at", "yesterday"], "cannot read the time 'yesterday'", id="code: bad --at"
        ),
        pytest.param(
            [*CODE, "--digits", "4"], "unsupported number of digits 4", id="code: 4 digits"
        ),
        pytest.param([*CODE, "--algorithm", "md5"], "unsupported algorithm 'md5'", id="code: md5"),
        pytest.param([*CODE, "--period", "0"], "unsupported period 0", id="code: period 0"),
        pytest.param(
            ["code", PHONEFACTOR],
            "Microsoft Authenticator push-notification QR code",
            id="code: microsoft push qr",
        ),
        pytest.param(
            ["uri", "inspect", PHONEFACTOR],
            "I want to use a different authenticator app",
            id="uri inspect: microsoft push qr",
        ),
        pytest.param(
            ["uri", "inspect", "otpauth://totp/x?issuer=a"],
            "otpauth URI has no secret parameter",
            id="uri inspect: no secret",
        ),
    ],
)
def test_errors_are_one_line(capsys, args: list[str], message: str) -> None:
    code, out, err = run(capsys, *args)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("keyfob: error: ")
    assert message in err
    assert "Traceback" not in err


def test_uri_inspect_masks_the_secret(capsys) -> None:
    code, out, err = run(capsys, "uri", "inspect", MS_URI)
    assert code == 0
    assert "FRJLNXSKNYMGYKJX" not in out and "frjlnxsknymgykjx" not in out
    assert "issuer     Microsoft" in out
    # Microsoft's own label prefix (the organisation) is noted, not warned about
    assert "warning" not in err and "keyfob: note: " in err and "is the organisation" in err


def test_uri_inspect_json_shape(capsys) -> None:
    code, out, _ = run(capsys, "uri", "inspect", MIGRATION_TWO, "--json")
    assert code == 0
    data = json.loads(out)
    assert data == [
        {
            "type": "totp",
            "issuer": "",
            "account": "pi@raspberrypi",
            "algorithm": "SHA1",
            "digits": 6,
            "period": 30,
            "counter": None,
        },
        {
            "type": "totp",
            "issuer": "raspberrypi",
            "account": "pi@raspberrypi",
            "algorithm": "SHA1",
            "digits": 6,
            "period": 30,
            "counter": None,
        },
    ]
    _, out, _ = run(capsys, "uri", "inspect", MIGRATION_TWO, "--json", "--show-secret")
    assert [d["secret"] for d in json.loads(out)] == ["7KSQL2JTUDIS5EF65KLMRQIIGY"] * 2


def test_qr_encode_decode_files(capsys, tmp_path) -> None:
    uri = "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"
    png, svg = tmp_path / "a.png", tmp_path / "a.svg"
    assert run(capsys, "qr", "encode", uri, "-o", str(png))[0] == 0
    assert run(capsys, "qr", "encode", uri, "-o", str(svg))[0] == 0
    assert svg.read_text().startswith("<svg")
    assert run(capsys, "qr", "decode", str(png)) == (0, uri + "\n", "")
    _, out, _ = run(capsys, "uri", "inspect", str(png), "--json", "--show-secret")
    assert json.loads(out)[0]["secret"] == "JBSWY3DPEHPK3PXP"
    assert run(capsys, "code", str(png), "--at", "1700000000")[1] == "324550\n"


def test_qr_encode_to_terminal(capsys) -> None:
    code, out, _ = run(capsys, "qr", "encode", "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP")
    assert code == 0 and "▀" in out


def test_qr_encode_refuses_a_broken_uri(capsys, tmp_path) -> None:
    code, _, err = run(
        capsys, "qr", "encode", "otpauth://totp/x?secret=0000", "-o", str(tmp_path / "x.png")
    )
    assert code == 1 and "not valid base32" in err
    assert not (tmp_path / "x.png").exists()


def test_qr_decode_phonefactor_prints_payload_and_advice(capsys, tmp_path) -> None:
    path = tmp_path / "ms.png"
    path.write_bytes(qr.encode_png(PHONEFACTOR))
    code, out, err = run(capsys, "qr", "decode", str(path))
    assert code == 0
    assert out == PHONEFACTOR + "\n"
    assert "I want to use a different authenticator app" in err


def test_qr_decode_reports_each_bad_file(capsys, tmp_path) -> None:
    good = tmp_path / "good.png"
    good.write_bytes(qr.encode_png("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP"))
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (300, 300), "white").save(blank)
    code, out, err = run(capsys, "qr", "decode", str(good), str(blank))
    assert code == 1
    assert out == "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP\n"
    assert f"no QR code found in {blank}" in err


def test_help_and_no_arguments(capsys) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "Usage: keyfob" in out
    code, out, err = run(capsys, "code")
    assert code == 2 and "Missing argument" in out + err


ROWS = {
    "no rows": ({"ok": True, "created_users": []}, []),
    "one row, text to escape": (
        {"format": "pskc", "note": 'é "q"\n'},
        [{"where": "key 1", "message": "x\ny", "hint": None, "list": [1, {"a": []}], "d": {}}],
    ),
    "three batches": ({}, [{"where": f"line {i}", "user": None} for i in range(2_500)]),
}


@pytest.mark.parametrize(("head", "rows"), ROWS.values(), ids=ROWS.keys())
def test_json_written_a_batch_of_rows_at_a_time_is_the_same_json(
    capsys, head: dict[str, object], rows: list[dict[str, object]]
) -> None:
    """``tokens import --json`` writes its rows as it encodes them; the text is what
    ``print_json`` of the whole report prints, byte for byte."""
    print_json({**head, "rows": rows})
    whole = capsys.readouterr().out
    print_json_rows(head, "rows", iter(rows))
    assert capsys.readouterr().out == whole
    assert json.loads(whole)["rows"] == rows
