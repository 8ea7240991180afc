"""What caller-supplied text must look like before it may reach SQL.

PostgreSQL refuses a NUL character in any text value and a string longer than its ``VARCHAR(n)``
column; SQLite stores both silently; neither driver can encode a lone UTF-16 surrogate. Any of
these used to surface as a 500. So text from a request is held to one rule here — no control
characters, no surrogates, no longer than the column it is meant for — and checked at the edge
(path, query, HTTP Basic user, request bodies, form fields) rather than by each service.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TypeVar

from pydantic import AfterValidator

from keyfob.server.errors import ServiceError

E = TypeVar("E", bound=StrEnum)

# C0 controls, DEL, and the surrogate range (valid in a JSON string, not encodable as UTF-8).
_FORBIDDEN = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
SERIAL_MAX = 128  # tokens.serial and tokens.reported_serial
CLIENT_MAX = 64  # audit.client
USERNAME_MAX = 255  # users.username
ACTION_MAX = 64  # audit.action
# Past any real inventory or audit trail, and far below PostgreSQL's bigint (OFFSET is one).
MAX_OFFSET = 10**9
# The most rows one page of a listing holds (users, tokens, the audit log): over REST and the CLI.
MAX_LIMIT = 1000


def forbidden_at(value: str) -> int | None:
    """Index of the first character that cannot be stored as text, or None."""
    found = _FORBIDDEN.search(value)
    return found.start() if found else None


def describe(value: str, at: int) -> str:
    """Names the character by code point and position — never echoes the value itself."""
    return f"a control character (U+{ord(value[at]):04X}) at position {at + 1}"


def refuse_forbidden(value: str) -> str:
    """Pydantic validator: a request text field with a control character is a 422."""
    at = forbidden_at(value)
    if at is not None:
        raise ValueError(f"contains {describe(value, at)}; remove it")
    return value


# For a form field: ``Annotated[str, Form(max_length=n), STORABLE]`` (after the Form, so that
# the length message stays "String should have at most n characters").
STORABLE = AfterValidator(refuse_forbidden)


def check_serial(serial: str) -> str:
    """A token serial as it can be stored and looked up: 1 to 128 printable characters."""
    serial = serial.strip()
    at = forbidden_at(serial)
    if not serial or len(serial) > SERIAL_MAX or at is not None:
        why = describe(serial, at) if at is not None else f"{len(serial)} characters"
        raise ServiceError(
            f"a serial is 1 to {SERIAL_MAX} characters without control characters (got {why})",
            hint="type the serial printed on the back of the token",
        )
    return serial


def one_of(vocabulary: type[E], value: str, what: str, *, hint: str) -> E:
    """``value`` as a word of ``vocabulary`` (keyfob.server.store.vocab), or a 400 listing the
    words: the CLI and the forms pass plain text, and an unknown word must not be stored."""
    try:
        return vocabulary(value)
    except ValueError:
        words = ", ".join(vocabulary)
        raise ServiceError(f"{what} {value!r} is not one of {words}", hint=hint) from None


def filter_word(vocabulary: type[E], value: str | None, what: str, *, hint: str) -> E | None:
    """A listing filter's word: None (any) when none was given, else :func:`one_of`."""
    return one_of(vocabulary, value, what, hint=hint) if value else None


def check_prefix(value: str | None, what: str, longest: int, *, hint: str) -> None:
    """A prefix filter no longer than the column it searches. Past that it can match nothing,
    and SQLite refuses a LIKE pattern past 50 000 bytes (escaping doubles % and _), which
    would be a 500 where the caller deserves a 400 that says why."""
    if value and len(value) > longest:
        raise ServiceError(
            f"{what} is {len(value)} characters long; none is longer than {longest}", hint=hint
        )


def fit(value: str, length: int) -> str:
    """``value`` cut down to what a ``VARCHAR(length)`` column holds: for records that must be
    written whatever they say (the audit trail), never for input, which is refused instead."""
    return _FORBIDDEN.sub("", value)[:length]


def clean_client(host: str | None) -> str | None:
    """A client address as it can be stored: control characters dropped, at most 64 characters.

    Behind a proxy the address is whatever ``X-Forwarded-For`` said, so it is not to be trusted
    to be short or printable; an audit row or rate-limit key must never fail because of it."""
    return None if host is None else fit(host, CLIENT_MAX)
