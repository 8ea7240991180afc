"""What to burn: a credential from a QR screenshot, a URI or a typed seed, checked against what
the target token can hold — all before a single APDU is sent."""

from __future__ import annotations

from keyfob.burn.errors import BurnRefused
from keyfob.errors import KeyfobError
from keyfob.formats.scan import credentials_from as scan_credentials
from keyfob.otp import Algorithm, Credential, OtpType, parse_secret, pick_credential
from keyfob.token.models import Family
from keyfob.token.protocol import DIGIT_VALUES, MAX_SEED

MIN_SEED = 10


def credential_from(
    source: str | None,
    *,
    seed: str | None = None,
    algorithm: str | None = None,
    period: int | None = None,
    digits: int | None = None,
    account: str | None = None,
    allow_short: bool = False,
) -> Credential:
    """From an image file, an ``otpauth://``/migration URI, or ``--seed`` (base32 or hex)."""
    if seed is not None:
        if source:
            raise BurnRefused("give either a SOURCE or --seed, not both")
        cred = Credential(secret=parse_secret(seed, allow_short=True))
    elif not source:
        raise BurnRefused("nothing to burn", hint="give a QR image, an otpauth:// URI, - or --seed")
    else:
        creds = scan_credentials(source.strip(), allow_short=True)
        try:
            cred = pick_credential(creds, account)
        except KeyfobError as exc:  # several accounts, or none matching --account
            raise BurnRefused(exc.message, hint=exc.hint) from None
    cred = cred.with_overrides(algorithm=algorithm, digits=digits, period=period)
    if len(cred.secret) < MIN_SEED and not allow_short:
        raise BurnRefused(
            f"the secret is only {len(cred.secret)} bytes ({len(cred.secret) * 8} bits)",
            hint="RFC 4226 asks for at least 128 bits; pass --allow-short to burn it anyway",
        )
    return cred


def check_fits(cred: Credential, family: Family) -> None:
    """Refuse, with the reason, what the token cannot hold (docs/token-protocol.md §4.3, §5.2)."""
    if cred.type is not OtpType.TOTP:
        raise BurnRefused(
            "this is an HOTP (counter-based) credential",
            hint="programmable tokens make time-based (TOTP) codes only",
        )
    if cred.algorithm is Algorithm.SHA512:
        raise BurnRefused(
            "SHA512 is not supported by programmable tokens",
            hint="they compute SHA1 or SHA256 codes only; ask the service for a SHA1 QR code",
        )
    if cred.period not in (30, 60):
        raise BurnRefused(
            f"a {cred.period}-second period is not supported",
            hint="programmable tokens step every 30 or 60 seconds",
        )
    if len(cred.secret) > MAX_SEED:
        raise BurnRefused(f"the secret is {len(cred.secret)} bytes; tokens hold at most {MAX_SEED}")
    if family is Family.SINGLE and cred.digits != 6:
        raise BurnRefused(
            f"{cred.digits}-digit codes are not supported by single-profile tokens",
            hint="they always show 6 digits; a Molto2 (--profile N) shows 4, 6, 8 or 10",
        )
    if family is Family.MOLTO2 and cred.digits not in DIGIT_VALUES:
        raise BurnRefused(
            f"{cred.digits}-digit codes are not supported by the Molto2",
            hint="it shows 4, 6, 8 or 10 digits",
        )
