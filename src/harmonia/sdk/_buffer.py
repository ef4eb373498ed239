"""`SampleBuffer`: the bounded queue between the threads that measure and the sender.

Callers must never block on telemetry, so a full buffer evicts its *oldest* sample (the
freshest data matters most to an adapting server) and says so. The lock is held only for an
append or a short run of pops, never across I/O, so a caller waits at most microseconds.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, TypeAlias

Item: TypeAlias = tuple[Any, ...]
"""A sample as captured on the hot path; turned into its wire dict on the sender thread."""

_POPS_PER_LOCK = 128
"""Pops done per lock acquisition, so that a caller never waits for a whole batch."""


class SampleBuffer:
    """A FIFO of at most ``capacity`` items that wakes the sender when a batch is ready."""

    def __init__(self, capacity: int, batch_size: int) -> None:
        self.capacity = capacity
        self.batch_size = batch_size
        self.ready = threading.Event()
        self._items: deque[Item] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Item) -> bool:
        """Append ``item``; True when the oldest item had to be evicted to make room."""
        items = self._items
        with self._lock:
            evicted = len(items) >= self.capacity
            if evicted:
                items.popleft()
            items.append(item)
            full = len(items) >= self.batch_size
        if full and not self.ready.is_set():
            self.ready.set()
        return evicted

    def take(self, count: int) -> list[Item]:
        """Remove and return up to ``count`` of the oldest items."""
        items = self._items
        taken: list[Item] = []
        while len(taken) < count:
            with self._lock:
                n = min(count - len(taken), _POPS_PER_LOCK, len(items))
                if n == 0:
                    break
                taken.extend([items.popleft() for _ in range(n)])
        return taken

    def clear(self) -> int:
        """Empty the buffer; the number of items discarded."""
        with self._lock:
            count = len(self._items)
            self._items.clear()
        return count
