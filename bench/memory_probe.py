"""What a process holds, measured from inside it: its resident set, Python's live
objects, the allocator's arenas, SQLite's page cache; and, for diagnosis, what grew
and where it was allocated (``MLCONSOLE_BENCH_TRACE``). Used by bench/memory.py."""

from __future__ import annotations

import asyncio
import gc
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from console.memory import trim


class Trace:
    """With MLCONSOLE_BENCH_TRACE set: what grew, by type (gc) since the last mark and
    by allocation site (tracemalloc, with that many frames) since the first, on stderr.
    Slows the app: diagnosis only."""

    def __init__(self) -> None:
        import tracemalloc

        frames = os.environ.get("MLCONSOLE_BENCH_TRACE")
        self.on = frames is not None
        self.base: Any = None
        self.types: dict[str, int] = {}
        self.sizes: dict[str, int] = {}
        if frames and int(frames):
            tracemalloc.start(int(frames))

    def mark(self, what: str) -> None:
        import collections
        import tracemalloc

        if not self.on:
            return
        gc.collect()
        before = rss_mb()
        trim()
        current, peak = tracemalloc.get_traced_memory()
        print(
            f"--- {what}: RSS {before:.1f} MB, after malloc_trim {rss_mb():.1f} MB; "
            f"traced {current / 1e6:.1f} MB (peak {peak / 1e6:.1f}); "
            f"{len(gc.get_objects())} objects, {len(asyncio.all_tasks())} tasks",
            file=sys.stderr,
        )
        print(f"--- {what}: {breakdown()}; {held()}", file=sys.stderr)
        tasks = collections.Counter(
            getattr(t.get_coro(), "__qualname__", "?") for t in asyncio.all_tasks()
        )
        print(f"--- {what}: tasks {tasks.most_common(8)}", file=sys.stderr)
        types: collections.Counter[str] = collections.Counter()
        sizes: collections.Counter[str] = collections.Counter()
        for o in gc.get_objects():
            name = type(o).__qualname__
            types[name] += 1
            sizes[name] += sys.getsizeof(o)
        if self.types:
            grown = {
                t: (n - self.types.get(t, 0), sizes[t] - self.sizes.get(t, 0))
                for t, n in types.items()
            }
            top = sorted(grown.items(), key=lambda kv: -kv[1][1])[:20]
            print(
                f"--- {what}: growth by type (objects, bytes of their own) "
                + ", ".join(f"{t} {n:+d} {b / 1e6:+.2f} MB" for t, (n, b) in top),
                file=sys.stderr,
            )
        self.types, self.sizes = dict(types), dict(sizes)
        for name in filter(None, os.environ.get("MLCONSOLE_BENCH_OWNERS", "").split(",")):
            print(f"--- {what}: who holds {name}: {owners(name)}", file=sys.stderr)
        if not tracemalloc.is_tracing():
            return
        snap = tracemalloc.take_snapshot()
        if self.base is not None:
            # Against the first mark: what is left now of all that grew since it.
            print(f"--- {what}: top growth by site since the first mark", file=sys.stderr)
            for stat in snap.compare_to(self.base, "traceback")[:20]:
                print(f"{stat.size_diff / 1e6:+8.2f} MB {stat.count_diff:+8d}", file=sys.stderr)
                for line in stat.traceback.format()[-12:]:
                    print("      " + line, file=sys.stderr)
        else:
            self.base = snap


def owners(name: str, samples: int = 3, depth: int = 4) -> str:
    """Diagnosis only: for a few live objects of type ``name``, the chains of objects
    that refer to them (type, and for a dict or an object its attribute or key), up to
    ``depth`` steps, skipping this frame's own lists."""
    import collections
    import types as pytypes

    objects = gc.get_objects()
    found = [o for o in objects if type(o).__qualname__ == name][:samples]
    del objects
    chains: collections.Counter[str] = collections.Counter()

    def label(holder: object, held: object) -> str:
        if isinstance(holder, dict):
            key = next((k for k, v in holder.items() if v is held), "?")
            return f"dict[{str(key)[:30]}]"
        return type(holder).__qualname__

    def walk(obj: object, path: list[str], seen: set[int], level: int) -> None:
        if level == depth:
            chains[" <- ".join(path)] += 1
            return
        holders = [
            h
            for h in gc.get_referrers(obj)
            if id(h) not in seen
            and not isinstance(h, pytypes.FrameType)
            and h is not found
            and h is not path
        ][:4]
        if not holders:
            chains[" <- ".join(path)] += 1
        for holder in holders:
            walk(holder, [*path, label(holder, obj)], seen | {id(holder)}, level + 1)

    for obj in found:
        walk(obj, [name], {id(found), id(obj)}, 0)
    return "; ".join(f"{n}x {c}" for c, n in chains.most_common(12))


def breakdown() -> str:
    """Where the resident set is, from /proc/self/smaps: the main heap, thread stacks
    (8 MB anonymous maps right above a guard page: malloc's thread arenas are
    anonymous maps too, and one may be 8 MB at the moment), other anonymous maps
    (malloc's thread arenas, Python's object arenas, large blocks) and files; with the
    live threads and Python blocks."""
    import threading

    kinds = dict.fromkeys(("heap", "stacks", "anon", "files"), 0)
    kind = "anon"
    guard_end = -1  # where the last inaccessible page-sized map ended
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if "-" in head[0] and len(head) >= 5:  # a mapping: address perms offset dev inode
            start, end = (int(x, 16) for x in head[0].split("-"))
            name = head[5] if len(head) > 5 else ""
            if name == "[heap]":
                kind = "heap"
            elif name.startswith("/"):
                kind = "files"
            elif not name and end - start == 8 << 20 and start == guard_end:
                kind = "stacks"
            else:
                kind = "anon"
            guard = head[1].startswith("---") and end - start <= 64 << 10
            guard_end = end if guard else -1
        elif head[0] == "Rss:":
            kinds[kind] += int(head[1])
    parts = " ".join(f"{k} {v / 1024:.1f}" for k, v in kinds.items())
    return (
        f"{parts} MB; SQLite {sqlite_mb():.1f} MB; {threading.active_count()} threads, "
        f"{sys.getallocatedblocks()} Python blocks; {pymalloc_mb()}; {malloc_mb()}"
    )


def held() -> str:
    """How many snapshots and readings are alive: more than one generation of them
    is what a peak of live blocks is made of, if anything of the app's.

    Diagnosis only (the trace's marks): ``gc.get_objects()`` takes a reference to
    every object, even a tuple another thread is still building, and that thread
    then fails ("bad argument to internal function" in ``_PyTuple_Resize``)."""
    import collections

    wanted = {"Snapshot", "SliReading", "AlertRecord", "Incident", "Survey"}
    count = collections.Counter(
        name for o in gc.get_objects() if (name := type(o).__name__) in wanted
    )
    return ", ".join(f"{count[name]} {name}" for name in sorted(wanted))


def malloc_stats() -> dict[str, float] | None:
    """What glibc's malloc holds over every arena (mallinfo2), in MB: ``used`` by the
    program, ``free`` but kept, ``mmapped`` blocks; and its ``arenas``. None where
    there is no glibc."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in (
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            )
        ]

    try:
        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = MallInfo2
    except (OSError, AttributeError):
        return None
    info = libc.mallinfo2()
    arenas = sum(1 for line in malloc_info().splitlines() if line.startswith("<heap nr="))
    return {
        "used": info.uordblks / 2**20,
        "free": info.fordblks / 2**20,
        "mmapped": info.hblkhd / 2**20,
        "arenas": arenas,
    }


def malloc_mb() -> str:
    found = malloc_stats()
    if found is None:
        return ""
    return (
        f"malloc in use {found['used']:.1f} free {found['free']:.1f} "
        f"mmapped {found['mmapped']:.1f} MB in {found['arenas']:.0f} arenas"
    )


def malloc_info() -> str:
    """glibc's malloc_info XML (one <heap> per arena), through a temporary file."""
    import ctypes

    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.NamedTemporaryFile(suffix=".xml") as out:
        stream = libc.fopen(out.name.encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        return Path(out.name).read_text()


def pymalloc_stats() -> dict[str, int]:
    """Python's own allocator (objects of 512 bytes or less), from
    sys._debugmallocstats (written to fd 2, so caught there): ``arenas allocated
    current`` (1 MiB each), ``bytes in allocated blocks`` (the live ones), and more."""
    with tempfile.TemporaryFile("w+") as out:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        stats = out.read()
    found = {}
    for line in stats.splitlines():
        if line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            found[name.strip("# ").strip()] = int(value.strip().replace(",", ""))
    return found


def pymalloc_mb() -> str:
    found = pymalloc_stats()
    return (
        f"pymalloc {found.get('arenas allocated current', 0)} arenas, "
        f"live blocks {found.get('bytes in allocated blocks', 0) / 2**20:.1f} MB"
    )


def live_mb() -> float:
    """What the program holds, whatever the allocators keep: the bytes of Python's
    live small blocks plus malloc's bytes in use and mmapped, in MB (NaN without
    glibc). RSS is this plus what the allocators keep free."""
    found = malloc_stats()
    if found is None:
        return math.nan
    small = pymalloc_stats().get("bytes in allocated blocks", 0) / 2**20
    return small + found["used"] + found["mmapped"]


def sqlite_mb() -> float:
    """What SQLite holds (its page caches, statements, schemas), in MB; NaN where its
    library cannot be asked."""
    import ctypes

    try:
        library = ctypes.CDLL("libsqlite3.so.0")
    except OSError:
        return math.nan
    library.sqlite3_memory_used.restype = ctypes.c_int64
    return float(library.sqlite3_memory_used()) / 2**20


def rss_mb() -> float:
    """This process's resident set, in MB, after a full collection."""
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmRSS in /proc/self/status")
