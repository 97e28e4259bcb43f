"""A bounded LRU cache of the predictions for identical requests.

The key is the mode, the model and the full parameter set; every content type
is encoded from the same cached prediction, so all formats of one request
carry the same numbers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from exocube.surrogate import Prediction


def prediction_nbytes(p: Prediction) -> int:
    return sum(a.nbytes for a in p.fields.values()) + 64 * (len(p.scalars) + len(p.params))


class PredictionCache:
    """At most ``max_entries`` predictions and ``max_bytes`` of their arrays; the least
    recently used go first. ``max_entries=0`` disables caching."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._items: OrderedDict[Hashable, tuple[Prediction, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: Hashable) -> Prediction | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: Hashable, value: Prediction) -> None:
        size = prediction_nbytes(value)
        if self.max_entries == 0 or size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, size)
            self._bytes += size
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
