"""token/errors.py: every error's code, which clients see, pinned — most come from the class
name (``TokenError.__init_subclass__``), two are kept as they were published."""

from __future__ import annotations

from keyfob.token import errors

CODES = {
    "TokenError": "token_error",
    "TransportLost": "transport_lost",
    "AuthenticationFailed": "auth_failed",
    "NotAuthenticated": "not_authenticated",
    "BadData": "bad_data",
    "TlvError": "bad_tlv",
    "MalformedApdu": "malformed_apdu",
    "NotFound": "not_found",
    "NoSuchProfile": "no_such_profile",
    "CommandRejected": "command_rejected",
    "NotSupported": "not_supported",
    "UnknownModel": "unknown_model",
    "NeedsButton": "needs_button",
    "NoReader": "no_reader",
}


def test_every_token_error_has_its_published_code() -> None:
    found = {
        name: cls.code
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, errors.TokenError)
    }
    assert found == CODES
