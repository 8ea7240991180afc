"""The retransmission cache (RFC 5080 §2.2.2): a request seen again gets the answer it got.

A NAS that hears nothing sends the very same packet again (same Identifier, same Request
Authenticator). Verifying it twice would burn the code (the second check is a replay reject),
count a failure towards the lockout and, worse, answer Reject to a login that was accepted.
So for 30 s the first answer is kept and sent again; a copy that arrives while the first is
still being decided is dropped (the NAS will ask again, and then the answer is ready).

Per process, in memory: a NAS retransmits to the address it used, which a single process
serves. A copy whose bytes differ from the first under the same key is not a retransmission
and is dropped.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from keyfob.server.radius.packets import Drop, DropReason

TTL = 30.0
MAX_ENTRIES = 200_000  # 30 s at well over any load the server can verify

Key = tuple[str, str, int, bytes]  # client id, sender address, Identifier, Request Authenticator


@dataclass
class _Entry:
    digest: bytes
    at: float
    reply: bytes | None = None  # None while the first copy is being decided


class RetransmissionCache:
    def __init__(
        self,
        ttl: float = TTL,
        clock: Callable[[], float] = time.monotonic,
        limit: int = MAX_ENTRIES,
    ) -> None:
        self.ttl, self._clock, self.limit = ttl, clock, limit
        self._lock = threading.Lock()
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()

    @staticmethod
    def key(client_id: str, host: str, data: bytes) -> Key:
        return (client_id, host, data[1], data[4:20])

    def begin(self, key: Key, data: bytes) -> bytes | None:
        """The cached reply of a retransmission; None for a first copy (now marked pending).

        Raises Drop for a copy still being decided, or for other bytes under the same key."""
        digest = hashlib.sha256(data).digest()
        now = self._clock()
        with self._lock:
            self._expire(now)
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = _Entry(digest, now)
                return None
        if entry.digest != digest:
            raise Drop(DropReason.CONFLICTING_RETRANSMISSION)
        if entry.reply is None:
            raise Drop(DropReason.IN_PROGRESS)
        return entry.reply

    def finish(self, key: Key, reply: bytes | None) -> None:
        """Keep ``reply`` for the copies to come; None (no answer was sent) forgets the key,
        so a copy is checked again (and dropped again) rather than answered."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            if reply is None:
                del self._entries[key]
            else:
                entry.reply = reply

    def _expire(self, now: float) -> None:
        while self._entries:
            key, oldest = next(iter(self._entries.items()))
            if now - oldest.at < self.ttl and len(self._entries) < self.limit:
                return
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
