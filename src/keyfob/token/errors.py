"""Typed token errors: each says what happened and what the person holding the token should do."""

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


class NotAuthenticated(TokenError):
    code = "not_authenticated"


class BadData(TokenError):
    code = "bad_data"


class UnknownModel(TokenError):
    code = "unknown_model"


class NeedsButton(TokenError):
    """Not an error as such: the Molto2 waits for ▲ to commit."""

    code = "needs_button"


class NoReader(TokenError):
    code = "no_reader"
