"""An in-process link to an emulated card: for tests, and for the burner without a reader.

Kept out of ``connection.py`` so the abstract transport does not pull in the emulator.
"""

from __future__ import annotations

from keyfob.token.connection import Connection
from keyfob.token.emulator import Card, LinkDropped
from keyfob.token.errors import TransportLost
from keyfob.token.protocol import split_response


class MemoryConnection(Connection):
    """Hands each APDU to :meth:`Card.transmit`; a dropped link is :class:`TransportLost`."""

    def __init__(self, card: Card) -> None:
        self.card = card
        self.name = f"emulated {card.model.name} {card.serial}"

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        try:
            response = self.card.transmit(apdu)
        except LinkDropped as exc:
            raise TransportLost(str(exc)) from None
        return split_response(response)
