"""Blocking calls in daemon threads: a request in flight never holds the process open.

A :class:`concurrent.futures.ThreadPoolExecutor` joins its threads when the
interpreter exits, so a quit while a query is in flight waits for that query's
answer or its timeout (seconds, at a thousand models). :class:`DaemonPool` is the
same executor with daemon threads: an answer nobody waits for any more goes with
the process.

``shutdown(abandon_running=True)`` also gives up on the calls in flight: whoever
waits on one stops waiting at once (its future raises ``CancelledError``) while
the call goes on in its thread, unawaited. A caller that waits in a thread of its
own (a first breach read in a worker thread, on a loop of its own) is released
too, so that thread ends and neither the loop's nor the interpreter's join of it
waits on a source that does not answer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future
from typing import Any

_Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


class DaemonPool(Executor):
    """At most ``size`` daemon threads, started as work arrives and kept for more.

    A call goes to an idle thread when there is one (reserved for it as it is
    handed over, as :class:`ThreadPoolExecutor` does), and only otherwise starts a
    thread: calls made one after another share one thread, and a command that asks
    its sources a few questions does not pay for starting ``size`` threads.
    """

    def __init__(self, size: int, prefix: str) -> None:
        self._size = size
        self._prefix = prefix
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        #: The futures of the calls running now; each leaves when its call returns.
        self._running: set[Future[Any]] = set()
        self._lock = threading.Lock()
        self._closed = False
        #: Threads between two calls and not yet promised one: each counts itself in
        #: after a call, and a submit that hands it a job counts it out.
        self._idle = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        call = (lambda: fn(*args, **kwargs)) if kwargs else fn
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self._prefix}: cannot take work after shutdown")
            self._jobs.put((future, call, () if kwargs else args))
            if self._idle:
                self._idle -= 1  # an idle thread takes this job
            elif len(self._threads) < self._size:
                thread = threading.Thread(
                    target=self._work, name=f"{self._prefix}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        result: Any
        failure: BaseException | None
        # A thread is started for a job submitted: it is not idle until it has run one.
        while (job := self._jobs.get()) is not None:
            future, fn, args = job
            with self._lock:
                if not future.set_running_or_notify_cancel():
                    self._idle += 1
                    continue
                self._running.add(future)
            result, failure = None, None
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to whoever waits, as an executor does
                failure = exc
            with self._lock:  # still ours, unless shutdown gave up on it meanwhile
                awaited = future in self._running
                self._running.discard(future)
                # Idle before its caller hears back: the call the caller makes next
                # finds this thread, rather than starting another.
                self._idle += 1
            if awaited and failure is not None:
                future.set_exception(failure)
            elif awaited:
                future.set_result(result)
            del result, failure  # not held by this thread until its next call

    def shutdown(
        self, wait: bool = True, *, cancel_futures: bool = False, abandon_running: bool = False
    ) -> None:
        """As :meth:`Executor.shutdown`; with ``abandon_running``, the futures of the
        calls in flight raise ``CancelledError`` now instead of waiting for them."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
            abandoned = list(self._running) if abandon_running else []
            self._running.difference_update(abandoned)
        for future in abandoned:  # their calls go on in their threads, unawaited
            future.set_exception(CancelledError(f"{self._prefix}: shut down"))
        if cancel_futures:
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[0].cancel()
        for _ in threads:
            self._jobs.put(None)
        if wait:
            for thread in threads:
                thread.join()
