"""A bounded cache with a time to live per entry (LRU eviction).

Bounded because a per-process cache without a bound grows with every name ever typed
(privacyIDEA #1246); each entry carries its own TTL so that positive lookups live a
directory's ``cache_ttl`` (5 minutes by default) and negative ones a minute.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(frozen=True)
class Hit(Generic[V]):
    value: V
    age: float
    fresh: bool


class TtlCache(Generic[V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[V, float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, now: float) -> Hit[V] | None:
        """The entry, fresh or not (an expired one may still serve while the directory is
        down); None if it was never stored or has been evicted."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
        value, stored, ttl = item
        age = now - stored
        return Hit(value, age, 0 <= age < ttl)

    def put(self, key: str, value: V, now: float, ttl: float) -> None:
        with self._lock:
            self._items[key] = (value, now, ttl)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
