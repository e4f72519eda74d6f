"""Queries run in daemon threads: quitting while one is in flight does not wait for it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from concurrent.futures import CancelledError, Future

import pytest

from adapters.threads import DaemonPool


def test_work_runs_in_daemon_threads_and_failures_reach_the_caller() -> None:
    pool = DaemonPool(2, "probe")
    seen = pool.submit(lambda: threading.current_thread()).result(timeout=30)
    assert seen.daemon and seen.name.startswith("probe_")
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 / 0).result(timeout=30)
    assert pool.submit(pow, 2, 10).result(timeout=30) == 1024
    pool.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(pow, 2, 2)


def _held(pool: DaemonPool) -> tuple[Future[str], threading.Event]:
    """A call running in ``pool`` until the event it returns is set; then "held"."""
    release = threading.Event()
    started = threading.Event()

    def hold() -> str:
        started.set()
        release.wait(60)
        return "held"

    running = pool.submit(hold)
    started.wait(30)
    return running, release


def test_at_most_size_threads_and_queued_work_is_cancelled_at_shutdown() -> None:
    pool = DaemonPool(1, "one")
    running, release = _held(pool)
    queued = pool.submit(pow, 3, 3)  # waits for the one thread
    assert len(pool._threads) == 1
    pool.shutdown(wait=False, cancel_futures=True)
    release.set()
    assert running.result(timeout=30) == "held"
    with pytest.raises(CancelledError):
        queued.result(timeout=30)


def test_abandoning_releases_whoever_waits_on_a_call_in_flight() -> None:
    """A caller blocked on a call that never returns (a thread of its own, waiting as
    the first breach read does) is released at shutdown; the call's late end changes
    nothing for it."""
    pool = DaemonPool(1, "abandon")
    running, release = _held(pool)
    outcome: list[BaseException | str] = []

    def wait_in_a_thread() -> None:
        try:
            outcome.append(running.result(timeout=60))
        except CancelledError as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=wait_in_a_thread)
    waiter.start()
    pool.shutdown(wait=False, cancel_futures=True, abandon_running=True)
    waiter.join(30)
    assert not waiter.is_alive() and not release.is_set()  # released, the call still on
    assert isinstance(outcome[0], CancelledError)
    release.set()
    pool._threads[0].join(30)  # the call ends in its thread, unawaited
    assert not pool._threads[0].is_alive()
    with pytest.raises(CancelledError):
        running.result(timeout=0)


def test_a_query_in_flight_does_not_hold_the_process_at_exit(tmp_path: object) -> None:
    """The process asks a Prometheus that answers only after 120 s, gives up on the
    query as the console does at quit, and must end long before that answer."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        from adapters.settings import SourceSettings
        from adapters.prometheus import PrometheusAdapter
        from tests.faultserver import Reply, fault_server

        async def main(url):
            settings = SourceSettings.model_validate({"url": url, "timeout": 300, "retries": 0})
            prometheus = PrometheusAdapter("prometheus", settings)
            query = asyncio.ensure_future(prometheus.query("up"))
            while not server.requests:  # the request has reached the server
                await asyncio.sleep(0.01)
            query.cancel()
            await prometheus.aclose()

        with fault_server(Reply(body=b"{}", delay=120)) as server:
            asyncio.run(main(server.url))
            print("asked and gave up", flush=True)
        """
    )
    # fault_server's exit does not wait for its handler threads either (daemon).
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "asked and gave up" in run.stdout


def test_calls_one_after_another_share_one_thread_and_a_burst_still_runs_at_once() -> None:
    """A call goes to an idle thread, and only otherwise starts one: a command that
    asks its sources one question after another starts one thread, not ``size``;
    calls that must run side by side (four that meet at a barrier) still get a
    thread each, however the threads are scheduled; the pool never grows past
    ``size``."""
    pool = DaemonPool(4, "share")
    names = {
        pool.submit(lambda: threading.current_thread().name).result(timeout=30) for _ in range(10)
    }
    assert names == {"share_0"} and len(pool._threads) == 1

    meet = threading.Barrier(4, timeout=30)  # broken (and raising) unless all four run at once
    burst = [pool.submit(meet.wait) for _ in range(4)]
    assert sorted(f.result(timeout=60) for f in burst) == [0, 1, 2, 3]
    assert len(pool._threads) == 4

    more = [pool.submit(pow, 2, n) for n in range(20)]
    assert [f.result(timeout=30) for f in more] == [2**n for n in range(20)]
    assert len(pool._threads) == 4  # never more than size
    pool.shutdown()


def test_a_burst_after_a_lone_call_gets_a_thread_for_each_call_every_time() -> None:
    """One idle thread, then four calls at once: the idle thread takes one and three
    threads start for the rest, every time. (A count of the threads waiting, taken
    as each one woke up, sometimes still counted a thread that had just taken a
    job, and left the fourth call queued behind a running one.)"""

    def hold(started: threading.Semaphore, release: threading.Event) -> None:
        started.release()
        release.wait(60)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads change hands often: the race comes out
    try:
        for round_ in range(200):
            pool = DaemonPool(4, f"burst{round_}")
            assert pool.submit(pow, 2, 2).result(timeout=30) == 4  # one thread, idle again
            started, release = threading.Semaphore(0), threading.Event()
            held = [pool.submit(hold, started, release) for _ in range(4)]
            assert len(pool._threads) == 4, round_
            assert all(started.acquire(timeout=30) for _ in range(4)), round_  # all four run
            release.set()
            for future in held:
                future.result(timeout=30)
            pool.shutdown()
    finally:
        sys.setswitchinterval(switch)
