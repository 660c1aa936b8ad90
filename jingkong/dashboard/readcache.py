"""In-process cache of the screen's figure reads (/summary, /regions, /epi, /clock) and of the case-points layer.

Why: the figures change only when a family is recomputed (its ``version`` goes up), yet every open screen re-reads
them after each ``figures`` event and on every reload — at district level one GROUP BY over ~160 k figure rows
(≈ 0.5 s on SQLite at 1 M persons). An answer depends only on what its key holds: the route, the caller's scope
prefix (the screen selectors read nothing else of the user: permissions only decide whether the route answers),
the parameters, the UI language, the local day, and the version *and* refresh instant of every family it reads.
So a repeated read after no change costs one small query (the refresh states) and a dict lookup; a version bump
changes the key, so the next read recomputes (old entries age out of the LRU).

Values that move with the clock alone (``stale``, ``as_of``, ``families``) are re-derived from the refresh states
on every hit; the few minute counters that depend on ``now`` (e.g. the oldest transfer wait) are bounded by
:data:`TTL_SECONDS`. The cache is per process (each gunicorn worker has its own), bounded to :data:`MAX_ENTRIES`,
and thread-safe (gthread workers). Alerts are not cached: they follow live events.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any

MAX_ENTRIES = 256
TTL_SECONDS = 60.0


class LRU:
    """A small thread-safe least-recently-used dict with an age limit per entry."""

    def __init__(self, size: int = MAX_ENTRIES, ttl: float = TTL_SECONDS):
        self.size, self.ttl = size, ttl
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is None or time.monotonic() - entry[0] > self.ttl:
                if entry is not None:
                    del self._data[key]
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = (time.monotonic(), value)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)


screen = LRU()
layers = LRU(size=64)


def clear() -> None:
    """Forget everything (tests; a restored database)."""
    screen.clear()
    layers.clear()


def family_marks(states: dict[str, dict], names: Iterable[str], *, computed: bool = True) -> tuple | None:
    """(family, version, refreshed_at) of each family read. ``computed``: None when one has never been computed (a
    screen read computes it first, so its answer must not be kept under the "not computed" key); else such a family
    counts as (name, None, None)."""
    out = []
    for name in names:
        state = states.get(name)
        if state is None or state.get("refreshed_at") is None:
            if computed:
                return None
            state = {"version": None, "refreshed_at": None}
        out.append((name, state["version"], state["refreshed_at"]))
    return tuple(out)


def cached(store: LRU, key: Hashable | None, compute: Callable[[], Any]) -> Any:
    """``store[key]`` or ``compute()`` kept under ``key``; ``key=None``: not cacheable, computed every time. Errors
    are never kept (a 404/422 is raised again by the next read)."""
    if key is None:
        return compute()
    value = store.get(key)
    if value is None:
        value = compute()
        store.put(key, value)
    return value
