"""Seed-file readers at their limits: values no column can hold, UPNs the API would refuse,
spreadsheet formulas in exported CSVs, hostile PBKDF2 costs, wrong passwords, and files read
as a stream. Every refusal names its line or key."""

from __future__ import annotations

import csv
import io
import time
import tracemalloc

import pytest

from keyfob.errors import KeyfobError, SeedFileError
from keyfob.formats.csvseeds import read_entra_csv, write_entra_csv
from keyfob.formats.pskc import MAX_PBKDF2_ITERATIONS, read_pskc
from keyfob.formats.seedfile import read_seed_file, stream_seed_file
from keyfob.formats.seeds import MAX_COUNTER, SeedRecord
from keyfob.otp import OtpType
from keyfob.server.accounts import check_username
from keyfob.server.errors import ServiceError
from server import pskc_fixtures as fx

HEX = "3132333435363738393031323334353637383930"
B32 = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ENTRA_HEAD = "upn,serial number,secret key,time interval,manufacturer,model\n"


def _errors(data: bytes, **kw: object) -> dict[str, str]:
    return {e.where: e.message for e in read_seed_file(data, **kw).errors}  # type: ignore[arg-type]


# --- item 4: numbers beyond the columns and the OTP limits -------------------------------


def test_oath_csv_out_of_range_counter_period_digits_name_their_line() -> None:
    data = (
        f"ok,{HEX},5\n"
        f"big-counter,{HEX},{2**64}\n"
        f"huge-period,{HEX},totp,6,{2**32}\n"
        f"digits,{HEX},totp,12\n"
        f"long-number,{HEX},{'9' * 5000}\n"  # int() of it would raise ValueError: no 500
    ).encode()
    errors = _errors(data)
    assert set(errors) == {"line 2", "line 3", "line 4", "line 5"}
    assert "counter 18446744073709551616 is out of range" in errors["line 2"]
    assert "time interval 4294967296 s is out of range" in errors["line 3"]
    assert "digits 12 is out of range (6 to 10)" in errors["line 4"]
    assert "not a whole number" in errors["line 5"]


def test_otpauth_list_out_of_range_counter_and_period_name_their_line() -> None:
    data = (
        f"otpauth://hotp/a?secret={B32}&counter={2**64}\n"
        f"otpauth://totp/b?secret={B32}&period={2**31}\n"
        f"otpauth://hotp/c?secret={B32}&counter={MAX_COUNTER}\n"
    ).encode()
    parsed = read_seed_file(data)
    errors = {e.where: e.message for e in parsed.errors}
    assert "counter" in errors["line 1"] and "out of range" in errors["line 1"]
    assert "time interval 2147483648 s is out of range" in errors["line 2"]
    assert [r.counter for r in parsed.records] == [MAX_COUNTER]  # the limit itself is fine


@pytest.mark.parametrize(
    ("element", "value", "message"),
    [
        ("TimeInterval", str(2**64), "time interval 18446744073709551616 s is out of range"),
        ("TimeDrift", "-99999", "time drift -99999 steps is out of range"),
        ("TimeDrift", str(2**40), "time drift 1099511627776 steps is out of range"),
    ],
    ids=["interval past 64 bits", "drift far behind", "drift far ahead"],
)
def test_pskc_out_of_range_totp_values_name_their_key(
    element: str, value: str, message: str
) -> None:
    original = {"TimeInterval": b"60", "TimeDrift": b"1"}[element]
    data = fx.feitian_style().replace(
        f"<pskc:{element}><pskc:PlainValue>".encode() + original,
        f"<pskc:{element}><pskc:PlainValue>{value}".encode(),
    )
    errors = _errors(data)
    assert message in errors["key 1 (serial 2600215704919)"]


def test_pskc_hotp_counter_beyond_64_bits_names_its_key() -> None:
    data = fx.feitian_style().replace(
        b"<pskc:Counter><pskc:PlainValue>0", f"<pskc:Counter><pskc:PlainValue>{2**64}".encode()
    )
    assert (
        "counter 18446744073709551616 is out of range"
        in (_errors(data)["key 2 (serial 1000117803294)"])
    )


def test_serial_longer_than_its_column_is_a_row_error() -> None:
    data = f"{'S' * 129},{HEX}\nok,{HEX}\n".encode()
    assert _errors(data) == {"line 1": "serial is longer than 128 characters"}


# --- item 7: UPNs held to the API's username rule; formula cells on export ----------------

BAD_UPNS = {
    "dde formula with spaces": "=cmd|' /C calc'!A0",  # the classic DDE payload
    "tab": "alice\t@example.com",
    "nul": "bob\x00@example.com",
    "right-to-left override": "eve\u202e@example.com",  # a format character
    "over 255 characters": "a" * 300 + "@example.com",
}


@pytest.mark.parametrize("upn", BAD_UPNS.values(), ids=BAD_UPNS.keys())
def test_entra_csv_refuses_upns_the_api_refuses_with_the_line(upn: str) -> None:
    with pytest.raises(ServiceError):
        check_username(upn)  # the API's rule …
    rows = [f"ok@example.com,S1,{B32},30,T,M", f'"{upn}",S2,{B32},30,T,M']
    errors = read_entra_csv(ENTRA_HEAD + "\n".join(rows) + "\n").errors
    assert [e.where for e in errors] == ["line 3"]  # … is the import's rule
    assert errors[0].message.startswith("upn ")
    assert errors[0].hint and "user principal name" in errors[0].hint


def test_upn_is_normalised_like_an_api_username() -> None:
    decomposed = "jose\u0301@example.com"
    parsed = read_entra_csv(f"{ENTRA_HEAD}{decomposed},S1,{B32},30,T,M\n")
    assert parsed.records[0].upn == check_username(decomposed) == "jos\u00e9@example.com"


TRICKY = [
    # (upn, serial, manufacturer, model): every cell a spreadsheet would run, or a quote
    ("=1+2@example.com", "=SUM(A1)", "+Vendor", "-model"),
    ("@alice@example.com", "@serial", "Token2", "C202"),
    ("'=quoted@example.com", "'lead", "''double", "'-x"),
    ("o'brien@example.com", "-5", '=HYPERLINK("http://evil")', "C202"),
    ("plain@example.com", "2300000000001", "Token2", "C301i"),
]


def _records() -> list[SeedRecord]:
    return [
        SeedRecord(
            serial=serial,
            secret=bytes(20),
            type=OtpType.TOTP,
            upn=upn,
            manufacturer=manufacturer,
            model=model,
        )
        for upn, serial, manufacturer, model in TRICKY
    ]


def test_export_neutralises_formula_cells() -> None:
    # a tab or CR can only come from a row stored before imports checked them
    control = SeedRecord(serial="\rS", secret=bytes(20), manufacturer="\tT", model="\tM")
    out = write_entra_csv([*_records(), control])
    rows = list(csv.reader(io.StringIO(out)))[1:]
    for row in rows:
        for i in (0, 1, 4, 5):  # upn, serial, manufacturer, model
            assert not row[i].startswith(("=", "+", "-", "@", "\t", "\r")), row[i]
    assert rows[0][0] == "'=1+2@example.com" and rows[0][1] == "'=SUM(A1)"
    assert rows[3][0] == "o''brien@example.com"  # Entra's own quote escaping is kept
    assert rows[4] == [
        "plain@example.com",
        "2300000000001",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "30",
        "Token2",
        "C301i",
    ]


def test_our_own_export_reads_back_exactly() -> None:
    back = read_entra_csv(write_entra_csv(_records()))
    assert not back.errors
    got = [(r.upn, r.serial, r.manufacturer, r.model) for r in back.records]
    assert got == TRICKY


# --- item 8: PBKDF2 cost; item 12: the wrong-password message --------------------------


def test_pskc_with_two_billion_pbkdf2_iterations_is_refused_before_deriving() -> None:
    data = fx.figure7().replace(
        b"<IterationCount>1000</IterationCount>", b"<IterationCount>2000000000</IterationCount>"
    )
    started = time.monotonic()
    with pytest.raises(SeedFileError) as err:
        read_pskc(data, password="qwerty")
    assert time.monotonic() - started < 5  # deriving would take hours
    assert "2000000000 PBKDF2 iterations" in err.value.message
    assert f"{MAX_PBKDF2_ITERATIONS:,}" in err.value.message
    assert err.value.hint and "iteration count" in err.value.hint


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"<IterationCount>1000<", b"<IterationCount>0<", "0 PBKDF2 iterations"),
        (b"<KeyLength>16<", b"<KeyLength>1000000000<", "1000000000-byte PBKDF2 key"),
    ],
    ids=["no iterations", "a gigabyte key"],
)
def test_other_unreasonable_pbkdf2_parameters_are_refused(
    old: bytes, new: bytes, message: str
) -> None:
    with pytest.raises(SeedFileError, match=message):
        read_pskc(fx.figure7().replace(old, new), password="qwerty")


def test_wrong_pskc_password_says_so_with_a_hint() -> None:
    errors = read_pskc(fx.figure7(), password="not-qwerty").errors
    assert len(errors) == 1
    assert errors[0].message == "cannot decrypt: wrong password or key, or a damaged file"
    assert "Invalid padding" not in errors[0].message
    assert errors[0].hint and "--password" in errors[0].hint
    wrong_key = read_pskc(fx.figure6(), key=bytes(16)).errors
    assert wrong_key[0].message == "cannot decrypt: wrong password or key, or a damaged file"
    assert read_pskc(fx.figure7(), password="qwerty").ok


# --- streaming -----------------------------------------------------------------------------


class _CountingReader(io.BytesIO):
    """A file that records the furthest byte any read reached."""

    furthest = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.furthest = max(self.furthest, self.tell())
        return chunk


def test_csv_from_a_file_is_read_as_rows_are_consumed() -> None:
    rows = "".join(f",SN{i:07d},{B32},30,T,M\n" for i in range(50_000))
    source = _CountingReader((ENTRA_HEAD + rows).encode())
    stream = stream_seed_file(source)
    assert stream.format == "azure-csv"
    first = [next(stream.items) for _ in range(10)]
    assert [r.serial for r in first] == [f"SN{i:07d}" for i in range(10)]  # type: ignore[union-attr]
    assert source.furthest < 64 * 1024 < len(source.getvalue())
    assert sum(1 for _ in stream.items) == 50_000 - 10


def test_pskc_from_a_file_is_read_as_keys_are_consumed() -> None:
    source = _CountingReader(fx.plain_keys(5_000))
    stream = stream_seed_file(source)
    assert stream.format == "pskc"
    first = [next(stream.items) for _ in range(10)]
    assert [r.serial for r in first] == [f"P{i:08d}" for i in range(10)]  # type: ignore[union-attr]
    assert source.furthest < 64 * 1024 < len(source.getvalue())
    assert sum(1 for _ in stream.items) == 5_000 - 10


def _pskc_peak(keys: int) -> int:
    """The most memory Python held while the keys of a file were read and let go, in bytes."""
    source = io.BytesIO(fx.plain_keys(keys))
    tracemalloc.start()
    try:
        assert sum(1 for _ in stream_seed_file(source).items) == keys
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_pskc_memory_does_not_grow_with_the_file() -> None:
    """Counted, not timed. Parsed whole, a PSKC file takes 13 times its size (the tree, a copy
    of it and every python-pskc key): 2 800 more keys, 1.2 MB more file, 15 MB more memory.
    Read a package at a time, only the serials seen (to refuse one given twice) grow: 0.35 MB."""
    _pskc_peak(50)  # what is allocated once (caches, lazy imports) is not what is measured
    small, large = _pskc_peak(400), _pskc_peak(3_200)
    more_file = len(fx.plain_keys(3_200)) - len(fx.plain_keys(400))
    assert large - small < more_file / 2, (small, large, more_file)


def test_pskc_serial_given_twice_is_the_second_keys_error() -> None:
    data = fx.plain_keys(3).replace(b"P00000002", b"P00000000")
    parsed = read_pskc(data)
    assert [r.serial for r in parsed.records] == ["P00000000", "P00000001"]
    assert {e.where: e.message for e in parsed.errors} == {
        "key 3 (serial P00000000)": "serial 'P00000000' already appears in key 1"
    }


def test_pskc_value_that_cannot_be_read_is_its_keys_error() -> None:
    """python-pskc decodes a package's values as it parses it: bad base64 in one package is
    that key's row, and the keys around it are read."""
    data = fx.plain_keys(3).replace(b"<PlainValue>AAAAAAAAAAAAAAAAAAAAAAAAAAE=", b"<PlainValue>A")
    parsed = read_pskc(data)
    assert [r.serial for r in parsed.records] == ["P00000000", "P00000002"]
    assert [e.where for e in parsed.errors] == ["key 2"]
    assert parsed.errors[0].message.startswith("unreadable: ")


def test_pskc_encryption_key_after_the_keys_is_refused() -> None:
    """The header must come before the keys it decrypts (RFC 6030's order): a file is read a
    key package at a time, and keys already read cannot wait for it."""
    data = fx.plain_keys(2).replace(
        b"</KeyContainer>", b"<EncryptionKey><KeyName>late</KeyName></EncryptionKey></KeyContainer>"
    )
    with pytest.raises(SeedFileError, match="EncryptionKey comes after its first key package"):
        read_pskc(data)


def test_bad_utf8_deep_in_a_streamed_csv_fails_the_file() -> None:
    rows = "".join(f",SN{i:07d},{B32},30,T,M\n" for i in range(5_000)).encode()
    source = io.BytesIO(ENTRA_HEAD.encode() + rows + b",SNX,\xff\xfe,30,T,M\n")
    with pytest.raises(KeyfobError, match="not UTF-8"):
        read_seed_file(source)
