"""Sign-in rate limiting: failures per (username, address) and per address in a sliding window.

Per process and in memory, on purpose: it bounds online guessing at each server without a write
per attempt; the token lockout (design §4) bounds code guessing across all servers anyway.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque


class LoginLimiter:
    def __init__(self, per_user: int = 5, per_address: int = 30, window: float = 300.0) -> None:
        self.per_user, self.per_address, self.window = per_user, per_address, window
        self._fails: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _count(self, key: str, now: float) -> int:
        q = self._fails[key]
        while q and q[0] < now - self.window:
            q.popleft()
        return len(q)

    def retry_after(self, username: str, address: str) -> int:
        """Seconds to wait, or 0 when another attempt is allowed."""
        now = time.monotonic()
        with self._lock:
            keys = [
                (f"u:{username.casefold()}|{address}", self.per_user),
                (f"a:{address}", self.per_address),
            ]
            for key, limit in keys:
                if self._count(key, now) >= limit:
                    return int(self._fails[key][0] + self.window - now) + 1
        return 0

    def failed(self, username: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._fails[f"u:{username.casefold()}|{address}"].append(now)
            self._fails[f"a:{address}"].append(now)

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._fails.pop(f"u:{username.casefold()}|{address}", None)
