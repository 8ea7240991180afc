"""The emulator as a card in a PC/SC reader, through vsmartcard's ``vpcd`` driver for pcscd.

vpcd (the reader side, inside pcscd) listens on TCP port 35963; a virtual card connects to it.
Every message is a 2-byte big-endian length and a payload. A 1-byte payload is a control code
(0 power off, 1 power on, 2 reset, 4 "send the ATR"); anything longer is a command APDU, which
the card answers with its response APDU. Closing the connection is pulling the card out of the
reader — which is how a dropped NFC link looks to PC/SC clients, so the fault injection of the
emulator maps onto it directly.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading

from keyfob.token.emulator import Card, LinkDropped

log = logging.getLogger("keyfob.token.vpcd")

DEFAULT_PORT = 35963
ATR = bytes.fromhex("3B80800101")
"""PC/SC part 3 ATR of an ISO 14443-4 type A card without historical bytes: what a
contactless reader reports for an NFC token such as these."""

POWER_OFF, POWER_ON, RESET, GET_ATR = 0, 1, 2, 4


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("vpcd closed the connection")
        buf += chunk
    return buf


class VpcdBridge:
    """Keeps the card inserted in the virtual reader until :meth:`stop`."""

    def __init__(
        self,
        card: Card,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        reinsert_after: float = 0.5,
    ) -> None:
        self.card, self.host, self.port = card, host, port
        self.reinsert_after = reinsert_after
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self.connected = threading.Event()

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def run(self) -> None:
        """Connect, serve, and after a removal (fault or vpcd restart) insert the card again."""
        while not self._stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=2)
            except OSError:
                self._stop.wait(0.5)
                continue
            sock.settimeout(None)
            self._sock = sock
            self.connected.set()
            log.info("inserted into vpcd at %s:%d", self.host, self.port)
            try:
                self._serve(sock)
            except LinkDropped:
                log.info("fault: link dropped (card removed)")
            except (ConnectionError, OSError):
                pass
            finally:
                self.connected.clear()
                with contextlib.suppress(OSError):
                    sock.close()
                self._sock = None
                self.card.power_off()
            self._stop.wait(self.reinsert_after)

    def _serve(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            (length,) = struct.unpack(">H", _recv_exact(sock, 2))
            payload = _recv_exact(sock, length)
            if length == 1:
                code = payload[0]
                if code == GET_ATR:
                    sock.sendall(struct.pack(">H", len(ATR)) + ATR)
                elif code in (POWER_OFF, POWER_ON, RESET):
                    self.card.power_off()
                continue
            response = self.card.transmit(payload)
            sock.sendall(struct.pack(">H", len(response)) + response)
