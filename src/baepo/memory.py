"""Giving memory back after a burst of load.

CPython frees what a burst of pulls and pushes allocated, but glibc keeps the freed pages: in
one arena per thread that ever allocated (Baepo has dozens of worker threads), and in heaps
whose mmap threshold grew with the first large buffers. Resident memory then stays near its
peak long after the load. Two calls of glibc's fix that:

- `limit_arenas()` at start: at most two malloc arenas, shared by all threads (less
  fragmentation; the registry's work is I/O, not allocator contention).
- `trim()` now and then: return the free pages of every arena to the system.

Elsewhere than glibc (musl, macOS) both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # glibc's mallopt parameter


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """glibc, looked up once (`find_library` runs `ldconfig`)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def limit_arenas(arenas: int = 2) -> bool:
    """Before threads start: at most `arenas` malloc arenas. Whether glibc took it."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, arenas))


def trim() -> bool:
    """Return free heap pages to the system. Whether any were."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))
