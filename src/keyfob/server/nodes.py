"""A running server's heartbeat: it re-reads its master keys and says which ones it holds.

``rotate-key`` switches to a new key only when every live server holds it (see
:mod:`keyfob.server.keyrotation`); this is how it knows. A server killed without a goodbye
simply stops being "live" after three missed beats.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from keyfob.server.context import ServerContext
from keyfob.server.store import keystate

log = logging.getLogger("keyfob.server")


class NodeHeartbeat:
    """A daemon thread: every ``settings.node_heartbeat`` seconds, reload keys and check in."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.id = keystate.node_id()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keyfob-heartbeat", daemon=True)

    def beat(self) -> None:
        try:
            self.ctx.ring.reload()
        except Exception as exc:  # a half-copied key file must not stop the server
            log.warning("could not re-read the master keys: %s", exc)
        with self.ctx.begin() as conn:
            keystate.upsert_node(conn, self.id, self.ctx.ring.kids(), datetime.now(UTC))

    def _run(self) -> None:
        while not self._stop.wait(self.ctx.settings.node_heartbeat):
            try:
                self.beat()
            except Exception as exc:  # the database may be away for a moment; try again
                log.warning("heartbeat failed: %s", exc)

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            with self.ctx.begin() as conn:
                keystate.remove_node(conn, self.id)
        except Exception as exc:
            log.warning("could not sign this server off: %s", exc)
