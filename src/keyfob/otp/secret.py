"""Shared secrets: generate them, and read them leniently from what people actually paste.

Real secrets arrive in lower case (Microsoft), grouped in fours with spaces or dashes (Google,
GitLab, Amazon manual keys), with or without ``=`` padding, or as hex (vendor seed files,
oathtool). Anything else gets an error that names the offending character and its position,
never the secret itself.
"""

from __future__ import annotations

import base64
import binascii
import secrets as _secrets
import string
from enum import StrEnum

from keyfob.errors import SecretError
from keyfob.otp.hotp import Algorithm

MIN_SECRET_BYTES = 10
"""Shortest secret accepted without opt-in: 80 bits, the shortest widely deployed (Microsoft's
16-character keys). RFC 4226 §4 asks for 128 bits; shorter ones need ``allow_short``."""

_B32_ALPHABET = frozenset(string.ascii_uppercase + "234567")
_HEX_ALPHABET = frozenset(string.hexdigits)
_SEPARATORS = frozenset(" \t\r\n-")
_VALID_B32_REMAINDERS = {0, 2, 4, 5, 7}


class SecretEncoding(StrEnum):
    """How a typed secret is written. ``AUTO`` picks base32 unless the text can only be hex."""

    AUTO = "auto"
    BASE32 = "base32"
    HEX = "hex"


def generate_secret(algorithm: Algorithm = Algorithm.SHA1, length: int | None = None) -> bytes:
    """A fresh random secret from the OS CSPRNG, as long as the hash output by default."""
    return _secrets.token_bytes(length or algorithm.default_secret_length)


def to_base32(secret: bytes) -> str:
    """Unpadded upper-case base32, as ``otpauth://`` URIs and authenticator apps expect."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def group_key(secret: bytes, size: int = 4) -> str:
    """Base32 in groups of four for manual entry (``ABCD EFGH …``), as Google and Entra show it."""
    key = to_base32(secret)
    return " ".join(key[i : i + size] for i in range(0, len(key), size))


def _describe(ch: str) -> str:
    if ch.isprintable() and not ch.isspace():
        return repr(ch)
    return f"U+{ord(ch):04X}"


def _strip(text: str) -> list[tuple[int, str]]:
    """Characters that matter with their 1-based positions in the original text."""
    return [(i + 1, ch) for i, ch in enumerate(text) if ch not in _SEPARATORS]


def _decode_base32(chars: list[tuple[int, str]], original: str) -> bytes:
    body = [(pos, ch.upper()) for pos, ch in chars]
    # Padding may be present ('=' or '%3D' already unquoted by the URI layer) or missing.
    while body and body[-1][1] == "=":
        body.pop()
    for pos, ch in body:
        if ch not in _B32_ALPHABET:
            extra = ""
            if ch in "0189":
                extra = " (base32 uses only A-Z and 2-7; 0, 1, 8 and 9 never occur in it)"
            raise SecretError(
                f"secret is not valid base32: character {_describe(original[pos - 1])} "
                f"at position {pos}{extra}",
                hint="check for a mistyped letter, or give the seed as hex",
            )
    text = "".join(ch for _, ch in body)
    if len(text) % 8 not in _VALID_B32_REMAINDERS:
        raise SecretError(
            f"secret is not valid base32: {len(text)} characters cannot encode whole bytes",
            hint="a character is probably missing or extra; copy the key again",
        )
    padded = text + "=" * (-len(text) % 8)
    return base64.b32decode(padded)


def _decode_hex(chars: list[tuple[int, str]], original: str) -> bytes:
    text = "".join(ch for _, ch in chars)
    if text[:2].lower() == "0x":
        chars = chars[2:]
        text = text[2:]
    for pos, ch in chars:
        if ch not in _HEX_ALPHABET:
            raise SecretError(
                f"secret is not valid hex: character {_describe(original[pos - 1])} "
                f"at position {pos}",
                hint="hex seeds use only 0-9 and a-f",
            )
    if len(text) % 2:
        raise SecretError(
            f"secret is not valid hex: odd number of digits ({len(text)})",
            hint="each byte takes two hex digits; a digit is missing or extra",
        )
    return binascii.unhexlify(text)


def parse_secret(
    text: str,
    encoding: SecretEncoding | str = SecretEncoding.AUTO,
    *,
    allow_short: bool = False,
) -> bytes:
    """Decode a typed or scanned secret into bytes.

    ``AUTO`` reads base32 (the format of every QR code and manual key) and falls back to hex
    only when the text is valid hex and *not* valid base32 (it contains 0, 1, 8 or 9), so a
    hex seed from a vendor file is never misread. A ``hex:``/``0x`` or ``base32:`` prefix forces
    the choice.
    """
    encoding = SecretEncoding(encoding)
    original = text
    lowered = text.strip().lower()
    if lowered.startswith("hex:"):
        encoding, text = SecretEncoding.HEX, text.strip()[4:]
        original = text
    elif lowered.startswith("base32:"):
        encoding, text = SecretEncoding.BASE32, text.strip()[7:]
        original = text
    elif lowered.startswith("0x") and encoding is SecretEncoding.AUTO:
        encoding = SecretEncoding.HEX
    chars = _strip(text)
    if not chars:
        raise SecretError("secret is empty", hint="give the key as base32 (or hex)")
    if encoding is SecretEncoding.HEX:
        secret = _decode_hex(chars, original)
    elif encoding is SecretEncoding.BASE32:
        secret = _decode_base32(chars, original)
    else:
        try:
            secret = _decode_base32(chars, original)
        except SecretError as b32_error:
            try:
                secret = _decode_hex(chars, original)
            except SecretError:
                raise b32_error from None
    return check_secret_length(secret, allow_short=allow_short)


def check_secret_length(secret: bytes, *, allow_short: bool = False) -> bytes:
    """Refuse empty secrets always, and secrets under 80 bits unless the caller opts in."""
    if not secret:
        raise SecretError("secret is empty", hint="give the key as base32 (or hex)")
    if len(secret) < MIN_SECRET_BYTES and not allow_short:
        raise SecretError(
            f"secret is only {len(secret)} bytes ({len(secret) * 8} bits); "
            f"at least {MIN_SECRET_BYTES} bytes are required",
            hint="RFC 4226 asks for 128 bits; pass --allow-short to accept it anyway",
        )
    return secret
