"""Giving malloc's free heap back to the system: glibc's malloc_trim, a no-op elsewhere."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

from console import memory
from console.memory import HeapTrimmer
from console.sources.poller import Poller
from tests.builders import CONFIG

glibc_only = pytest.mark.skipif(
    not memory.can_trim(), reason="malloc_trim is glibc's: this C library keeps its own heap"
)


def resident_mb() -> float:
    """This process's resident set from /proc/self/statm (its second field, in pages)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@glibc_only
def test_trim_gives_freed_heap_back_to_the_system() -> None:
    libc = ctypes.CDLL(None)
    libc.malloc.argtypes, libc.malloc.restype = [ctypes.c_size_t], ctypes.c_void_p
    libc.free.argtypes, libc.free.restype = [ctypes.c_void_p], None
    # 48 MB in blocks below malloc's mmap threshold, so they come from the heap, written
    # so they are resident; then one block above them, so that freeing them leaves free
    # pages inside the heap, which free() alone never returns (only the heap's top).
    blocks = [libc.malloc(1000) for _ in range(48_000)]
    for block in blocks:
        ctypes.memset(block, 1, 1000)
    pin = libc.malloc(1000)
    held = resident_mb()
    for block in blocks:
        libc.free(block)
    freed = resident_mb()
    assert freed > held - 16, "free() gave the pages back by itself: nothing to show"
    assert memory.trim() is True
    trimmed = resident_mb()
    libc.free(pin)
    assert trimmed < freed - 30, f"RSS {freed:.1f} MB before the trim, {trimmed:.1f} after"


#: Run in a child: arenas are the whole process's, and this one's threads have theirs.
ARENAS_IN_A_CHILD = """
import ctypes, sys, tempfile, threading
from console import memory

if sys.argv[1] != "0":
    assert memory.cap_arenas(int(sys.argv[1]))
libc = ctypes.CDLL(None)
libc.malloc.argtypes, libc.malloc.restype = [ctypes.c_size_t], ctypes.c_void_p
started, stop = threading.Barrier(9), threading.Event()

def allocate():  # each thread allocates while all the others do, then waits
    held = [libc.malloc(1000) for _ in range(100)]
    started.wait()
    stop.wait()

threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
started.wait()
libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes, libc.fclose.argtypes = [ctypes.c_int, ctypes.c_void_p], [ctypes.c_void_p]
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    stream = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print(open(out.name).read().count("<heap nr="))
stop.set()
"""


def arenas_in_a_child(cap: int) -> int:
    """How many malloc arenas a process with 8 allocating threads has, with ``cap``."""
    done = subprocess.run(
        [sys.executable, "-c", ARENAS_IN_A_CHILD, str(cap)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


@glibc_only
def test_capping_arenas_makes_threads_share_them() -> None:
    # Eight threads allocating at once get arenas of their own (glibc allows eight
    # per core); capped at two, they share the two.
    assert arenas_in_a_child(0) > 2
    assert arenas_in_a_child(memory.DASHBOARD_ARENAS) == memory.DASHBOARD_ARENAS


def test_the_dashboard_caps_arenas_before_the_app_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import screens.app
    from console.cli import main as cli

    calls: list[str] = []

    class App:
        return_code = 0

        def run(self) -> None:
            calls.append("run")

    def create_app(*args: object, **kwargs: object) -> App:
        calls.append("create_app")
        return App()

    monkeypatch.setattr(memory, "cap_arenas", lambda count: calls.append(f"cap {count}"))
    monkeypatch.setattr(screens.app, "create_app", create_app)
    config = tmp_path / "mlconsole.yaml"
    config.write_text(
        "sources:\n"
        "  prometheus: {type: prometheus, url: 'http://127.0.0.1:1'}\n"
        "slis:\n"
        "  - {name: error_ratio, title: Errors, query: e, objective: '< 0.01'}\n"
    )
    assert cli.main(["--config", str(config)]) == 0
    assert calls == [f"cap {memory.DASHBOARD_ARENAS}", "create_app", "run"]


def test_without_malloc_trim_every_call_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert memory._libc() is None  # macOS's malloc is not glibc's: not even looked for
    monkeypatch.setattr(memory, "_LIBC", None)
    assert memory.can_trim() is False
    assert memory.trim() is False
    assert memory.cap_arenas(2) is False
    # The poller then keeps no trimmer, so it never schedules a trim.
    assert Poller(CONFIG, {}).trimmer is None


def test_a_linux_c_library_without_malloc_trim_is_a_no_op(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Musl:
        """A C library as musl's: malloc, no malloc_trim."""

        malloc = object()

        def __getattr__(self, name: str) -> object:
            raise AttributeError(name)

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: Musl())
    assert memory._libc() is None


def test_the_trimmer_trims_once_a_minute_and_soon_after_what_is_held_falls() -> None:
    now = [0.0]
    trims: list[float] = []

    def trim() -> bool:
        trims.append(now[0])
        now[0] += 0.004  # a trim takes its time: counted in ``seconds`` and ``longest``
        return True

    trimmer = HeapTrimmer(interval=60, soon=5, clock=lambda: now[0], trim=trim)

    def at(t: float, held: int) -> bool:
        now[0] = t
        due = trimmer.due(held)
        if due:
            trimmer.run()
        return due

    assert not at(1, 500)  # alerts rise: nothing to give back yet
    assert not at(30, 500)
    assert at(60, 500)  # a minute since it started
    assert not at(61, 500)
    assert not at(62, 10)  # fell, but a trim ran 2 s ago: soon, not now
    assert at(65.5, 10)  # the fall is remembered until its trim has run
    assert not at(70, 10)
    assert not at(75, 10)
    assert at(125.5, 10)  # a minute after the last trim
    assert trims == [60, 65.5, 125.5]
    assert trimmer.trims == 3
    assert trimmer.seconds == pytest.approx(0.012)
    assert trimmer.longest == pytest.approx(0.004)
