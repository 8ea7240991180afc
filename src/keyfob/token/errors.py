"""Typed token errors: each says what happened and what the person holding the token should do.

Which status word becomes which of these is decided in one table, ``session.SW_RULES``; the
parsers raise :class:`TlvError` and :class:`MalformedApdu`, whose messages name tags, offsets and
lengths but never the bytes of a value (a value may be a seed or a key).
"""

from __future__ import annotations

import re
from typing import Any

from keyfob.errors import KeyfobError


class TokenError(KeyfobError):
    """A class's ``code`` is its name in snake case (``NoSuchProfile`` → ``no_such_profile``)
    unless it sets its own, so the name and the code cannot tell different stories."""

    code = "token_error"

    def __init__(self, message: str, *, hint: str | None = None, sw: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.sw = sw

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            cls.code = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


class TransportLost(TokenError):
    """The link broke mid-command. Retryable: the command was not (fully) received."""

    retryable = True

    def __init__(self, message: str = "the token left the reader") -> None:
        super().__init__(message, hint="token moved; nothing changed — hold it still and tap again")


class AuthenticationFailed(TokenError):
    code = "auth_failed"  # shorter than its name; kept as published

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


class BadData(TokenError):
    """6A 80, or bytes from the token that are not what the protocol says."""


class TlvError(BadData):
    """Bytes that are not the TLV the protocol says: truncated, a length past the end, trailing
    bytes, an unexpected or repeated tag, a value of the wrong size."""

    code = "bad_tlv"  # not its name; kept as published

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(
            message,
            hint="the token and keyfob disagree on a field's layout (another firmware?); "
            "`keyfob token -v …` logs every APDU",
        )
        self.offset = offset


class MalformedApdu(TokenError):
    """A command APDU shorter than its own header or Lc says (the card answers 6700)."""


class NotFound(TokenError):
    """6A 83: nothing stored there (a Molto2 delete on an empty profile)."""


class NoSuchProfile(TokenError):
    """6A 86: a profile index past the token's last one."""


class CommandRejected(TokenError):
    """The token does not take the command as framed: wrong length, class, instruction, or an
    Le it does not allow. Usually the wrong family, or firmware keyfob does not know."""


class NotSupported(CommandRejected):
    """A command this token's firmware lacks (the Molto2 screen lock before firmware 2.1): the
    token is fine, only the feature is missing, so no framing advice."""


class UnknownModel(TokenError):
    """A serial outside the model table: keyfob writes only to models it knows."""


class NeedsButton(TokenError):
    """Not an error as such: the Molto2 waits for ▲ to commit."""


class NoReader(TokenError):
    """pyscard or pcscd missing, no reader, or no token on it."""
