"""A thread-safe least-recently-used store with a byte budget: the server's tile cache and
its decoded images."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ByteBudgetLRU(Generic[K, V]):
    """Values within `max_bytes` in all (each sized by `size_of`), the least recently used
    dropped first. A value larger than the whole budget is kept alone when `keep_oversize`
    (a decoded image in use must stay), else not stored at all (a tile is decoded again)."""

    def __init__(self, max_bytes: int, size_of: Callable[[V], int], keep_oversize: bool = False) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._size_of = size_of
        self._keep_oversize = keep_oversize
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        size = self._size_of(value)
        if size > self.max_bytes and not self._keep_oversize:
            return
        with self._lock:
            self._pop(key)
            self._entries[key] = value
            self.bytes += size
            while self.bytes > self.max_bytes and len(self._entries) > 1:
                self._pop(next(iter(self._entries)))

    def drop(self, predicate: Callable[[K], bool]) -> None:
        """Drop every entry whose key satisfies `predicate`."""
        with self._lock:
            for key in [k for k in self._entries if predicate(k)]:
                self._pop(key)

    def _pop(self, key: K) -> None:
        value = self._entries.pop(key, None)
        if value is not None:
            self.bytes -= self._size_of(value)

    def __len__(self) -> int:
        return len(self._entries)
