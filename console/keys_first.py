"""Keys before background work: a thread that shares the interpreter with the UI
steps aside while a key is being answered.

Python runs one thread at a time. While the poller's state thread applies a
thousand models' answers, the UI thread gets the interpreter back only every
switch interval, and a key that comes in then is answered at half speed or less.
So the UI says when a key came in (:meth:`KeysFirst.key_in`) and when the frame
that shows it was painted (:meth:`KeysFirst.key_shown`); the background work
calls :meth:`KeysFirst.give_way` between two pieces of its work, and waits there
while a key is being answered. A key "comes in" when the terminal's input thread
reads it (the app hooks its driver to call :meth:`KeysFirst.key_in` then), not when
the UI gets to it: a key queued behind a frame must not also wait behind a parse.

The work that gives way: the poller's state thread (the SLI reads, the width
measuring and the survey, in pieces of :data:`PIECE`), each source's worker threads
between an answer and its parse (``Adapter.give_way``), and the first-breach reads.

A key holds the background work back for at most :data:`HOLD_LIMIT` seconds from
when it came in, however many pieces of work ask, and whether or not its frame is
ever reported: the data must keep coming while keys are held down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")

HOLD_LIMIT = 0.25
"""Seconds a key holds background work back at most, from when it came in."""

PIECE = 128
"""Items a background loop works through between two :meth:`KeysFirst.give_way`."""


def no_key() -> None:
    """A :meth:`KeysFirst.give_way` for work that no UI waits on."""


class KeysFirst:
    """Whether a key is being answered, for background threads to step aside."""

    __slots__ = ("_clear", "_clock", "_since")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since = -HOLD_LIMIT
        self._clear = threading.Event()
        self._clear.set()

    def key_in(self) -> None:
        """In the UI thread: a key came in."""
        self._since = self._clock()
        self._clear.clear()

    @property
    def idle(self) -> bool:
        """No key is being answered."""
        return self._clear.is_set()

    def key_shown(self) -> None:
        """In the UI thread: the frame after the last key was painted."""
        self._clear.set()

    def give_way(self) -> None:
        """In a background thread, between two pieces of work: wait while a key is
        being answered, up to :data:`HOLD_LIMIT` from when it came in."""
        if self._clear.is_set():
            return
        left = self._since + HOLD_LIMIT - self._clock()
        if left > 0:
            self._clear.wait(left)


def in_pieces(
    items: Iterable[T], give_way: Callable[[], None], size: int = PIECE
) -> Iterator[list[T]]:
    """``items`` in lists of ``size``, with ``give_way()`` called before each: a hot
    loop over each list keeps its body as it was, and steps aside between them."""
    iterator = iter(items)
    while piece := list(islice(iterator, size)):
        give_way()
        yield piece
