"""Target locks: one holder per target across processes, leases that run out."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from console.actions.locks import LockBusy, LockError, SqliteTargetLock, UnavailableLock

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from console.actions.locks import SqliteTargetLock

    locks = SqliteTargetLock(Path(sys.argv[1]))
    lease = locks.try_acquire("alias:fraud-detector@champion", "other@console", 60)
    print("held", flush=True)
    sys.stdin.readline()  # hold it until the test says so
    locks.release(lease)
    print("released", flush=True)
    """
)


def _holder(store: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_target_held_by_another_process_is_busy_until_its_lease_runs_out(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store.db"
    proc = _holder(store)
    try:
        here = SqliteTargetLock(store)
        with pytest.raises(LockBusy) as busy:
            here.try_acquire("alias:fraud-detector@champion", "me@console", 60)
        assert busy.value.lease.holder == "other@console"
        assert "other@console holds alias:fraud-detector@champion" in str(busy.value)
        # Another target is free meanwhile.
        here.release(here.try_acquire("alias:credit-risk@champion", "me@console", 60))
        # The holder is stuck (as if it had crashed): past its lease, the target is free.
        later = SqliteTargetLock(store, clock=lambda: time.time() + 61)
        taken = later.try_acquire("alias:fraud-detector@champion", "me@console", 60)
        assert later.holder("alias:fraud-detector@champion") == taken
        # The old holder wakes up and releases: the new lease is not its to release.
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "released"
        assert later.holder("alias:fraud-detector@champion") == taken
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_a_released_target_is_free_at_once_in_another_process(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    proc = _holder(store)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "released"
    proc.wait(timeout=30)
    here = SqliteTargetLock(store)
    lease = here.try_acquire("alias:fraud-detector@champion", "me@console", 60)
    assert here.holder("alias:fraud-detector@champion") == lease


async def test_acquire_waits_for_the_holder_and_says_who_it_is(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    other = SqliteTargetLock(store)
    held = other.try_acquire("switch:fallback:fraud-detector", "bob@ops", 60)
    here = SqliteTargetLock(store)
    told: list[str] = []
    polls: list[float] = []

    async def poll(seconds: float) -> None:
        polls.append(seconds)
        other.release(held)  # bob finishes while we wait

    lease = await here.acquire(
        "switch:fallback:fraud-detector",
        "ana@ops",
        60,
        wait=30,
        on_wait=lambda busy: told.append(busy.describe()),
        sleep=poll,
    )
    assert lease.holder == "ana@ops" and len(polls) == 1
    assert told and told[0].startswith("bob@ops holds switch:fallback:fraud-detector")


async def test_acquire_gives_up_after_its_wait(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    SqliteTargetLock(store).try_acquire("alias:m@champion", "bob@ops", 60)
    now = [0.0]

    async def poll(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(LockBusy, match="bob@ops holds alias:m@champion"):
        await SqliteTargetLock(store).acquire(
            "alias:m@champion", "ana@ops", 60, wait=1.0, sleep=poll, clock=lambda: now[0]
        )
    assert now[0] >= 1.0


def test_an_unusable_store_refuses_every_lock(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(LockError, match="cannot open the target locks"):
        SqliteTargetLock(tmp_path / "dir")
    with pytest.raises(LockError, match="the store is gone"):
        UnavailableLock("the store is gone").try_acquire("alias:m@champion", "ana@ops", 60)


async def test_taking_a_lock_while_the_store_is_being_written_leaves_the_event_loop_free(
    tmp_path: Path,
) -> None:
    """SQLite waits up to its busy timeout for another process's write: that wait
    happens in a thread, so the keys (the event loop) go on meanwhile."""
    import asyncio

    from tests.sqlite_writer import another_writer

    store = tmp_path / "store.db"
    here = SqliteTargetLock(store)  # the schema exists before the writer starts
    try:
        with another_writer(store) as finish_writing:
            taking = asyncio.create_task(
                here.acquire("alias:m@champion", "me@console", 60, wait=60)
            )
            await asyncio.sleep(0)  # the take starts and waits for the store's write lock
            # The loop runs while it waits: this ends the other write. On a loop
            # blocked by the take, it would run only after SQLite gave up (LockError).
            finish_writing()
            lease = await taking
        assert here.holder("alias:m@champion") == lease
    finally:
        here.close()
