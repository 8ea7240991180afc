"""PC/SC readers through pyscard: pick a reader, talk to the card, report a lost card as
:class:`TransportLost` (the caller may :meth:`reconnect` and try again)."""

from __future__ import annotations

import contextlib
import time
from types import ModuleType

from keyfob.token import protocol as p
from keyfob.token.connection import Connection
from keyfob.token.errors import NoReader, TransportLost


def _pyscard() -> tuple[ModuleType, tuple[type[Exception], ...], type[Exception]]:
    """pyscard's reader list and the exceptions we catch; imported lazily: it needs
    libpcsclite (and it has no types, so its module's members are ``Any``)."""
    try:
        from smartcard import System
        from smartcard.Exceptions import CardConnectionException, NoCardException
        from smartcard.pcsc.PCSCExceptions import EstablishContextException
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise NoReader(
            "pyscard is not installed", hint="pip install pyscard (needs swig and libpcsclite-dev)"
        ) from exc
    return System, (CardConnectionException, NoCardException), EstablishContextException


def list_readers(with_card: bool = False) -> list[str]:
    """Reader names; with ``with_card``, only those with a card present."""
    system, card_errors, no_context = _pyscard()
    try:
        readers = system.readers()
    except no_context:
        raise NoReader(
            "the PC/SC service (pcscd) is not running",
            hint="start it: sudo systemctl start pcscd (or run pcscd)",
        ) from None
    if not with_card:
        return [str(r) for r in readers]
    from smartcard.scard import SCARD_LEAVE_CARD

    present = []
    for reader in readers:
        conn = reader.createConnection()
        try:
            # Looking must not touch: pyscard's default disposition powers the card down on
            # disconnect, which would end a session another process (a burn) has open on it.
            conn.connect(disposition=SCARD_LEAVE_CARD)
            present.append(str(reader))
        except card_errors:
            continue
        finally:
            with contextlib.suppress(*card_errors):
                conn.disconnect()
    return present


def choose_reader(name: str | None = None) -> str:
    """By name substring or index; default: the first reader with a card."""
    all_readers = list_readers()
    if not all_readers:
        raise NoReader(
            "no smart-card reader found",
            hint="plug in a reader (or start `keyfob emulator --vpcd`)",
        )
    if name is not None:
        if name.isdigit() and int(name) < len(all_readers):
            return all_readers[int(name)]
        matches = [r for r in all_readers if name.lower() in r.lower()]
        if not matches:
            raise NoReader(f"no reader matches {name!r}", hint="readers: " + ", ".join(all_readers))
        return matches[0]
    with_card = list_readers(with_card=True)
    if not with_card:
        raise NoReader(
            "no token on any reader",
            hint="press the token's button and hold it on the reader; readers: "
            + ", ".join(all_readers),
        )
    return with_card[0]


SCARD_W_RESET_CARD = 0x80100068


def _was_reset(exc: BaseException) -> bool:
    code = getattr(exc, "hresult", None)
    if isinstance(code, int) and code & 0xFFFFFFFF == SCARD_W_RESET_CARD:
        return True
    return "0x80100068" in str(exc)


class PcscConnection(Connection):
    """A card on a PC/SC reader."""

    def __init__(self, reader: str | None = None, *, wait: float = 0.0) -> None:
        self._system, self._card_errors, _ = _pyscard()
        deadline = time.monotonic() + wait
        while True:
            try:
                self.name = choose_reader(reader)
                break
            except NoReader:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.25)
        self._reader = next(r for r in self._system.readers() if str(r) == self.name)
        self._conn = None
        self._connect()

    def _connect(self) -> None:
        conn = self._reader.createConnection()
        try:
            conn.connect()
        except self._card_errors:
            raise TransportLost(f"no token on {self.name}") from None
        self._conn = conn

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        if self._conn is None:
            raise TransportLost("not connected")
        try:
            return self._transmit(apdu)
        except self._card_errors as exc:
            if not _was_reset(exc):
                self._conn = None
                raise TransportLost(f"the token left the reader ({exc})") from None
        # SCARD_W_RESET_CARD: the card was powered up again after we connected (it came back
        # into the field). The command was not sent; reconnect and send it once more.
        try:
            self.close()
            self._connect()
            return self._transmit(apdu)
        except self._card_errors as exc:
            self._conn = None
            raise TransportLost(f"the token left the reader ({exc})") from None

    def _transmit(self, apdu: bytes) -> tuple[bytes, int]:
        assert self._conn is not None
        data, sw1, sw2 = self._conn.transmit(list(apdu))
        if sw1 == p.SW1_MORE_DATA:  # T=0: more data waiting
            more, sw1, sw2 = self._conn.transmit(list(p.get_response(sw2).to_bytes()))
            data += more
        elif sw1 == p.SW1_WRONG_LE:  # T=0: wrong Le, re-issue with the right one
            data, sw1, sw2 = self._conn.transmit([*apdu[: p.HEADER_LEN], sw2])
        return bytes(data), (sw1 << 8) | sw2

    def reconnect(self, timeout: float = 10.0, settle: float = 0.6) -> None:
        """Wait for the token to come back. ``settle`` lets pcscd notice the removal first
        (it polls readers every 0.4 s); connecting earlier can reach the stale card."""
        self.close()
        time.sleep(settle)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._connect()
                return
            except TransportLost:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(*self._card_errors):
                self._conn.disconnect()
            self._conn = None
