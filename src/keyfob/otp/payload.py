"""Classify whatever a QR code or a paste contains, and refuse what carries no OTP secret.

Users scan the wrong QR code all the time: Microsoft's default "Microsoft Authenticator" QR is a
push-notification activation (``phonefactor://`` or a ``login.microsoftonline.com`` app link)
with no secret in it. We recognise those and say exactly which link to click instead.
"""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import urlsplit

from keyfob.errors import KeyfobError, MicrosoftPushQrError, UnsupportedPayloadError
from keyfob.otp.credential import Credential
from keyfob.otp.migration import decode_migration
from keyfob.otp.uri import parse_otpauth

MICROSOFT_ADVICE = (
    "This is a Microsoft Authenticator push-notification QR code: it holds no OTP secret, only "
    "an activation code for Microsoft's own app, so no hardware token or other app can use it. "
    'On the Microsoft page, choose "I want to use a different authenticator app" (security '
    'info) or "Configure app without notifications" (older MFA pages) to get a standard TOTP '
    "QR code, and scan that one."
)

_MS_HOSTS = (
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.live.com",
    "account.live.com",
)


class PayloadKind(StrEnum):
    """What a scanned payload is."""

    OTPAUTH = "otpauth"
    MIGRATION = "otpauth-migration"
    MICROSOFT_PHONEFACTOR = "microsoft-phonefactor"
    MICROSOFT_APP_LINK = "microsoft-app-link"
    UNKNOWN = "unknown"


def classify(payload: str) -> PayloadKind:
    """Name the kind of a payload without parsing it fully."""
    text = payload.strip()
    lower = text.lower()
    if lower.startswith("otpauth://"):
        return PayloadKind.OTPAUTH
    if lower.startswith("otpauth-migration://"):
        return PayloadKind.MIGRATION
    if lower.startswith("phonefactor://"):
        return PayloadKind.MICROSOFT_PHONEFACTOR
    if lower.startswith(("https://", "http://", "msauth://", "msauthv2://")):
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        path = parts.path.lower()
        if "/authenticatorapp/activateaccount" in path and (
            host in _MS_HOSTS or host.endswith(".microsoftonline.com")
        ):
            return PayloadKind.MICROSOFT_APP_LINK
        if host.endswith("phonefactor.net") or host == "mobileappcommunicator.auth.microsoft.com":
            return PayloadKind.MICROSOFT_PHONEFACTOR
    return PayloadKind.UNKNOWN


def parse_payload(payload: str, *, allow_short: bool = False) -> list[Credential]:
    """Every credential in a payload, or a clear refusal of what is not one."""
    kind = classify(payload)
    if kind is PayloadKind.OTPAUTH:
        return [parse_otpauth(payload, allow_short=allow_short)]
    if kind is PayloadKind.MIGRATION:
        return list(decode_migration(payload).credentials)
    if kind in (PayloadKind.MICROSOFT_PHONEFACTOR, PayloadKind.MICROSOFT_APP_LINK):
        raise MicrosoftPushQrError(MICROSOFT_ADVICE)
    shown = payload.strip()
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    raise UnsupportedPayloadError(
        f"not an OTP QR code or URI: {shown!r}",
        hint="expected otpauth://totp/…, otpauth://hotp/… or otpauth-migration://…",
    )


def pick_credential(creds: list[Credential], account: str | None) -> Credential:
    """One credential: the only one, or the one whose label contains ``account``."""
    labels = ", ".join(repr(c.label) for c in creds)
    if account:
        chosen = [c for c in creds if account.lower() in c.label.lower()]
        if len(chosen) != 1:
            raise KeyfobError(
                f"{len(chosen)} accounts match {account!r}", hint=f"the payload holds: {labels}"
            )
        return chosen[0]
    if len(creds) > 1:
        raise KeyfobError(
            f"the payload holds {len(creds)} accounts: {labels}",
            hint="choose one with --account NAME",
        )
    return creds[0]
