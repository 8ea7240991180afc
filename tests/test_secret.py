"""Secret parsing: lenient where real keys vary, precise where they are wrong."""

from __future__ import annotations

import pytest

from keyfob.errors import SecretError
from keyfob.otp import Algorithm, generate_secret, group_key, parse_secret, to_base32

HELLO = bytes.fromhex("48656c6c6f21deadbeef")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("JBSWY3DPEHPK3PXP", id="base32"),
        pytest.param("jbswy3dpehpk3pxp", id="lower case (Microsoft)"),
        pytest.param("JBSW Y3DP EHPK 3PXP", id="grouped by four (manual keys)"),
        pytest.param("jbsw-y3dp-ehpk-3pxp", id="grouped with dashes"),
        pytest.param("  JBSWY3DPEHPK3PXP\n", id="blanks around"),
        # this length needs no padding, but some generators add it
        pytest.param("JBSWY3DPEHPK3PXP====", id="padded"),
        pytest.param("base32:JBSWY3DPEHPK3PXP", id="base32: prefix"),
        pytest.param("48656c6c6f21deadbeef", id="hex (digits 1 and 8: not base32)"),
        pytest.param("hex:48656C6C6F21DEADBEEF", id="hex: prefix"),
        pytest.param("0x48656c6c6f21deadbeef", id="0x prefix"),
    ],
)
def test_lenient_forms(text: str) -> None:
    assert parse_secret(text) == HELLO


def test_missing_padding_is_restored() -> None:
    # andOTP #600: a 20-character secret for a 12-byte key.
    key = bytes(range(1, 13))
    assert parse_secret(to_base32(key)) == key
    assert len(to_base32(key)) == 20


def test_auto_prefers_base32_for_text_valid_in_both() -> None:
    # "ABCDEF234567ABCDEF23" is valid hex and valid base32: base32 wins (QR codes use it).
    assert parse_secret("ABCDEFABCDEFABCDEFAB") == parse_secret("ABCDEFABCDEFABCDEFAB", "base32")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("IAmShashank11111111", "secret is not valid base32: character '1' at position 12"),
        ("JBSWY3DPEHPK3PX!", "character '!' at position 16"),
        ("JBSW Y3DP EHPK 3PX0", "character '0' at position 19 (base32 uses only A-Z and 2-7"),
        ("", "secret is empty"),
        ("   ", "secret is empty"),
        ("JBSWY3DPEHPK3PXPA", "17 characters cannot encode whole bytes"),
        ("JBSWY3DPEHPK", "secret is only 7 bytes (56 bits); at least 10 bytes are required"),
        ("hex:48656c6c6f21deadbee", "odd number of digits (19)"),
        ("hex:48656c6c6f21deadbeeg", "secret is not valid hex: character 'g' at position 20"),
    ],
    ids=[
        "digit 1 in base32",
        "punctuation",
        "position counts the spaces",
        "empty",
        "blanks only",
        "impossible length",
        "under 80 bits",
        "odd hex",
        "not hex",
    ],
)
def test_errors_name_what_and_where(text: str, message: str) -> None:
    with pytest.raises(SecretError) as err:
        parse_secret(text)
    assert message in str(err.value)
    assert err.value.hint


def test_error_never_echoes_the_secret() -> None:
    with pytest.raises(SecretError) as err:
        parse_secret("SUPERSECRETKEYVALUE9")
    assert "SUPERSECRET" not in str(err.value)


def test_short_secrets_need_opt_in() -> None:
    assert parse_secret("JBSWY3DP", allow_short=True) == b"Hello"
    with pytest.raises(SecretError, match="--allow-short"):
        parse_secret("JBSWY3DP")


def test_generated_secrets() -> None:
    assert len(generate_secret()) == 20
    assert len(generate_secret(Algorithm.SHA256)) == 32
    assert len(generate_secret(Algorithm.SHA512)) == 64
    assert generate_secret() != generate_secret()


def test_group_key() -> None:
    assert group_key(HELLO) == "JBSW Y3DP EHPK 3PXP"
    assert parse_secret(group_key(bytes(range(20)))) == bytes(range(20))
