"""Every parser that reads hostile input, under hypothesis: structured round trips (what keyfob
writes, it reads back equal) and arbitrary input (a refusal is a KeyfobError with a message,
never another exception). Bounded: each test runs a fixed number of examples with no deadline,
so the whole file stays within a few seconds of the suite. ``make fuzz`` runs the same targets
coverage-guided for minutes (fuzz/)."""

from __future__ import annotations

import base64
import string

import targets
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keyfob.formats.csvseeds import read_entra_csv, read_oath_csv, write_entra_csv
from keyfob.formats.gauth import encode_migration
from keyfob.formats.pskc import read_pskc, write_plain_pskc, write_pskc
from keyfob.formats.seeds import SeedRecord
from keyfob.otp import Algorithm, OtpType
from keyfob.otp.migration import decode_migration, merge_batches
from keyfob.otp.secret import parse_secret
from keyfob.token import protocol as p

FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

secrets_ = st.binary(min_size=10, max_size=64)
serials = st.text(string.ascii_uppercase + string.digits + "-_.", min_size=1, max_size=40)
upns = st.from_regex(r"[a-z0-9._%+-]{1,20}@[a-z0-9-]{1,20}\.[a-z]{2,6}", fullmatch=True)


def records(
    *, types: tuple[OtpType, ...] = tuple(OtpType), totp_only_30: bool = False
) -> st.SearchStrategy[SeedRecord]:
    return st.builds(
        SeedRecord,
        serial=serials,
        secret=secrets_,
        type=st.sampled_from(types),
        algorithm=st.sampled_from(list(Algorithm)),
        digits=st.sampled_from([6, 8]),
        period=st.just(30) if totp_only_30 else st.sampled_from([30, 60]),
        counter=st.integers(0, 2**40),
        upn=st.none() | upns,
    )


def _same(a: SeedRecord, b: SeedRecord) -> None:
    assert (a.serial, a.secret, a.type, a.digits) == (b.serial, b.secret, b.type, b.digits)
    if a.type is OtpType.TOTP:
        assert a.period == b.period
    else:
        assert a.counter == b.counter


# --- otp ------------------------------------------------------------------------------------


@st.composite
def otpauth_uris(draw: st.DrawFn) -> bytes:
    """URIs near the grammar: a real scheme and type, hostile label and parameters."""
    scheme = draw(st.sampled_from(["otpauth://", "OTPAUTH://", "otpauth:/", "otpauth://"]))
    kind = draw(st.sampled_from(["totp", "hotp", "TOTP", "", "motp"]))
    label = draw(st.text(max_size=30))
    keys = ["secret", "issuer", "algorithm", "digits", "period", "counter", "image", "SECRET"]
    params = draw(st.lists(st.tuples(st.sampled_from(keys), st.text(max_size=40)), max_size=6))
    if draw(st.booleans()):
        params.append(("secret", base64.b32encode(draw(secrets_)).decode().rstrip("=")))
    query = "&".join(f"{k}={v}" for k, v in params)
    return f"{scheme}{kind}/{label}?{query}".encode("utf-8", "surrogatepass")


@MANY
@given(otpauth_uris() | st.binary(max_size=300))
def test_otpauth_uris(data: bytes) -> None:
    targets.otpauth(data)
    targets.payload(data)


@MANY
@given(st.binary(min_size=1, max_size=64), st.sampled_from(["", " ", "-", "\t"]), st.booleans())
def test_base32_secrets_read_back_leniently(raw: bytes, sep: str, lower: bool) -> None:
    text = base64.b32encode(raw).decode()
    if lower:
        text = text.lower()
    if sep:
        text = sep.join(text[i : i + 4] for i in range(0, len(text), 4))
    assert parse_secret("base32:" + text, allow_short=True) == raw
    assert parse_secret("0x" + raw.hex().upper(), allow_short=True) == raw


@MANY
@given(st.text(max_size=80) | st.binary(max_size=80).map(lambda b: b.decode("latin-1")))
def test_any_secret_text(text: str) -> None:
    targets.secret(text.encode("utf-8", "surrogatepass"))


@FEW
@given(st.lists(records(totp_only_30=True), min_size=1, max_size=12, unique_by=lambda r: r.serial))
def test_migration_round_trip(recs: list[SeedRecord]) -> None:
    creds = merge_batches([decode_migration(u) for u in encode_migration(recs)])
    assert [c.secret for c in creds] == [r.secret for r in recs]
    assert [c.digits for c in creds] == [r.digits for r in recs]


@MANY
@given(st.binary(max_size=400))
def test_migration_any_bytes(data: bytes) -> None:
    targets.migration_wire(data)
    targets.migration_uri(b"otpauth-migration://offline?data=" + data)


# --- formats --------------------------------------------------------------------------------


@FEW
@given(st.lists(records(), min_size=1, max_size=5, unique_by=lambda r: r.serial))
def test_pskc_round_trip_plain_and_encrypted(recs: list[SeedRecord]) -> None:
    for blob, kw in (
        (write_plain_pskc(recs), {}),
        (write_pskc(recs, "correct horse", iterations=10), {"password": "correct horse"}),
    ):
        loaded = read_pskc(blob, **kw)  # type: ignore[arg-type]
        assert loaded.ok, loaded.errors
        for a, b in zip(recs, loaded.records, strict=True):
            _same(a, b)


@FEW
@given(st.binary(max_size=600), st.integers(0, 1500))
@example(data=b"", at=0)
def test_pskc_any_bytes_and_mutations(data: bytes, at: int) -> None:
    targets.pskc(data)
    seed = write_plain_pskc([SeedRecord(serial="S1", secret=b"x" * 20)])
    targets.pskc(seed[:at] + data[:40] + seed[at + len(data[:40]) :])


@FEW
@given(
    st.lists(
        records(types=(OtpType.TOTP,)).map(
            lambda r: SeedRecord(
                serial=r.serial, secret=r.secret, period=r.period, upn=r.upn, model="=cmd|x"
            )
        ),
        min_size=1,
        max_size=8,
        unique_by=lambda r: r.serial,
    )
)
def test_entra_csv_round_trip(recs: list[SeedRecord]) -> None:
    loaded = read_entra_csv(write_entra_csv(recs))
    assert loaded.ok, loaded.errors
    for a, b in zip(recs, loaded.records, strict=True):
        _same(a, b)
        assert (a.upn, b.model) == (b.upn, "=cmd|x")


csv_cells = st.text(string.printable, max_size=12) | st.sampled_from(
    ["totp", "hotp", "6", "8", "30", "99999999999999999999999", "", '"', "0x1f"]
)


@MANY
@given(st.lists(st.lists(csv_cells, max_size=6), max_size=6), st.binary(max_size=200))
def test_csv_readers_any_rows(rows: list[list[str]], noise: bytes) -> None:
    text = "\n".join(",".join(r) for r in rows).encode()
    for data in (text, noise, b"upn,serial number,secret key,time interval\n" + text):
        targets.entra_csv(data)
        targets.oath_csv(data)
        targets.otpauth_list(data)
        targets.seed_any(data)


@FEW
@given(st.lists(records(), min_size=1, max_size=6, unique_by=lambda r: r.serial))
def test_oath_csv_round_trip(recs: list[SeedRecord]) -> None:
    lines = [
        f"{r.serial},{r.secret.hex()},{r.type.value},{r.digits},{r.period}".encode() for r in recs
    ]
    loaded = read_oath_csv(b"\n".join(lines))
    assert loaded.ok, loaded.errors
    for a, b in zip(recs, loaded.records, strict=True):
        assert (a.serial, a.secret, a.type, a.digits) == (b.serial, b.secret, b.type, b.digits)


# --- token: APDUs on both sides -------------------------------------------------------------


@MANY
@given(st.binary(max_size=300))
def test_apdu_client_side(data: bytes) -> None:
    targets.apdu_client(data)


@MANY
@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.binary(max_size=255))
def test_apdu_framing_round_trip(ins: int, p1: int, p2: int, body: bytes) -> None:
    apdu = p.Apdu(0x80, ins, p1, p2, body)
    assert p.Apdu.parse(apdu.to_bytes()) == apdu


@MANY
@given(st.binary(max_size=300))
def test_emulator_answers_every_command(data: bytes) -> None:
    targets.emulator_raw(data)
    targets.emulator_secure(data)


@FEW
@given(
    st.sampled_from(list(p.Ins)), st.integers(0, 255), st.integers(0, 255), st.binary(max_size=80)
)
def test_emulator_secure_commands_by_ins(ins: int, p1: int, p2: int, body: bytes) -> None:
    """Known INS values past the MAC, so every command's body codec sees hostile bytes."""
    targets.emulator_secure(bytes([ins, p1, p2]) + body)


# --- RADIUS ---------------------------------------------------------------------------------


@st.composite
def radius_packets(draw: st.DrawFn) -> bytes:
    """A header that adds up, with attributes of hostile types, lengths and values."""
    attrs = b"".join(
        bytes([t, len(v) + 2]) + v
        for t, v in draw(
            st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=8)
        )
    )
    code = draw(st.sampled_from([1, 1, 1, 2, 4, 11, 255]))
    length = 20 + len(attrs) + draw(st.sampled_from([0, 0, 0, -1, 1, 3]))
    return (
        bytes([code, draw(st.integers(0, 255))])
        + length.to_bytes(2, "big", signed=True)[-2:]
        + draw(st.binary(min_size=16, max_size=16))
        + attrs
    )


@MANY
@given(radius_packets() | st.binary(max_size=200))
def test_radius_packets(data: bytes) -> None:
    targets.radius(data)
    targets.radius_signed(data[20:])
