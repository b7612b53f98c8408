"""Process-level tuning for the server's workers (and the benchmarks that measure them)."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_malloc(mmap_threshold: int = 64 << 20, trim_threshold: int = 128 << 20) -> bool:
    """With glibc, serve allocations below 64 MiB from the heap and keep freed memory up to
    128 MiB: a request's arrays then reuse pages the last request already touched instead of
    fresh mmap'd ones that fault page by page (measured: the T=64, m=32 δ table computation
    1.42 → 0.91 ms). One arena for every thread: with one arena per thread (glibc's default)
    each worker thread that ever ran a large request keeps its own freed memory, so a worker's
    peak grew with the number of threads used, not with the requests in flight (measured: six
    maximal requests, two in flight, +135–170 MB against +118 MB with one arena, one alone +56 MB).
    Memory stays bounded by the requests in flight (BPTT_MAX_CONCURRENT) times the largest.
    Returns whether it applied (False off glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return (bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold))
                and bool(libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold))
                and bool(libc.mallopt(_M_ARENA_MAX, 1)))
    except (OSError, AttributeError):
        return False


#: seconds a thread may hold the GIL before another that waits for it gets it (Python's default
#: 0.005). The event loop needs the GIL at every step of every request; while a large request
#: runs Python code in a worker thread, each of those steps waited up to the whole interval.
#: Measured (bench/abuse.py, classroom beside two maximal requests of work, one worker, four
#: alternating runs on a loaded machine): p99 91–222 ms at 0.005, 61–88 ms at 0.001.
SWITCH_INTERVAL = 0.001


def tune_gil(interval: float = SWITCH_INTERVAL) -> None:
    """Hand the GIL over sooner (see SWITCH_INTERVAL)."""
    sys.setswitchinterval(interval)
