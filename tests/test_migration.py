"""Google Authenticator export payloads: public samples, and payloads encoded by the protobuf runtime."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import given, settings
from hypothesis import strategies as st

from keyfob.errors import UriError
from keyfob.otp import Algorithm, OtpType, build_otpauth, decode_migration, merge_batches, to_base32

RPI = bytes.fromhex("faa505e933a0d12e90beea96c8c10836")

# Public samples from scito/extract_otp_secrets (example_export.txt), decoded facts in docs/formats.md §4.3.
SAMPLE_ISSUER = (
    "otpauth-migration://offline?data=CjUKEPqlBekzoNEukL7qlsjBCDYSDnBpQHJhc3BiZXJyeXBp"
    "GgtyYXNwYmVycnlwaSABKAEwAhABGAEgACjr4JKK%2B%2F%2F%2F%2F%2F8B"
)
SAMPLE_NO_ISSUER = (
    "otpauth-migration://offline?data=CigKEPqlBekzoNEukL7qlsjBCDYSDnBpQHJhc3BiZXJyeXBp"
    "IAEoATACEAEYASAAKLzjp5n4%2F%2F%2F%2F%2FwE%3D"
)
SAMPLE_TWO = (
    "otpauth-migration://offline?data=CigKEPqlBekzoNEukL7qlsjBCDYSDnBpQHJhc3BiZXJyeXBpIAEo"
    "ATACCjUKEPqlBekzoNEukL7qlsjBCDYSDnBpQHJhc3BiZXJyeXBpGgtyYXNwYmVycnlwaSABKAEwAhABGAEgAC"
    "iQ7OOa%2Bf%2F%2F%2F%2F8B"
)
SAMPLE_HOTP = (
    "otpauth-migration://offline?data=CiUKEPqlBekzoNEukL7qlsjBCDYSCWhvdHAgZGVtbyABKAEwATgE"
    "EAEYASAAKNuv15j6%2F%2F%2F%2F%2FwE%3D"
)
SAMPLE_UTF8 = (
    "otpauth-migration://offline?data=CjYKEPqlBekzoNEukL7qlsjBCDYSHGVuY29kaW5nOiDCv8Okw4TD"
    "qcOJPyAoZGVtbykgASgBMAIQARgBIAAorfCurv%2F%2F%2F%2F%2F%2FAQ%3D%3D"
)
# test_plus_problem_export.txt: raw '+' and '/' and no percent-encoding.
SAMPLE_PLUS = (
    "otpauth-migration://offline?data=ClEKFAciUeGF4aS6IDCvMv99ySZ1ekKsEiVTZXJlbml0eUxhYnM6dGVzdDFA"
    "c2VyZW5pdHlsYWJzLmNvLnVrGgxTZXJlbml0eUxhYnMgASgBMAIKUQoUkIY8/fbrHZWTb4CBln18lvqt0HcSJVNlcmVu"
    "aXR5TGFiczp0ZXN0MkBzZXJlbml0eWxhYnMuY28udWsaDFNlcmVuaXR5TGFicyABKAEwAgpRChScf+1/Ua4d4gCY0W/7"
    "fj9VBkM9PBIlU2VyZW5pdHlMYWJzOnRlc3QzQHNlcmVuaXR5bGFicy5jby51axoMU2VyZW5pdHlMYWJzIAEoATACClEK"
    "FG6Qu0ryTSFA/l5rmvTIXtNeb5LtEiVTZXJlbml0eUxhYnM6dGVzdDRAc2VyZW5pdHlsYWJzLmNvLnVrGgxTZXJlbml0"
    "eUxhYnMgASgBMAIQARgBIAAogtTa1vz/////AQ=="
)
# digitalduke/otpauth-migration-decoder: no algorithm, digits, version or batch fields at all.
SAMPLE_DEFAULTS = "otpauth-migration://offline?data=CjEKCkhlbGxvId6tvu8SGEV4YW1wbGU6YWxpY2VAZ29vZ2xlLmNvbRoHRXhhbXBsZTAC"


def test_sample_with_issuer() -> None:
    batch = decode_migration(SAMPLE_ISSUER)
    (c,) = batch.credentials
    assert (c.secret, c.account, c.issuer, c.type) == (
        RPI,
        "pi@raspberrypi",
        "raspberrypi",
        OtpType.TOTP,
    )
    assert (c.algorithm, c.digits, c.period) == (Algorithm.SHA1, 6, 30)
    assert (batch.version, batch.batch_size, batch.batch_index, batch.batch_id) == (
        1,
        1,
        0,
        -1320898453,
    )
    assert to_base32(c.secret) == "7KSQL2JTUDIS5EF65KLMRQIIGY"


def test_sample_without_issuer() -> None:
    batch = decode_migration(SAMPLE_NO_ISSUER)
    (c,) = batch.credentials
    assert (c.account, c.issuer) == ("pi@raspberrypi", "")
    assert batch.batch_id == -2094403140


def test_sample_two_entries() -> None:
    a, b = decode_migration(SAMPLE_TWO).credentials
    assert (a.issuer, b.issuer) == ("", "raspberrypi")
    assert a.secret == b.secret == RPI


def test_sample_hotp() -> None:
    batch = decode_migration(SAMPLE_HOTP)
    (c,) = batch.credentials
    assert (c.type, c.counter, c.account) == (OtpType.HOTP, 4, "hotp demo")
    assert batch.batch_id == -1558849573
    assert c.code() == "058438"  # docs/formats.md §1.4


def test_sample_utf8_name_round_trips_to_the_reference_uri() -> None:
    (c,) = decode_migration(SAMPLE_UTF8).credentials
    assert c.account == "encoding: ¿äÄéÉ? (demo)"
    assert build_otpauth(c).startswith(
        "otpauth://totp/encoding%3A%20%C2%BF%C3%A4%C3%84%C3%A9%C3%89%3F%20%28demo%29?secret=7KSQL2JTUDIS5EF65KLMRQIIGY"
    )


@pytest.mark.parametrize("variant", ["raw", "form-decoded"])
def test_plus_problem(variant: str) -> None:
    uri = SAMPLE_PLUS if variant == "raw" else SAMPLE_PLUS.replace("+", " ")
    creds = decode_migration(uri).credentials
    assert [to_base32(c.secret) for c in creds] == [
        "A4RFDYMF4GSLUIBQV4ZP67OJEZ2XUQVM",
        "SCDDZ7PW5MOZLE3PQCAZM7L4S35K3UDX",
        "TR76272RVYO6EAEY2FX7W7R7KUDEGPJ4",
        "N2ILWSXSJUQUB7S6NONPJSC62NPG7EXN",
    ]
    # The name repeats the issuer ("SerenityLabs:test1@…"): the duplicate prefix is dropped.
    assert (creds[0].issuer, creds[0].account) == ("SerenityLabs", "test1@serenitylabs.co.uk")


def test_defaults_sample() -> None:
    batch = decode_migration(SAMPLE_DEFAULTS)
    (c,) = batch.credentials
    assert c.secret == bytes.fromhex("48656c6c6f21deadbeef")
    assert (c.issuer, c.account, c.algorithm, c.digits, c.type) == (
        "Example",
        "alice@google.com",
        Algorithm.SHA1,
        6,
        OtpType.TOTP,
    )
    assert (batch.version, batch.batch_size, batch.batch_index) == (0, 1, 0)


# --- payloads encoded by Google's protobuf runtime (an independent encoder) -------------------


def _schema():
    fdp = descriptor_pb2.FileDescriptorProto(
        name="ga_migration.proto", package="t", syntax="proto3"
    )
    t = descriptor_pb2.FieldDescriptorProto
    otp = fdp.message_type.add(name="OtpParameters")
    for number, name, kind in [
        (1, "secret", t.TYPE_BYTES),
        (2, "name", t.TYPE_STRING),
        (3, "issuer", t.TYPE_STRING),
        (4, "algorithm", t.TYPE_INT32),
        (5, "digits", t.TYPE_INT32),
        (6, "type", t.TYPE_INT32),
        (7, "counter", t.TYPE_INT64),
        (8, "unique_id", t.TYPE_STRING),  # field 8: newer exports
        (15, "future_blob", t.TYPE_BYTES),
        (16, "future_fixed", t.TYPE_FIXED64),
    ]:
        otp.field.add(name=name, number=number, type=kind, label=t.LABEL_OPTIONAL)
    pay = fdp.message_type.add(name="MigrationPayload")
    pay.field.add(
        name="otp_parameters",
        number=1,
        type=t.TYPE_MESSAGE,
        label=t.LABEL_REPEATED,
        type_name=".t.OtpParameters",
    )
    for number, name in [(2, "version"), (3, "batch_size"), (4, "batch_index"), (5, "batch_id")]:
        pay.field.add(name=name, number=number, type=t.TYPE_INT32, label=t.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("t.MigrationPayload"))


Payload = _schema()


def _uri(msg) -> str:
    data = base64.b64encode(msg.SerializeToString()).decode()
    return "otpauth-migration://offline?data=" + quote(data, safe="")


ACCOUNTS = st.lists(
    st.tuples(
        st.binary(min_size=10, max_size=64),
        st.text(min_size=1, max_size=30).filter(lambda s: ":" not in s and s.strip() == s),
        st.text(max_size=20).filter(lambda s: ":" not in s and s.strip() == s),
        st.sampled_from([(1, Algorithm.SHA1), (2, Algorithm.SHA256), (3, Algorithm.SHA512)]),
        st.sampled_from([(1, 6), (2, 8)]),
        st.sampled_from([(1, OtpType.HOTP), (2, OtpType.TOTP)]),
        st.integers(min_value=0, max_value=2**40),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=100, deadline=None)
@given(accounts=ACCOUNTS, batch_id=st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_protobuf_encoded_payloads(accounts, batch_id) -> None:
    msg = Payload(version=2, batch_size=1, batch_index=0, batch_id=batch_id)
    for secret, name, issuer, (alg_code, _), (dig_code, _), (typ_code, _), counter in accounts:
        msg.otp_parameters.add(
            secret=secret,
            name=name,
            issuer=issuer,
            algorithm=alg_code,
            digits=dig_code,
            type=typ_code,
            counter=counter,
            unique_id="a3e4161745840929174",
            future_blob=b"\x01\x02",
            future_fixed=7,
        )
    batch = decode_migration(_uri(msg))
    assert batch.batch_id == batch_id
    assert batch.version == 2
    assert len(batch.credentials) == len(accounts)
    for cred, (secret, name, issuer, (_, alg), (_, digits), (_, typ), counter) in zip(
        batch.credentials, accounts, strict=True
    ):
        assert (cred.secret, cred.account, cred.issuer) == (secret, name, issuer)
        assert (cred.algorithm, cred.digits, cred.type) == (alg, digits, typ)
        assert cred.counter == (counter if typ is OtpType.HOTP else 0)


def _batch(index: int, size: int, batch_id: int, name: str) -> str:
    msg = Payload(version=1, batch_size=size, batch_index=index, batch_id=batch_id)
    msg.otp_parameters.add(secret=bytes(range(20)), name=name, algorithm=1, digits=1, type=2)
    return _uri(msg)


def test_multi_qr_batches_merge_in_order() -> None:
    parts = [decode_migration(_batch(i, 3, -5, f"acct{i}")) for i in (2, 0, 1)]
    assert [c.account for c in merge_batches(parts)] == ["acct0", "acct1", "acct2"]


def test_batch_missing_part_is_named() -> None:
    parts = [decode_migration(_batch(i, 3, 9, "a")) for i in (0, 2)]
    with pytest.raises(UriError, match=r"export QR code\(s\) 2 of 3 are missing"):
        merge_batches(parts)


def test_batches_of_different_exports_are_refused() -> None:
    with pytest.raises(UriError, match="different exports"):
        merge_batches(
            [decode_migration(_batch(0, 2, 1, "a")), decode_migration(_batch(1, 2, 2, "b"))]
        )


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("otpauth-migration://offline?data=XXXX", "payload is corrupt"),
        ("otpauth-migration://offline?data=!!!!", "data is not valid base64"),
        ("otpauth-migration://offline", "has no data parameter"),
        ("otpauth-migration://offline?data=", "holds no accounts"),
        (
            "QR-Code:otpauth-migration://offline?data=CjEKCkhlbGxvId6tvu8",
            "not an otpauth-migration URI",
        ),
    ],
    ids=["corrupt", "not base64", "no data", "empty data", "scanner prefix"],
)
def test_bad_payloads(uri: str, message: str) -> None:
    with pytest.raises(UriError, match=message):
        decode_migration(uri)


def test_md5_entry_is_refused_by_name() -> None:
    msg = Payload()
    msg.otp_parameters.add(secret=bytes(20), name="legacy", algorithm=4, digits=1, type=2)
    with pytest.raises(UriError, match=r"account 1 \(legacy\): MD5 is not supported"):
        decode_migration(_uri(msg))


def test_truncated_payload_is_corrupt_not_a_crash() -> None:
    raw = base64.b64decode("CjEKCkhlbGxvId6tvu8SGEV4YW1wbGU6YWxpY2VAZ29vZ2xlLmNvbRoHRXhhbXBsZTAC")
    for cut in range(1, len(raw)):
        data = quote(base64.b64encode(raw[:cut]).decode(), safe="")
        with pytest.raises(UriError):
            decode_migration(f"otpauth-migration://offline?data={data}")
