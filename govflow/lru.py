"""A small bounded map, least recently used out first, safe to share between the event
loop and worker threads. For values that are facts (never wrong once written) or that a
caller validates before use (see services/matters/store/caches.py VersionedCache)."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Lru(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: collections.OrderedDict[K, V] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V, *, replace: Callable[[V], bool] | None = None) -> None:
        """Keeps ``value`` under ``key``; with ``replace``, a value already held is replaced
        only when ``replace(held)`` is true."""
        with self._lock:
            held = self._items.get(key)
            if held is not None and replace is not None and not replace(held):
                return
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
