"""RFC 4226 Appendix D and RFC 6238 Appendix B, every published value (docs/formats.md §1)."""

from __future__ import annotations

import hmac

import pytest

from keyfob.otp import Algorithm, hotp, parse_secret, totp
from keyfob.otp.hotp import hotp_int

RFC4226_SECRET = b"12345678901234567890"
# count: (HMAC-SHA-1, truncated decimal, 6 digits, 7 digits, 8 digits)
RFC4226 = {
    0: ("cc93cf18508d94934c64b65d8ba7667fb7cde4b0", 1284755224, "755224", "4755224", "84755224"),
    1: ("75a48a19d4cbe100644e8ac1397eea747a2d33ab", 1094287082, "287082", "4287082", "94287082"),
    2: ("0bacb7fa082fef30782211938bc1c5e70416ff44", 137359152, "359152", "7359152", "37359152"),
    3: ("66c28227d03a2d5529262ff016a1e6ef76557ece", 1726969429, "969429", "6969429", "26969429"),
    4: ("a904c900a64b35909874b33e61c5938a8e15ed1c", 1640338314, "338314", "0338314", "40338314"),
    5: ("a37e783d7b7233c083d4f62926c7a25f238d0316", 868254676, "254676", "8254676", "68254676"),
    6: ("bc9cd28561042c83f219324d3c607256c03272ae", 1918287922, "287922", "8287922", "18287922"),
    7: ("a4fb960c0bc06e1eabb804e5b397cdc4b45596fa", 82162583, "162583", "2162583", "82162583"),
    8: ("1b3c89f65e6c9e883012052823443f048b4332db", 673399871, "399871", "3399871", "73399871"),
    9: ("1637409809a679dc698207310c8c7fc07290d9e5", 645520489, "520489", "5520489", "45520489"),
}


@pytest.mark.parametrize("count", sorted(RFC4226), ids=lambda count: f"count {count}")
def test_rfc4226_appendix_d(count: int) -> None:
    mac, truncated, six, seven, eight = RFC4226[count]
    assert hmac.new(RFC4226_SECRET, count.to_bytes(8, "big"), "sha1").hexdigest() == mac
    assert hotp_int(RFC4226_SECRET, count) == truncated
    assert hotp(RFC4226_SECRET, count) == six
    assert hotp(RFC4226_SECRET, count, digits=7) == seven
    assert hotp(RFC4226_SECRET, count, digits=8) == eight


SEEDS = {
    Algorithm.SHA1: b"12345678901234567890",
    Algorithm.SHA256: b"12345678901234567890123456789012",
    Algorithm.SHA512: b"1234567890" * 6 + b"1234",
}
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]
# What a verifier computes if it wrongly uses the 20-byte seed for every hash (RFC errata).
WRONG_20_BYTE_SEED = [
    (59, "32247374", "69342147"),
    (1111111109, "34756375", "63049338"),
    (1111111111, "74584430", "54380122"),
    (1234567890, "42829826", "76671578"),
    (2000000000, "78428693", "56464532"),
    (20000000000, "24142410", "69481994"),
]


@pytest.mark.parametrize(
    ("t", "sha1", "sha256", "sha512"), RFC6238, ids=[f"T={row[0]}" for row in RFC6238]
)
def test_rfc6238_appendix_b(t: int, sha1: str, sha256: str, sha512: str) -> None:
    for algorithm, want in zip(SEEDS, (sha1, sha256, sha512), strict=True):
        assert totp(SEEDS[algorithm], t, digits=8, algorithm=algorithm) == want


@pytest.mark.parametrize(
    ("t", "wrong256", "wrong512"), WRONG_20_BYTE_SEED, ids=[f"T={r[0]}" for r in WRONG_20_BYTE_SEED]
)
def test_rfc6238_known_wrong_values_are_not_produced(t: int, wrong256: str, wrong512: str) -> None:
    right256 = totp(SEEDS[Algorithm.SHA256], t, digits=8, algorithm=Algorithm.SHA256)
    right512 = totp(SEEDS[Algorithm.SHA512], t, digits=8, algorithm=Algorithm.SHA512)
    assert right256 != wrong256
    assert right512 != wrong512
    # ...and they are exactly what the 20-byte seed gives, so the table is the erratum itself.
    short = SEEDS[Algorithm.SHA1]
    assert totp(short, t, digits=8, algorithm=Algorithm.SHA256) == wrong256
    assert totp(short, t, digits=8, algorithm=Algorithm.SHA512) == wrong512


def test_rfc6238_seeds_in_base32() -> None:
    assert parse_secret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ") == SEEDS[Algorithm.SHA1]
    b32_256 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA"
    assert parse_secret(b32_256) == SEEDS[Algorithm.SHA256]
    assert parse_secret(b32_256 + "====") == SEEDS[Algorithm.SHA256]
    assert parse_secret("GEZDGNBVGY3TQOJQ" * 6 + "GEZDGNA=") == SEEDS[Algorithm.SHA512]


# docs/formats.md §1.4: public sample secrets, cross-checked with oathtool by the doc's authors.
EXTRA_TOTP = [
    ("JBSWY3DPEHPK3PXP", Algorithm.SHA1, 6, 30, 0, "282760"),
    ("JBSWY3DPEHPK3PXP", Algorithm.SHA1, 6, 30, 1234567890, "742275"),
    ("JBSWY3DPEHPK3PXP", Algorithm.SHA1, 6, 30, 1700000000, "324550"),
    ("7KSQL2JTUDIS5EF65KLMRQIIGY", Algorithm.SHA1, 6, 30, 1700000000, "056725"),
    ("HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ", Algorithm.SHA1, 6, 30, 1700000000, "825131"),
    ("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", Algorithm.SHA1, 6, 60, 1700000000, "895298"),
    ("5OM4WOOGPLQEF6UGN3CPEOOLWU", Algorithm.SHA256, 7, 20, 1700000000, "9993814"),
    ("7ELGJSGXNCCTV3O6LKJWYFV2RA", Algorithm.SHA512, 8, 50, 1700000000, "65516786"),
    ("4SJHB4GSD43FZBAI7C2HLRJGPQ", Algorithm.SHA1, 6, 30, 1700000000, "790195"),
]
EXTRA_HOTP = [
    ("7KSQL2JTUDIS5EF65KLMRQIIGY", Algorithm.SHA1, 6, 4, "058438"),
    ("JBSWY3DPEHPK3PXP", Algorithm.SHA1, 6, 7, "449891"),
    ("YOOMIXWS5GN6RTBPUFFWKTW5M4", Algorithm.SHA1, 6, 1, "253717"),
    ("KUVJJOM753IHTNDSZVCNKL7GII", Algorithm.SHA256, 7, 50, "4444976"),
    ("5VAML3X35THCEBVRLV24CGBKOY", Algorithm.SHA512, 8, 10300, "24622277"),
]


@pytest.mark.parametrize(
    ("secret", "alg", "digits", "period", "t", "want"),
    EXTRA_TOTP,
    ids=[f"{s[:8]} {a.value} {d} digits {p} s at {t}" for s, a, d, p, t, _ in EXTRA_TOTP],
)
def test_public_sample_totp(
    secret: str, alg: Algorithm, digits: int, period: int, t: int, want: str
) -> None:
    key = parse_secret(secret, allow_short=True)
    assert totp(key, t, digits=digits, algorithm=alg, period=period) == want


@pytest.mark.parametrize(
    ("secret", "alg", "digits", "counter", "want"),
    EXTRA_HOTP,
    ids=[f"{s[:8]} {a.value} {d} digits counter {c}" for s, a, d, c, _ in EXTRA_HOTP],
)
def test_public_sample_hotp(
    secret: str, alg: Algorithm, digits: int, counter: int, want: str
) -> None:
    assert hotp(parse_secret(secret, allow_short=True), counter, digits, alg) == want


def test_hex_to_base32_conversion_check() -> None:
    from keyfob.otp import to_base32

    key = parse_secret("1669EBDCC7108C272FD876ED6E7F562583BE16A9", "hex")
    assert to_base32(key) == "CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ"


def test_t0_is_subtracted() -> None:
    # oathtool -S "1970-01-01 00:00:30 UTC" -N @59 gives T=0 (755224).
    assert totp(RFC4226_SECRET, 59, t0=30) == "755224"


def test_totp_step_boundaries() -> None:
    assert totp(RFC4226_SECRET, 29.999) == hotp(RFC4226_SECRET, 0)
    assert totp(RFC4226_SECRET, 30) == hotp(RFC4226_SECRET, 1)
