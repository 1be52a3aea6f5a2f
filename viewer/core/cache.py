"""One cache policy: bounded, named, thread-safe LRU caches with hit counters.

Every cache the viewer keeps in memory is a :class:`BoundedCache` registered by name, so
its size is capped (items and bytes, oldest first out) and :func:`cache_stats` can report
hits and misses of all of them (the server logs them; the load benchmark prints them).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import wraps
from typing import Any, Callable, Hashable, TypeVar

__all__ = ["BoundedCache", "CacheStats", "cache_stats", "memoized", "named_cache"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CacheStats:
    name: str
    items: int
    bytes: int
    hits: int
    misses: int
    evictions: int


class BoundedCache:
    """An LRU of at most ``max_items`` entries and ``max_bytes`` (``sizeof`` of the values)."""

    def __init__(self, name: str, max_items: int, max_bytes: int | None = None,
                 sizeof: Callable[[Any], int] = len) -> None:
        self.name = name
        self.max_items = max(0, int(max_items))
        self.max_bytes = max_bytes
        self._sizeof = sizeof
        self._data: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return hit[0]

    def put(self, key: Hashable, value: Any) -> None:
        size = self._sizeof(value) if self.max_bytes is not None else 0
        if self.max_items == 0 or (self.max_bytes is not None and size > self.max_bytes):
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._data[key] = (value, size)
            self._bytes += size
            while len(self._data) > self.max_items or (self.max_bytes is not None and self._bytes > self.max_bytes):
                _, (_, dropped) = self._data.popitem(last=False)
                self._bytes -= dropped
                self.evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self.name, len(self._data), self._bytes, self.hits, self.misses, self.evictions)


_registry: dict[str, BoundedCache] = {}
_registry_lock = threading.Lock()


def named_cache(name: str, max_items: int, max_bytes: int | None = None,
                sizeof: Callable[[Any], int] = len) -> BoundedCache:
    """The process-wide cache called ``name`` (made on first use with these bounds)."""
    with _registry_lock:
        if name not in _registry:
            _registry[name] = BoundedCache(name, max_items, max_bytes, sizeof)
        return _registry[name]


def cache_stats() -> list[CacheStats]:
    """Size and counters of every named cache."""
    with _registry_lock:
        caches = list(_registry.values())
    return [c.stats() for c in caches]


def memoized(name: str, max_items: int, key: Callable[..., Hashable] | None = None) -> Callable[[F], F]:
    """``functools.lru_cache(typed=True)`` under the one policy: the results of a pure function
    with hashable arguments kept in the named cache ``name`` (bounded, counted; ``fn.cache_clear()``).

    Argument types are part of the key, so ``True`` and ``1`` are different calls. ``key`` (called
    with the function's arguments) gives the cache key instead, for arguments that are slow to hash
    or compare (a rasterio CRS exports its WKT on every hash). Results may be ``None``."""
    def decorate(fn: F) -> F:
        cache = named_cache(name, max_items)

        @wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            if key is not None:
                k = key(*args, **kwargs)
            else:
                k = args + tuple(map(type, args))
                if kwargs:
                    k += tuple(sorted((n, type(v), v) for n, v in kwargs.items()))
            hit = cache.get(k)
            if hit is not None:
                return hit[0]
            value = fn(*args, **kwargs)
            cache.put(k, (value,))
            return value

        call.cache = cache  # type: ignore[attr-defined]
        call.cache_clear = cache.clear  # type: ignore[attr-defined]
        return call  # type: ignore[return-value]
    return decorate
