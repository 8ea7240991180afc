"""The transport a session talks through: anything that sends an APDU and returns (data, SW)."""

from __future__ import annotations

import abc

from keyfob.token.emulator import Card, LinkDropped
from keyfob.token.errors import TransportLost


class Connection(abc.ABC):
    """One card session (ISO 7816 APDUs); implementations raise :class:`TransportLost` when
    the card goes away, never a library-specific exception."""

    name: str = "connection"

    @abc.abstractmethod
    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        """Send one command APDU; return the response data and the status word."""

    def reconnect(self) -> None:  # noqa: B027 - optional: for transports that can
        """Re-establish the link after a :class:`TransportLost` (same card)."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release the card."""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemoryConnection(Connection):
    """In-process link to an emulated card: for tests and for the burner without a reader."""

    def __init__(self, card: Card) -> None:
        self.card = card
        self.name = f"emulated {card.model.name} {card.serial}"

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        try:
            response = self.card.transmit(apdu)
        except LinkDropped as exc:
            raise TransportLost(str(exc)) from None
        return response[:-2], int.from_bytes(response[-2:], "big")
