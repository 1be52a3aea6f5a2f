"""Give the memory of closed sessions back to the operating system.

A closed session's objects are freed once Bokeh destroys the session (``viewer serve`` checks
every 3 s for sessions unused for 15 s). The allocators keep what was freed, though: glibc's
``malloc`` returns memory to the system only from the top of its heap, and CPython's small-object
allocator (pymalloc) returns a 1 MiB arena only when every object in it is gone, so a server's
resident memory stays near its high-water mark; the freed memory is reused by later sessions.
:func:`release_memory_soon` runs a garbage collection and glibc's ``malloc_trim(0)`` (which also
hands back whole free pages inside the heap) once sessions have stopped closing for a moment.
Elsewhere (musl, macOS, Windows) only the collection runs. With ``PYTHONMALLOC=malloc`` small
objects live in glibc's heap too, and the trim returns a burst of sessions' memory (all of it without
the session pool), for 5-10 % fewer tiles per second (docs/DEPLOY.md, "Memory"; ``viewer serve``
keeps that setting to its own process, not its render processes).

Caches that other processes hold for the pages (the render workers' GDAL blocks and index maps) go
when no page is open any more: callbacks given to :func:`when_no_page_is_open` run then.
"""
from __future__ import annotations

import ctypes
import gc
import threading
from typing import Callable

from tornado.ioloop import IOLoop

__all__ = ["release_memory", "release_memory_soon", "when_no_page_is_open", "HAS_MALLOC_TRIM"]


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        fn = ctypes.CDLL(None).malloc_trim  # the C library the process runs on
    except (OSError, AttributeError, TypeError):  # not glibc, or no symbol table for the process
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_TRIM = _malloc_trim()
#: Whether this process can hand freed heap pages back (glibc).
HAS_MALLOC_TRIM = _TRIM is not None
_pending: dict[int, object] = {}  # id(loop) -> the scheduled timeout (one per loop)
_lock = threading.Lock()
_no_page_open: list[Callable[[], None]] = []


def when_no_page_is_open(callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` on the event loop each time :func:`release_memory_soon` finds no page open;
    returns a function that removes it."""
    _no_page_open.append(callback)
    return lambda: _no_page_open.remove(callback) if callback in _no_page_open else None


def release_memory() -> bool:
    """Collect cyclic garbage, then return the C heap's free pages to the system
    (``malloc_trim(0)``); False where there is no ``malloc_trim``."""
    gc.collect()
    if _TRIM is None:
        return False
    _TRIM(0)  # ctypes releases the GIL for the call
    return True


def release_memory_soon(delay: float = 2.0, pages_open: Callable[[], int] | None = None) -> None:
    """Run :func:`release_memory` on a worker thread ``delay`` s after the last call from this
    event loop (one run for a burst of closing sessions); before, if ``pages_open()`` (of the last
    call) is 0, the :func:`when_no_page_is_open` callbacks. Call it on the loop's thread."""
    loop = IOLoop.current()
    key = id(loop)
    with _lock:
        handle = _pending.pop(key, None)
        if handle is not None:
            loop.remove_timeout(handle)

        def run() -> None:
            with _lock:
                _pending.pop(key, None)
            if pages_open is not None and pages_open() == 0:
                for callback in list(_no_page_open):
                    callback()
            threading.Thread(target=release_memory, name="viewer-release-memory", daemon=True).start()

        _pending[key] = loop.call_later(delay, run)
