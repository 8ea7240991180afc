"""Reaching a token on a PC/SC reader, for the burner.

Waiting for a token (15 s for one burn, minutes between the tokens of a batch) only makes sense
when a token *can* arrive. "No token yet" and "no reader yet" are worth waiting for; a missing
pyscard or a stopped pcscd is not — no token will ever answer — so those end the wait at once as
:class:`ReaderUnavailable`, with the token layer's own reason and how to fix it.
"""

from __future__ import annotations

from keyfob.burn.errors import ReaderUnavailable
from keyfob.token.errors import NoReader
from keyfob.token.pcsc import PcscConnection, list_readers


def require_pcsc() -> None:
    """Raise :class:`ReaderUnavailable` unless pyscard loads and pcscd answers.

    ``list_readers()`` (without ``with_card``) fails only for those two reasons: an empty list
    means pcscd runs with no reader plugged in, which a wait can still cure."""
    try:
        list_readers()
    except NoReader as exc:
        raise ReaderUnavailable(exc.message, hint=exc.hint) from None


def open_reader(reader: str | None = None, wait: float = 0.0) -> PcscConnection:
    """The token on ``reader`` (default: the first with a card), waiting up to ``wait`` seconds
    for one — but not for a PC/SC stack that is not there."""
    require_pcsc()
    return PcscConnection(reader, wait=wait)
