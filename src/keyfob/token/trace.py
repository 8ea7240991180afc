"""The debug log of every APDU exchanged, on the ``keyfob.token`` logger: safe to paste into a
bug report.

A command line shows CLA INS P1 P2 and the data length; the data itself only when the command's
builder marked it public (:attr:`~keyfob.token.protocol.Apdu.log_data`), so seed ciphertext,
keys, auth answers and MACs never reach a log line. A response line shows the status word and
the data length, never the data. The client logs on ``keyfob.token.client``, the emulated card
on ``keyfob.token.card``: both are under ``keyfob.token``, which ``-v`` turns on.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from keyfob.token.protocol import Apdu, describe_sw

logger = logging.getLogger("keyfob.token")
client = logging.getLogger("keyfob.token.client")
card = logging.getLogger("keyfob.token.card")

_HANDLER_NAME = "keyfob-token-debug"


def command(log: logging.Logger, apdu: Apdu, what: str) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    if not apdu.data:
        shown = ""
    elif apdu.log_data:
        shown = f" data={apdu.data.hex().upper()}"
    else:
        shown = " data=(withheld)"
    log.debug(
        "%s > %02X %02X %02X %02X Lc=%d%s",
        what,
        apdu.cla,
        apdu.ins,
        apdu.p1,
        apdu.p2,
        len(apdu.data),
        shown,
    )


def response(log: logging.Logger, sw: int, length: int, what: str) -> None:
    log.debug("%s < SW=%04X len=%d (%s)", what, sw, length, describe_sw(sw))


def lost(log: logging.Logger, what: str) -> None:
    log.debug("%s < link lost", what)


def enable(stream: TextIO | None = None) -> None:
    """Show the APDU log on ``stream`` (default: stderr as it is now): what ``--verbose``
    does. A second call replaces the first handler, so no line is printed twice."""
    logger.setLevel(logging.DEBUG)
    for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("keyfob: debug: %(name)s: %(message)s"))
    logger.addHandler(handler)
