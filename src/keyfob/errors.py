"""The one exception family every keyfob layer raises for bad input.

It sits below every other module (it imports nothing), so that the CLI, the server and the burner
can all turn any keyfob failure into the same shape: *what* was wrong, and *what to do* about it.
A ``KeyfobError`` message never contains a secret or a code: callers pass positions and
character names, never the value itself.

The whole family, with when each is raised and what it becomes as ``[HTTP status | CLI exit]``
(the CLI prints ``keyfob: error: <message> — <hint>`` and exits 1; the server answers a
``ServiceError``'s own status and 400 for any other; ``—``: not raised while serving a request).
Only the first seven live here; ARCHITECTURE.md ("Errors") says where the others do::

    KeyfobError ·················· bad input; raised as is for bad OTP parameters       [400 | 1]
    ├── SecretError ·············· not base32/hex (char + position), empty, < 80 bits   [— | 1]
    ├── UriError ················· bad otpauth(-migration) URI; export QR code missing  [— | 1]
    ├── UnsupportedPayloadError ·· scanned text that is no OTP credential               [— | 1]
    │   └── MicrosoftPushQrError · Microsoft push QR (no secret): what to click instead [— | 1]
    ├── QrDecodeError ············ an image unreadable, or holding no QR code           [— | 1]
    ├── SeedFileError ············ seed file unusable as a whole (empty, DTD, no key)   [400 | 1]
    ├── SettingsError ············ a server setting that cannot work                    [— | 1]
    ├── DatabaseError ············ database URL unusable; cannot open or migrate it     [— | 1]
    ├── MasterKeyError ··········· bad or missing master key; a secret that won't open  [400 | 1]
    ├── ServiceError ············· a service refuses its input (name, role, serial…)    [400 | 1]
    │   ├── Unauthorized ········· no or invalid API key (WWW-Authenticate)             [401 | 1]
    │   ├── Forbidden ············ wrong role; Basic auth on another user's methods     [403 | 1]
    │   ├── NotFound ············· no such user, method or token                        [404 | 1]
    │   ├── Conflict ············· exists already; assigned elsewhere; method limit     [409 | 1]
    │   ├── Gone ················· a pending enrolment expired                          [410 | 1]
    │   ├── CodeRejected ········· enrolment / assignment / resync code not accepted    [422 | 1]
    │   ├── _ImportFailed ········ import with row errors; the body adds the report     [422 | —]
    │   └── TooManyAttempts ······ sign-in / password rate limit (Retry-After)          [429 | 1]
    │       └── TooManyClaims ···· too many failed self-assignments (Retry-After)       [429 | 1]
    ├── TokenError ··············· other status word; bad reply; emulator control       [— | 1]
    │   ├── TransportLost ········ link broke mid-command; retryable (burner: 3 times)  [— | 1]
    │   ├── AuthenticationFailed · 69 83 to the key; 63 NN wrong Molto2 key             [— | 1]
    │   │   └── NotAuthenticated · 69 83 to an authenticated session: expired           [— | 1]
    │   ├── BadData ·············· 6A 80: the token rejected the data                   [— | 1]
    │   │   └── TlvError ········· bytes that are not the TLV the protocol says         [— | 1]
    │   ├── MalformedApdu ········ APDU shorter than header or Lc (card: 67 00)         [— | 1]
    │   ├── NotFound ············· 6A 83: nothing stored there (empty profile)          [— | 1]
    │   ├── NoSuchProfile ········ 6A 86: no such profile                               [— | 1]
    │   ├── CommandRejected ······ 67 00, 6F FB, 6D 00, 6E 00: not as framed            [— | 1]
    │   │   └── NotSupported ····· 6D 00 to the screen lock: before Molto2 v2.1         [— | 1]
    │   ├── UnknownModel ········· serial outside the model table                       [— | 1]
    │   ├── NeedsButton ·········· 90 60: the Molto2 waits for its ▲ button             [— | 1]
    │   └── NoReader ············· pyscard/pcscd missing; no reader; no token           [— | 1]
    ├── BurnRefused ·············· credential cannot go into this token; nothing sent   [— | 1]
    ├── ReaderUnavailable ········ PC/SC missing: waiting for a token cannot help       [— | 1]
    ├── BurnFailed ··············· token touched, not (known to be) burned              [— | 1]
    │   ├── TokenKeptLeaving ····· the link broke on every attempt; nothing changed     [— | 1]
    │   ├── SeedErased ··········· restricted sync: clock written, seed never came      [— | 1]
    │   ├── TokenSwapped ········· another serial answered mid-burn                     [— | 1]
    │   ├── CodeMismatch ········· the code typed is not the burned secret's            [— | 1]
    │   └── NoCodeTyped ·········· no one can type the code (no terminal, no stdin)     [— | 1]
    ├── EnrollError ·············· the keyfob server refused, or is unreachable         [— | 1]
    ├── BatchError ··············· a burn batch cannot go on                            [— | 1]
    │   ├── UsersFileError ······· the users file names no one, or one user twice       [— | 1]
    │   └── NoNewToken ··········· no new token came to the reader in time              [— | 1]
    ├── JournalError ············· the batch journal is damaged or does not open        [— | 1]
    └── SyncRefused ·············· a clock sync that would erase the seed               [— | 1]
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
