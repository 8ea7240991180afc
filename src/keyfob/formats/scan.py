"""What a user hands keyfob — a QR image path or the text of a URI — turned into credentials.

The CLI (``keyfob code``, ``keyfob uri inspect``) and the burner read their input the same way.
"""

from __future__ import annotations

from pathlib import Path

from keyfob.otp import Credential, parse_payload


def is_image_path(text: str) -> bool:
    """True when the text names an existing file (then it is read as a QR image)."""
    return "://" not in text and len(text) < 4096 and Path(text).is_file()


def payloads_from(text: str) -> list[str]:
    """An existing image file yields its QR payloads; anything else is the payload itself.

    The QR stack (zxing-cpp, Pillow, segno) loads only here: typed secrets and URIs, the common
    case, should not pay ~40 ms of imports for it."""
    if is_image_path(text):
        from keyfob.formats import qr

        return qr.decode_image(Path(text))
    return [text]


def credentials_from(text: str, *, allow_short: bool = False) -> list[Credential]:
    """All credentials in a URI, a migration URI or a QR image."""
    creds: list[Credential] = []
    for payload in payloads_from(text):
        creds.extend(parse_payload(payload, allow_short=allow_short))
    return creds
