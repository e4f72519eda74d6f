"""Hand freed heap back to the system, where the C library can (glibc).

glibc's malloc keeps what the process frees: the top of each arena is returned
only past a threshold, and free pages inside an arena not at all. A console that
once held 500 alerts' worth of incidents, or parsed a few large answers in its
query threads, stays that big after it has let them go: measured at 1,000 models,
RSS grew 24 MB over half an hour while the objects Python held grew 0.7 MB.
``malloc_trim(0)`` gives those free pages back (it walks every arena).

Elsewhere (macOS, musl, Windows) there is no ``malloc_trim``: every call here is
then a no-op that says so (it returns False).
"""

from __future__ import annotations

import ctypes
import sys
import time
from collections.abc import Callable
from typing import Any

#: glibc's ``mallopt`` parameter for the most arenas malloc may create
#: (``M_ARENA_MAX`` in malloc.h).
M_ARENA_MAX = -8

DASHBOARD_ARENAS = 2
"""The most malloc arenas the dashboard lets glibc create (its default is eight per
core). Each thread that allocates (the UI, the poller's state thread, a query thread
per Prometheus query in flight, the incident workers) would otherwise take an arena
of its own, up to 16 on two cores, and each keeps what its thread freed. At 1,000
models two arenas held 10-18 MB less than sixteen (medians of 3), and a trim walks two
arenas instead of sixteen: 0.4-4 ms a trim on average, at most 11 ms, against up to
48 ms (on a machine at load 10)."""


def _libc() -> Any | None:
    """The process's own C library, if it has glibc's ``malloc_trim``; else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded: the C library in use
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):  # musl has no malloc_trim
        return None
    return libc


_LIBC = _libc()


def can_trim() -> bool:
    """Whether :func:`trim` can give memory back on this platform."""
    return _LIBC is not None


def trim() -> bool:
    """Give malloc's free pages back to the system. True when any were given back;
    False when none were, or where there is no ``malloc_trim``."""
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(0))


def cap_arenas(count: int) -> bool:
    """Let malloc create at most ``count`` arenas (glibc's default is eight per core),
    so threads share them, and what one thread frees another reuses. Call it before
    the threads start. True when the C library took the setting."""
    if _LIBC is None:
        return False
    try:
        mallopt = _LIBC.mallopt
    except AttributeError:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, count))


class HeapTrimmer:
    """Decides when to trim: once ``interval`` seconds have passed since the last
    trim, or at once (but not more often than every ``soon`` seconds) when what the
    console holds just fell (fewer alerts than last time).

    ``trim`` and ``clock`` are parameters so a test can count the calls."""

    def __init__(
        self,
        *,
        interval: float = 60.0,
        soon: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        trim: Callable[[], bool] = trim,
    ) -> None:
        self.interval = interval
        self.soon = soon
        self.clock = clock
        self._trim = trim
        self._last = clock()
        self._held: int | None = None
        self._fell = False
        #: How many trims ran, the seconds they took, and the longest, for the curious.
        self.trims = 0
        self.seconds = 0.0
        self.longest = 0.0

    def due(self, held: int) -> bool:
        """After a snapshot holding ``held`` things (alerts): whether to trim now."""
        if self._held is not None and held < self._held:
            self._fell = True  # kept until the trim it asks for has run
        self._held = held
        now = self.clock()
        waited = now - self._last
        if waited < self.interval and not (self._fell and waited >= self.soon):
            return False
        self._last, self._fell = now, False  # one trim per decision, however soon it runs
        return True

    def run(self) -> bool:
        """Trim now; what :func:`trim` returned."""
        started = self.clock()
        trimmed = self._trim()
        took = self.clock() - started
        self.seconds += took
        self.longest = max(self.longest, took)
        self.trims += 1
        return trimmed
