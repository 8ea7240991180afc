"""URIs and codes against pyotp, a second independent implementation."""

from __future__ import annotations

import pyotp
from hypothesis import given, settings
from hypothesis import strategies as st

from keyfob.otp import Algorithm, Credential, OtpType, build_otpauth, parse_otpauth, to_base32

NAMES = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=":"),
        min_size=1,
        max_size=20,
    )
    .map(str.strip)
    .filter(bool)
)


@settings(max_examples=200, deadline=None)
@given(
    secret=st.binary(min_size=14, max_size=64),  # pyotp refuses < 112 bits
    issuer=NAMES,
    account=NAMES,
    algorithm=st.sampled_from(list(Algorithm)),
    digits=st.sampled_from([6, 7, 8]),
    period=st.sampled_from([30, 60]),
    t=st.integers(min_value=0, max_value=2**33),
)
def test_pyotp_reads_our_uris(secret, issuer, account, algorithm, digits, period, t) -> None:
    cred = Credential(
        secret=secret,
        issuer=issuer,
        account=account,
        algorithm=algorithm,
        digits=digits,
        period=period,
    )
    theirs = pyotp.parse_uri(build_otpauth(cred))
    assert theirs.issuer == issuer
    assert theirs.name == account
    assert theirs.digits == digits
    assert theirs.at(t) == cred.code(at=t)
    assert parse_otpauth(build_otpauth(cred)) == cred


@settings(max_examples=100, deadline=None)
@given(
    secret=st.binary(min_size=14, max_size=40),
    issuer=NAMES,
    account=NAMES,
    counter=st.integers(min_value=0, max_value=2**32),
)
def test_we_read_pyotp_uris(secret, issuer, account, counter) -> None:
    key = to_base32(secret)
    totp_uri = pyotp.TOTP(key).provisioning_uri(name=account, issuer_name=issuer)
    ours = parse_otpauth(totp_uri)
    assert (ours.issuer, ours.account, ours.secret) == (issuer, account, secret)
    assert ours.code(at=1_700_000_000) == pyotp.TOTP(key).at(1_700_000_000)
    hotp_uri = pyotp.HOTP(key).provisioning_uri(
        name=account, issuer_name=issuer, initial_count=counter
    )
    h = parse_otpauth(hotp_uri)
    assert h.type is OtpType.HOTP
    assert h.counter == counter
    assert h.code() == pyotp.HOTP(key).at(counter)
