"""Classifying scanned payloads, and refusing Microsoft's push QR codes with advice."""

from __future__ import annotations

import pytest

from keyfob.errors import MicrosoftPushQrError, UnsupportedPayloadError
from keyfob.otp import PayloadKind, classify, parse_payload

PHONEFACTOR = [
    "phonefactor://activate_account?code=123456789&url=https%3A%2F%2Fsomething.phonefactor.net%2Fpad%2F987654321",
    "phonefactor://activate_account?code=NNNNNNNNN&url=https%3a%2f%2fmfaportal.example.com%2fMfaWsMobile%2f",
    "phonefactor://activate_account?code=694660881&url=https%3a%2f%2fmobileappcommunicator.auth.microsoft.com"
    "%2factivatev2%2f123456789%2fABCDEFGHIJKLMNOPQRST",
    "phonefactor://activate_account?code=694660881&url=https://mobileappcommunicator.auth.microsoft.com"
    "/activatev2/XXXXXXXXX/XXXXXXXXXXXXXXXXXXXX",
    "PHONEFACTOR://activate_account?code=1",
]
APP_LINKS = [
    "https://login.microsoftonline.com/authenticatorApp/activateAccount?source=qrCode&accountType=msa"
    "&code=M.C501_BAY.2.U.abcd&uaid=0123abcd",
    "https://login.microsoftonline.us/authenticatorapp/activateaccount?accountType=mfa&source=qrCode"
    "&code=demo&uaid=abc&expires=3971458484",
    "https://login.chinacloudapi.cn/AuthenticatorApp/ActivateAccount?code=demo",
]


@pytest.mark.parametrize(
    "payload",
    PHONEFACTOR,
    ids=["classic", "placeholder code", "activatev2 encoded", "activatev2 plain", "upper case"],
)
def test_phonefactor_is_recognised_and_refused(payload: str) -> None:
    assert classify(payload) is PayloadKind.MICROSOFT_PHONEFACTOR
    with pytest.raises(MicrosoftPushQrError) as err:
        parse_payload(payload)
    text = str(err.value)
    assert "holds no OTP secret" in text
    assert "I want to use a different authenticator app" in text
    assert "Configure app without notifications" in text


@pytest.mark.parametrize("payload", APP_LINKS, ids=["msa", "us government", "china"])
def test_app_link_is_recognised_and_refused(payload: str) -> None:
    assert classify(payload) is PayloadKind.MICROSOFT_APP_LINK
    with pytest.raises(MicrosoftPushQrError, match="different authenticator app"):
        parse_payload(payload)


def test_other_microsoft_urls_are_not_mistaken() -> None:
    assert (
        classify("https://login.microsoftonline.com/common/oauth2/authorize") is PayloadKind.UNKNOWN
    )
    assert classify("https://evil.example/authenticatorApp/activateAccount") is PayloadKind.UNKNOWN


def test_otpauth_and_migration() -> None:
    assert classify(" otpauth://totp/x?secret=JBSWY3DPEHPK3PXP\n") is PayloadKind.OTPAUTH
    assert classify("otpauth-migration://offline?data=x") is PayloadKind.MIGRATION
    assert len(parse_payload("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP")) == 1


@pytest.mark.parametrize(
    "payload",
    ["Lorem ipsum dolor sit amet", "https://example.com", "WIFI:S:x;;", ""],
    ids=["text", "web address", "wifi", "empty"],
)
def test_unknown_payloads(payload: str) -> None:
    assert classify(payload) is PayloadKind.UNKNOWN
    with pytest.raises(UnsupportedPayloadError, match="not an OTP QR code or URI"):
        parse_payload(payload)
