"""otpauth:// parsing: every real-world deviation of docs/formats.md §3.3, and every malformed input."""

from __future__ import annotations

import pytest

from keyfob.errors import UriError
from keyfob.otp import Algorithm, Credential, OtpType, build_otpauth, parse_otpauth

HELLO = bytes.fromhex("48656c6c6f21deadbeef")
X = "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP"
NO_SECRET = "otpauth URI has no secret parameter"


def test_canonical_google_sample() -> None:
    c = parse_otpauth(
        "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"
    )
    assert (c.type, c.issuer, c.account, c.secret) == (
        OtpType.TOTP,
        "Example",
        "alice@google.com",
        HELLO,
    )
    assert (c.algorithm, c.digits, c.period, c.warnings) == (Algorithm.SHA1, 6, 30, ())


def test_all_parameters() -> None:
    c = parse_otpauth(
        "otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ"
        "&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30"
    )
    assert (c.issuer, c.account) == ("ACME Co", "john.doe@email.com")
    assert c.code(at=1_700_000_000) == "825131"


def test_encoded_colon_and_space_after_it() -> None:
    c = parse_otpauth(
        "otpauth://totp/Big%20Corporation%3A%20alice%40bigco.com?secret=JBSWY3DPEHPK3PXP"
    )
    assert (c.issuer, c.account) == ("Big Corporation", "alice@bigco.com")


# §3.3.1 lower-case base32 (Microsoft), §3.3.2 padding present, §3.3.3 missing, §3.3.4 spaces
@pytest.mark.parametrize(
    "secret",
    [
        "jbswy3dpehpk3pxp",
        "JBSWY3DPEHPK3PXP%3D%3D%3D",
        "JBSWY3DPEHPK3PXP===",
        "JBSW%20Y3DP%20EHPK%203PXP",
        "JBSW+Y3DP+EHPK+3PXP",
        "JBSW Y3DP EHPK 3PXP",
    ],
    ids=[
        "lower case",
        "padding, percent-encoded",
        "padding",
        "spaces as %20",
        "spaces as +",
        "spaces as they are",
    ],
)
def test_secret_deviations(secret: str) -> None:
    assert parse_otpauth(f"otpauth://totp/x?secret={secret}").secret == HELLO


def test_missing_padding_for_odd_lengths() -> None:
    key = bytes(range(12))
    c = parse_otpauth("otpauth://totp/x?secret=AAAQEAYEAUDAOCAJBIFQ")
    assert c.secret == key


def test_yubico_padded_short_secret_needs_opt_in() -> None:
    with pytest.raises(UriError, match="only 1 bytes"):
        parse_otpauth("otpauth://totp/x?secret=AA======")
    assert parse_otpauth("otpauth://totp/x?secret=AA======", allow_short=True).secret == b"\x00"


def test_microsoft_plus_in_label_is_a_space_and_parameter_issuer_wins() -> None:
    # §3.3.5: '+' in the path is a space, %2B a literal plus; issuer=Microsoft wins.
    c = parse_otpauth(
        "otpauth://totp/Test+Und%2BFirma%3Atest%40firma.onmicrosoft.com"
        "?secret=frjlnxsknymgykjx&issuer=Microsoft"
    )
    assert c.issuer == "Microsoft"
    assert c.account == "test@firma.onmicrosoft.com"
    assert c.warnings == ()
    assert c.notes == (
        "label prefix 'Test Und+Firma' is the organisation, as Microsoft writes its codes; "
        "the issuer is 'Microsoft'",
    )
    c2 = parse_otpauth(
        "otpauth://totp/Some+Company:me@somecompany.net?secret=JBSWY3DPEHPK3PXP&issuer=Microsoft"
    )
    assert (c2.issuer, c2.account) == ("Microsoft", "me@somecompany.net")


def test_raw_space_after_colon_ente_auth() -> None:
    c = parse_otpauth(
        "otpauth://totp/Cloudflare: user@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Cloudflare"
    )
    assert (c.issuer, c.account, c.warnings) == ("Cloudflare", "user@example.com", ())


def test_issuer_only_in_label_or_only_in_parameter() -> None:
    # §3.3.6
    assert parse_otpauth("otpauth://totp/GitHub:me?secret=JBSWY3DPEHPK3PXP").issuer == "GitHub"
    only_param = parse_otpauth("otpauth://totp/me?secret=JBSWY3DPEHPK3PXP&issuer=GitHub")
    assert (only_param.issuer, only_param.account) == ("GitHub", "me")


def test_plus_in_issuer_parameter_is_a_space() -> None:
    # Aegis plain.txt: issuer=Air+Canada next to Air%20Canada in the path.
    c = parse_otpauth(
        "otpauth://hotp/Air%20Canada:Benjamin?secret=KUVJJOM753IHTNDSZVCNKL7GII"
        "&issuer=Air+Canada&counter=50&digits=7&algorithm=SHA256"
    )
    assert (c.issuer, c.warnings) == ("Air Canada", ())
    assert c.code() == "4444976"


def test_freeotp_extra_parameters_are_kept() -> None:
    # §3.3.8
    uri = (
        "otpauth://hotp/Example:eve?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=0"
        "&image=https%3A%2F%2Ffreeotp.github.io%2Fimg%2Ffreeotp.svg&color=FF0000&lock=true"
    )
    c = parse_otpauth(uri)
    assert c.extra == (
        ("image", "https://freeotp.github.io/img/freeotp.svg"),
        ("color", "FF0000"),
        ("lock", "true"),
    )
    again = parse_otpauth(build_otpauth(c))
    assert again.extra == c.extra


def test_algorithm_case_and_misspelt_key() -> None:
    # §3.3.10: lower-case algorithm is fine; 'algo' is unknown, so the default stays.
    assert (
        parse_otpauth("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algorithm=sha256").algorithm
        is Algorithm.SHA256
    )
    c = parse_otpauth("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algo=SHA512")
    assert c.algorithm is Algorithm.SHA1
    assert c.extra == (("algo", "SHA512"),)


def test_utf8_label_round_trip() -> None:
    uri = "otpauth://totp/encoding%3A%20%C2%BF%C3%A4%C3%84%C3%A9%C3%89%3F%20%28demo%29?secret=7KSQL2JTUDIS5EF65KLMRQIIGY"
    c = parse_otpauth(uri)
    assert c.label == "encoding:¿äÄéÉ? (demo)"


def test_hotp_without_counter_defaults_to_zero_with_warning() -> None:
    c = parse_otpauth("otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP")
    assert c.counter == 0
    assert c.warnings == ("hotp URI without counter; starting at 0",)


def test_scheme_and_type_are_case_insensitive() -> None:
    assert parse_otpauth("OTPAUTH://TOTP/x?secret=JBSWY3DPEHPK3PXP").type is OtpType.TOTP


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        pytest.param(
            "otpauth://totp/x?secret=IAmShashank11111111",
            "otpauth URI: secret is not valid base32: character '1' at position 12",
            id="bad secret, named as the URI's",
        ),
        pytest.param("otpauth://totp/x?issuer=Foo", NO_SECRET, id="no secret"),
        pytest.param("otpauth://totp/x?secret=", NO_SECRET, id="empty secret"),
        pytest.param(f"{X}&digits=5", "unsupported number of digits 5", id="5 digits"),
        pytest.param(
            f"{X}&digits=eight", "bad digits: 'eight' is not a whole number", id="digits in words"
        ),
        pytest.param(f"{X}&period=0", "unsupported period 0", id="period 0"),
        pytest.param(f"{X}&period=-30", "unsupported period -30", id="negative period"),
        pytest.param(f"{X}&algorithm=MD5", "unsupported algorithm 'MD5'", id="md5"),
        pytest.param(
            "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=-1",
            "negative counter -1",
            id="negative counter",
        ),
        pytest.param(
            "otpauth://steam/Steam:me?secret=JBSWY3DPEHPK3PXP",
            "unsupported OTP type 'steam'",
            id="steam",
        ),
        pytest.param(
            "https://example.com/?secret=JBSWY3DPEHPK3PXP",
            "not an otpauth URI: scheme 'https'",
            id="https",
        ),
        pytest.param("otpauth-migration://offline?data=abc", "not an otpauth URI", id="migration"),
    ],
)
def test_malformed_uris(uri: str, message: str) -> None:
    with pytest.raises(UriError) as err:
        parse_otpauth(uri)
    assert message in str(err.value)


def test_build_is_canonical() -> None:
    cred = Credential(
        secret=HELLO,
        issuer="ACME Co",
        account="alice@acme.example",
        algorithm=Algorithm.SHA256,
        digits=8,
        period=60,
    )
    assert build_otpauth(cred) == (
        "otpauth://totp/ACME%20Co:alice@acme.example?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co"
        "&algorithm=SHA256&digits=8&period=60"
    )
    h = Credential(secret=HELLO, type=OtpType.HOTP, account="a b", counter=7)
    assert (
        build_otpauth(h)
        == "otpauth://hotp/a%20b?secret=JBSWY3DPEHPK3PXP&algorithm=SHA1&digits=6&counter=7"
    )
    assert parse_otpauth(build_otpauth(h)) == h
