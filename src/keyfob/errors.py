"""The one exception family every keyfob layer raises for bad input.

It sits below every other module (it imports nothing), so that the CLI, the server and the burner
can all turn any keyfob failure into the same shape: *what* was wrong, and *what to do* about it.
A ``KeyfobError`` message never contains a secret or a code: callers pass positions and
character names, never the value itself.
"""

from __future__ import annotations


class KeyfobError(Exception):
    """A failure the user can act on; ``str(err)`` is one line, ``hint`` says what to do."""

    code: str = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} — {self.hint}"
        return self.message


class SecretError(KeyfobError):
    """A shared secret could not be parsed or is too weak."""

    code = "bad_secret"


class UriError(KeyfobError):
    """An ``otpauth://`` or ``otpauth-migration://`` URI is malformed."""

    code = "bad_uri"


class UnsupportedPayloadError(KeyfobError):
    """A scanned payload is not an OTP credential keyfob can use."""

    code = "unsupported_payload"


class MicrosoftPushQrError(UnsupportedPayloadError):
    """A Microsoft Authenticator push-activation QR code: it carries no OTP secret at all."""

    code = "microsoft_push_qr"


class QrDecodeError(KeyfobError):
    """An image could not be read, or holds no QR code."""

    code = "qr_not_found"


class SeedFileError(KeyfobError):
    """A seed file (PSKC, CSV, URI list) is malformed; ``where`` names the line or key."""

    code = "bad_seed_file"

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.where = where
