"""Seed-file import through the API: RFC 6030 figures, a Feitian-style file, Entra and OATH
CSVs, and every kind of bad input (each leaves the database exactly as it was)."""

from __future__ import annotations

import base64
import hashlib
import subprocess

import pyotp
import sqlalchemy as sa

from keyfob.otp import to_base32
from keyfob.server.store.schema import tokens, users

from . import pskc_fixtures as fx


def _import(api, data: bytes | str, **extra):
    body = {"content": data.decode() if isinstance(data, bytes) else data} | extra
    return api.post("/api/v1/tokens/import", json=body)


def _counts(api) -> tuple[int, int]:
    with api.ctx.engine.connect() as conn:
        return (
            conn.execute(sa.select(sa.func.count()).select_from(tokens)).scalar_one(),
            conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one(),
        )


def _user(api, name: str = "alice@example.com") -> None:
    assert api.post("/api/v1/users", json={"username": name}).status_code == 201


def test_rfc6030_figure6_preshared_key(api, clock) -> None:
    api.watch.secrets.add(fx.PRESHARED_KEY.hex())
    data = fx.figure6()
    resp = _import(api, data, key=fx.PRESHARED_KEY.hex())
    assert resp.status_code == 200, resp.text
    assert resp.json()["created"] == 1
    item = api.get("/api/v1/tokens").json()["items"][0]
    assert (item["serial"], item["type"], item["digits"], item["manufacturer"]) == (
        "987654321",
        "hotp",
        8,
        "Manufacturer",
    )
    _user(api)
    api.post("/api/v1/tokens/987654321/assign", json={"username": "alice@example.com"})
    # RFC 4226 Appendix D, 8 digits: the imported secret is ASCII 12345678901234567890
    assert api.validate("alice@example.com", "84755224") == "accept"
    assert api.validate("alice@example.com", "94287082") == "accept"


def test_rfc6030_figure7_pbkdf2(api, clock) -> None:
    # The published derived key is what PBKDF2 gives for these parameters (an RFC fact).
    assert hashlib.pbkdf2_hmac("sha1", b"qwerty", fx.FIG7_SALT, 1000, 16) == fx.FIG7_DERIVED
    api.watch.secrets.add(fx.FIG7_PASSWORD)
    wrong = _import(api, fx.figure7(), password="not-qwerty")
    assert wrong.status_code == 422
    assert "cannot decrypt" in wrong.json()["error"]["message"]
    assert _counts(api) == (0, 0)
    resp = _import(api, fx.figure7(), password="qwerty")
    assert resp.status_code == 200, resp.text
    _user(api)
    api.post("/api/v1/tokens/987654321/assign", json={"username": "alice@example.com"})
    # pyotp computes the code independently from the secret the RFC publishes
    code = pyotp.HOTP(base64.b32encode(fx.RFC_SECRET).decode(), digits=8).at(0)
    api.watch.codes.add(code)
    assert api.validate("alice@example.com", code) == "accept"


def test_encrypted_file_without_password_says_so(api, clock) -> None:
    resp = _import(api, fx.figure7())
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert "encrypted" in err["message"] and "My Password 1" in err["message"]
    assert "--password" in err["hint"]


def test_feitian_style_totp_validated_with_oathtool(api, clock, oathtool) -> None:
    api.watch.secrets.add(to_base32(fx.FEITIAN_TOTP_SECRET))
    resp = _import(api, fx.feitian_style(), filename="20120919-test001-4282.xml")
    assert resp.status_code == 200 and resp.json()["created"] == 2
    inv = {t["serial"]: t for t in api.get("/api/v1/tokens").json()["items"]}
    assert inv["2600215704919"]["period"] == 60
    assert inv["2600215704919"]["drift_steps"] == 1  # TimeDrift carried over
    assert inv["2600215704919"]["model"] == "c200"
    assert inv["1000117803294"]["type"] == "hotp"
    _user(api)
    api.post("/api/v1/tokens/2600215704919/assign", json={"username": "alice@example.com"})
    # the token is one step ahead (TimeDrift 1): oathtool computes its code independently
    code = subprocess.run(
        [
            oathtool,
            "--totp",
            "-s",
            "60s",
            "-N",
            f"@{int(clock.now) + 60}",
            fx.FEITIAN_TOTP_SECRET.hex(),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    api.watch.codes.add(code)
    assert api.validate("alice@example.com", code) == "accept"
    assert (
        pyotp.TOTP(base64.b32encode(fx.FEITIAN_TOTP_SECRET).decode(), interval=60).at(
            clock.now + 60
        )
        == code
    )


ENTRA = """upn,serial number,secret key,time interval,manufacturer,model
alice@example.com,1234567,2234567abcdef2234567abcdef,60,Contoso,HardwareKey
,2300000000001,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,30,Token2,C202
"o''brien@example.com",2300000000002,KRUGS4ZANFZSA5DIMUQHGZLDOJSXIIDTMVSWI===,30,Token2,C301i
"""


def test_entra_csv_assigns_rows_with_upn_and_is_idempotent(api, clock) -> None:
    api.watch.secrets.update({"2234567abcdef2234567abcdef", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"})
    dry = _import(api, ENTRA, dry_run=True).json()
    assert dry["ok"] and dry["imported"] == 0 and dry["created"] == 3
    assert sorted(dry["created_users"]) == ["alice@example.com", "o'brien@example.com"]
    assert _counts(api) == (0, 0)
    first = _import(api, ENTRA).json()
    assert (first["created"], first["unchanged"]) == (3, 0)
    again = _import(api, ENTRA).json()
    assert (again["created"], again["unchanged"]) == (0, 3)
    owners = {t["serial"]: t["owner"] for t in api.get("/api/v1/tokens").json()["items"]}
    assert owners == {
        "1234567": "alice@example.com",
        "2300000000001": None,
        "2300000000002": "o'brien@example.com",
    }
    key = base64.b32decode("2234567ABCDEF2234567ABCDEF" + "======")
    assert (
        api.validate(
            "alice@example.com",
            pyotp.TOTP(base64.b32encode(key).decode(), interval=60).at(clock.now),
        )
        == "accept"
    )


def test_same_serial_with_another_seed_is_refused(api, clock) -> None:
    _import(api, ENTRA)
    before = _counts(api)
    changed = ENTRA.replace("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "KBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    resp = _import(api, changed)
    assert resp.status_code == 422
    assert "different seed" in resp.json()["error"]["message"]
    assert _counts(api) == before


def test_bad_base32_on_line_7_names_line_7_and_imports_nothing(api, clock) -> None:
    rows = ["upn,serial number,secret key,time interval,manufacturer,model"]
    rows += [
        f",SN{i},JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX{c},30,Token2,C202" for i, c in enumerate("ABCDE")
    ]
    rows.append(",SN9,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3P0Q,30,Token2,C202")  # line 7: '0'
    resp = _import(api, "\n".join(rows) + "\n")
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["message"].startswith("1 row(s) have errors; nothing was imported (first: line 7:")
    assert "character '0' at position 31" in err["message"]
    assert next(r for r in err["report"]["rows"] if r["action"] == "error")["where"] == "line 7"
    assert _counts(api) == (0, 0)
    dry = _import(api, "\n".join(rows) + "\n", dry_run=True)
    assert dry.status_code == 200 and dry.json()["errors"] == 1


def test_malformed_pskc_files(api, clock) -> None:
    cases = [
        (b"this is not XML", "not well-formed XML"),
        (fx.BILLION_LAUGHS, "DTD or entity declarations"),
        (b"<root/>", "not a valid PSKC file"),
        (
            b'<KeyContainer xmlns="urn:ietf:params:xml:ns:keyprov:pskc" Version="1.2"/>',
            "not a valid PSKC file",
        ),
    ]
    for data, message in cases:
        resp = _import(api, data, format="pskc")
        assert resp.status_code == 400, (data[:30], resp.text)
        assert message in resp.json()["error"]["message"]
    tampered = _import(api, fx.figure6(tamper_mac=True), key=fx.PRESHARED_KEY.hex())
    assert tampered.status_code == 422
    assert "MAC value does not match" in tampered.json()["error"]["message"]
    assert _counts(api) == (0, 0)
    soft = _import(api, fx.figure6(tamper_mac=True), key=fx.PRESHARED_KEY.hex(), mac_check="soft")
    assert soft.status_code == 200
    assert any(r["action"] == "warning" for r in soft.json()["rows"])


def test_oversized_request_is_refused_before_reading(sqlite_api, clock) -> None:
    limit = sqlite_api.ctx.settings.max_request_bytes
    resp = sqlite_api.client.post(
        "/api/v1/tokens/import",
        content=b"{" + b" " * (limit + 10) + b"}",
        headers=sqlite_api.headers() | {"content-type": "application/json"},
    )
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "too_large"
    assert _counts(sqlite_api) == (0, 0)


def test_otpauth_list_and_export_round_trip(api, clock) -> None:
    uris = (
        "otpauth://totp/ACME:a?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ACME&serial=T-1\n"
        "# comment\n"
        "otpauth://totp/ACME:b?secret=KRUGS4ZANFZSA5DIMUQHGZLDOJSXIIDTMVSWI===&period=60\n"
    )
    assert _import(api, uris).json()["created"] == 2
    csv_out = api.post("/api/v1/tokens/export", json={"format": "azure-csv"})
    assert csv_out.status_code == 200
    lines = csv_out.text.splitlines()
    assert lines[0] == "upn,serial number,secret key,time interval,manufacturer,model"
    assert "T-1,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,30" in csv_out.text
    no_pw = api.post("/api/v1/tokens/export", json={"format": "pskc"})
    assert no_pw.status_code == 400
    pskc = api.post("/api/v1/tokens/export", json={"format": "pskc", "password": "export-pass-1"})
    assert pskc.status_code == 200
    from keyfob.formats.pskc import read_pskc

    back = read_pskc(pskc.content, password="export-pass-1")
    assert {r.serial for r in back.records} == {"T-1", "ACME:b"}
    assert {r.period for r in back.records} == {30, 60}
