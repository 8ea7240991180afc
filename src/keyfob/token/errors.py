"""Typed token errors: each says what happened and what the person holding the token should do.

Which status word becomes which of these is decided in one table, ``session.SW_RULES``; the
parsers raise :class:`TlvError` and :class:`MalformedApdu`, whose messages name tags, offsets and
lengths but never the bytes of a value (a value may be a seed or a key).
"""

from __future__ import annotations

from keyfob.errors import KeyfobError


class TokenError(KeyfobError):
    code = "token_error"

    def __init__(self, message: str, *, hint: str | None = None, sw: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.sw = sw


class TransportLost(TokenError):
    """The link broke mid-command. Retryable: the command was not (fully) received."""

    code = "transport_lost"
    retryable = True

    def __init__(self, message: str = "the token left the reader") -> None:
        super().__init__(message, hint="token moved; nothing changed — hold it still and tap again")


class AuthenticationFailed(TokenError):
    code = "auth_failed"

    def __init__(
        self,
        message: str,
        *,
        tries_left: int | None = None,
        sw: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint, sw=sw)
        self.tries_left = tries_left


class NotAuthenticated(AuthenticationFailed):
    """The token answered 6983 to a command of a session that had authenticated: the token
    dropped the session (a new challenge, a power cycle), so it is the same status word as a
    refused key, told apart by what the client believed."""

    code = "not_authenticated"


class BadData(TokenError):
    code = "bad_data"


class TlvError(BadData):
    """Bytes that are not the TLV the protocol says: truncated, a length past the end, trailing
    bytes, an unexpected or repeated tag, a value of the wrong size."""

    code = "bad_tlv"

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(
            message,
            hint="the token and keyfob disagree on a field's layout (another firmware?); "
            "`keyfob token -v …` logs every APDU",
        )
        self.offset = offset


class MalformedApdu(TokenError):
    """A command APDU shorter than its own header or Lc says (the card answers 6700)."""

    code = "malformed_apdu"


class NotFound(TokenError):
    code = "not_found"


class NoSuchProfile(TokenError):
    code = "no_such_profile"


class CommandRejected(TokenError):
    """The token does not take the command as framed: wrong length, class, instruction, or an
    Le it does not allow. Usually the wrong family, or firmware keyfob does not know."""

    code = "command_rejected"


class UnknownModel(TokenError):
    code = "unknown_model"


class NeedsButton(TokenError):
    """Not an error as such: the Molto2 waits for ▲ to commit."""

    code = "needs_button"


class NoReader(TokenError):
    code = "no_reader"
