"""The transport a session talks through: anything that sends an APDU and returns (data, SW).

Abstract on purpose: it knows nothing of PC/SC (``pcsc.py``) or of the emulator
(``memory.py`` links a session to an emulated card in process).
"""

from __future__ import annotations

import abc


class Connection(abc.ABC):
    """One card session (ISO 7816 APDUs); implementations raise
    :class:`~keyfob.token.errors.TransportLost` when the card goes away, never a
    library-specific exception."""

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
