"""The console's resident memory at a thousand models, with and without alerts.

Starts its own lab (``--models`` models, no registry, own ports and state dir), or
uses a running one (``--config``), then runs the real app headless (``run_test``)
in a child process per scenario, each with its own store, reading the child's own
``VmRSS`` after a full garbage collection:

* ``none``: the dashboard refreshing for ``--minutes`` with no alert firing; and again
  three phases in, and at least a minute past the sparklines' history window
  (``ui.history``), for "resolved" to be compared with a console whose history is full
  too: it fills for that window whatever fires. "Resolved" comes later still, by the
  time the page's first-breach reads took; the bench prints both ages;
* ``alerts``: ``--alerts`` alerts posted to the lab's Alertmanager (one per model,
  kept firing), ``--minutes`` later; then every alert cleared, and ``--minutes``
  later again ("cleared", their incidents still open); then ``--minutes`` later
  again ("resolved": the incidents resolved by themselves half a phase before,
  ``incidents.auto_resolve_after`` being set to 1.5 phases, and that phase starts
  once the page's first-breach reads are done), in the same process; and last once
  the sparklines' history has turned over (``ui.history`` and a minute more: "history
  turned over"), against the no-alert console's RSS at the minute nearest that age
  (it is sampled every minute after its own last phase);
* ``soak`` (with ``--soak-minutes``): the alerts firing and churning (a tenth of
  them resolve and as many fire on other models every minute, so the alerts seen
  grow while the alerts firing stay as many; their incidents resolve two minutes
  after their alerts stop), RSS sampled every minute: first, last and the
  least-squares slope in MB per minute.

It prints each figure and the ratios; only the ratios are meant to travel.

    python bench/memory.py [--models 1000] [--alerts 500] [--minutes 2] [--soak-minutes 30]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from console.memory import DASHBOARD_ARENAS, trim

ALERT = "ModelErrorBudgetBurn"


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


def alert_body(model: str, *, ends_in: float) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": ALERT, "model": model, "severity": "page", "sli": "error_ratio"},
        "annotations": {
            "summary": f"{model} is burning its error budget (memory bench)",
            "runbook": "model-regression",
        },
        "startsAt": (now - timedelta(seconds=1)).isoformat(),
        "endsAt": (now + timedelta(seconds=ends_in)).isoformat(),
    }


class Alerts:
    """Alerts posted straight to the lab's Alertmanager, as its rules would."""

    def __init__(self, url: str, models: list[str]) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=30)
        self.models = models
        self.firing: list[str] = []

    async def post(self, models: list[str], *, ends_in: float) -> None:
        body = [alert_body(m, ends_in=ends_in) for m in models]
        (await self.client.post("/api/v2/alerts", json=body)).raise_for_status()

    async def fire(self, models: list[str]) -> None:
        self.firing = models
        await self.post(models, ends_in=600)

    async def keep(self) -> None:
        """Post the firing ones again, so Alertmanager never resolves them by itself."""
        await self.post(self.firing, ends_in=600)

    async def clear(self, models: list[str] | None = None) -> None:
        gone = self.firing if models is None else models
        await self.post(gone, ends_in=0)
        self.firing = [m for m in self.firing if m not in set(gone)]


async def hold(app: Any, alerts: Alerts | None, minutes: float) -> None:
    """Let the app refresh for ``minutes``, keeping the alerts firing."""
    end = time.monotonic() + minutes * 60
    while time.monotonic() < end:
        await asyncio.sleep(min(30.0, max(0.0, end - time.monotonic())))
        if alerts is not None and alerts.firing:
            await alerts.keep()


async def connected(app: Any) -> Any:
    """The app's poller, once its sources are built (in a thread, at start)."""
    end = time.monotonic() + 120
    while app.poller is None:
        if time.monotonic() > end:
            raise SystemExit("the sources were not built within 120 s")
        await asyncio.sleep(0.1)
    return app.poller


async def child(scenario: str, config_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    from console.config.loader import load_config
    from screens.app import SnapshotUpdated, create_app

    config = load_config(config_path)
    # The lab's models past its three named ones: model-0004 on.
    models = [f"model-{n:04d}" for n in range(4, args.models + 1)]
    alerts = Alerts(str(config.sources["alertmanager"].url), models)
    snapshots = 0

    def count(message: object) -> None:
        nonlocal snapshots
        snapshots += isinstance(message, SnapshotUpdated)

    out: dict[str, Any] = {"scenario": scenario}
    trace = Trace()
    if args.arena_max:
        from console.memory import cap_arenas

        cap_arenas(args.arena_max)  # as the dashboard's start does, before any thread
    app = create_app(config)
    async with app.run_test(size=(160, 48), message_hook=count):
        await hold(app, None, 0.25)  # started, first snapshots in
        poller = await connected(app)
        if args.no_trim:
            poller.trimmer = None  # malloc keeps what it keeps, as before trimming
        out["start"] = rss_mb()
        started = time.monotonic()
        trace.mark("start")
        if scenario == "none":
            await hold(app, None, args.minutes)
            out["rss"], out["live"] = rss_mb(), live_mb()
            # Again once the sparklines' history is full and the console is as old as
            # the alerts scenario's last phase: what "resolved" is measured at, so
            # what the page left is told apart from what time fills (bounded).
            late = max(3 * args.minutes, config.ui.history / 60 + 1)
            await hold(app, None, late - args.minutes)
            out["late_min"] = (time.monotonic() - started) / 60
            out["rss_late"], out["live_late"] = rss_mb(), live_mb()
            trace.mark("none, history full")
            # And every minute after, as old as the alerts scenario's last measure
            # ("history turned over") may be: its age depends on how long the page's
            # first-breach reads take, so the parent picks the minute nearest to it.
            until = late + settle_minutes(config) + 2 * args.minutes
            aged = []
            while (time.monotonic() - started) / 60 < until:
                await hold(app, None, 1.0)
                aged.append(((time.monotonic() - started) / 60, rss_mb(), live_mb()))
            out["aged"] = aged
        elif scenario == "alerts":
            await alerts.fire(models[: args.alerts])
            await hold(app, alerts, args.minutes)
            out["rss"], out["live"] = rss_mb(), live_mb()
            trace.mark("alerts firing")
            out["incidents"] = len(app.open_incidents)
            await alerts.clear()
            await hold(app, alerts, args.minutes)
            out["cleared"], out["live_cleared"] = rss_mb(), live_mb()
            trace.mark("alerts cleared")
            out["incidents_after"] = len(app.open_incidents)
            # Their incidents resolve by themselves (incidents.auto_resolve_after, set
            # to 1.5 phases): what is left is what the console keeps once the page is
            # over, alerts gone and incidents closed. The page's first-breach reads go
            # one at a time (minutes for 500 on a lab's Prometheus): the page is over
            # once they are done, and the phase starts then.
            out["backlog_s"] = await breaches_read(app, limit=900)
            await hold(app, alerts, args.minutes)
            out["resolved"], out["live_resolved"] = rss_mb(), live_mb()
            out["resolved_min"] = (time.monotonic() - started) / 60
            trace.mark("incidents resolved")
            out["incidents_resolved"] = len(app.open_incidents)
            # Once the sparklines' history has turned over, none of it is from the page:
            # what the page's objects took, in pymalloc's arenas, is given back as the
            # history that kept them partly full ages out.
            await hold(app, None, settle_minutes(config))
            out["settled"], out["live_settled"] = rss_mb(), live_mb()
            out["settled_min"] = (time.monotonic() - started) / 60
            trace.mark("history turned over")
        else:  # soak
            await alerts.fire(models[: args.alerts])
            samples, blocks, sqlite, lives = [], [], [], []
            churn = max(1, args.alerts // 10)
            spare = models[args.alerts :]
            for minute in range(int(args.soak_minutes)):
                await hold(app, alerts, 1.0)
                samples.append(rss_mb())
                blocks.append(sys.getallocatedblocks())
                sqlite.append(sqlite_mb())
                lives.append(live_mb())
                print(
                    f"soak minute {minute + 1}: {samples[-1]:.1f} MB ({breakdown()})",
                    file=sys.stderr,
                    flush=True,
                )
                if args.trace_every and (minute + 1) % args.trace_every == 0:
                    trace.mark(f"soak minute {minute + 1}")
                # A tenth resolve, as many fire elsewhere: as many firing, more seen.
                gone, new = alerts.firing[:churn], spare[:churn]
                spare = spare[churn:] + gone
                await alerts.clear(gone)
                await alerts.post(new, ends_in=600)
                alerts.firing += new
            out["samples"], out["blocks"], out["sqlite"] = samples, blocks, sqlite
            out["lives"] = lives
            # What malloc holds free (returned to the system by a trim), at the end only:
            # trimming along the way would change what is measured.
            trim()
            out["trimmed"] = rss_mb()
            out["history_minutes"] = config.ui.history / 60
        await alerts.clear(alerts.firing)
    await alerts.client.aclose()
    out["snapshots"] = snapshots
    trimmer = poller.trimmer
    if trimmer is not None:
        out["trims"], out["trim_ms"] = trimmer.trims, trimmer.seconds * 1000
        out["trim_longest_ms"] = trimmer.longest * 1000
    return out


def settle_minutes(config: Any) -> float:
    """Minutes for the sparklines' history to turn over (``ui.history``), and one more."""
    return float(config.ui.history) / 60 + 1


async def breaches_read(app: Any, limit: float) -> float:
    """Wait until the app has read the first breach of every incident it opened, up
    to ``limit`` seconds; return the seconds waited."""
    start = time.monotonic()
    while app.first_breaches_pending and time.monotonic() - start < limit:
        await asyncio.sleep(1.0)
    return time.monotonic() - start


def slope(samples: list[float]) -> float:
    """Least-squares MB per sample (per minute)."""
    n = len(samples)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, statistics.fmean(samples)
    top = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(samples))
    return top / sum((x - mean_x) ** 2 for x in range(n))


def run_child(scenario: str, config: Path, args: argparse.Namespace) -> dict[str, Any]:
    # Children run as this process was run (-S: another checkout on PYTHONPATH).
    command = [sys.executable, *(["-S"] if sys.flags.no_site else []), __file__]
    command += ["--child", scenario, "--config", str(config)]
    # The audit log and anything else kept under XDG_STATE_HOME: the scenario's own.
    env = {**os.environ, "XDG_STATE_HOME": str(config.with_suffix(".state"))}
    command += ["--models", str(args.models), "--alerts", str(args.alerts)]
    command += ["--minutes", str(args.minutes), "--soak-minutes", str(args.soak_minutes)]
    command += ["--trace-every", str(args.trace_every)]
    command += ["--arena-max", str(args.arena_max)] + (["--no-trim"] if args.no_trim else [])
    print(f"  {scenario} ...", file=sys.stderr)
    # The child's stderr (the trace, a failure's traceback) passes through.
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, env=env)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def own_config(
    lab_config: Path, directory: Path, scenario: str, timeout: float, minutes: float
) -> Path:
    """The lab's config with a store of the scenario's own, so none inherits incidents,
    and Prometheus given ``timeout`` seconds: a long answer is read, not dropped (on
    this lab a fleet-wide range query takes over the 3 s the lab's config allows)."""
    data = yaml.safe_load(lab_config.read_text())
    data["sources"]["prometheus"]["timeout"] = timeout
    data["store"] = {"path": str(directory / f"{scenario}.db")}
    data.setdefault("incidents", {})["export_dir"] = str(directory / "exports")
    if scenario == "alerts":
        # The page's incidents resolve half a phase after "cleared" is measured, so
        # the phase after it measures the console with the page over.
        data["incidents"]["auto_resolve_after"] = f"{round(minutes * 90)}s"
    if scenario == "soak":
        # Churned alerts' incidents resolve two minutes after their alerts stop, so the
        # open incidents follow the alerts firing now, as a team's would with its own
        # setting (the default, an hour, would outlast the soak).
        data["incidents"]["auto_resolve_after"] = "2m"
    path = directory / f"{scenario}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def measure(lab_config: Path, directory: Path, args: argparse.Namespace) -> None:
    scenarios = args.scenarios or ["none", "alerts"] + (["soak"] if args.soak_minutes else [])
    print(
        f"{args.models} models, {args.alerts} alerts, {args.minutes} min per phase",
        file=sys.stderr,
    )
    got = {}
    for scenario in scenarios:
        config = own_config(lab_config, directory, scenario, args.timeout, args.minutes)
        got[scenario] = run_child(scenario, config, args)
    print(f"models: {args.models}, alerts: {args.alerts}, minutes per phase: {args.minutes}")
    none, alerts = got.get("none"), got.get("alerts")
    if none is not None:
        print(f"no alerts:            RSS {none['rss']:7.1f} MB ({none['snapshots']} snapshots)")
    if alerts is not None:
        print(
            f"{args.alerts} alerts firing:    RSS {alerts['rss']:7.1f} MB "
            f"({alerts['incidents']} open incidents)"
        )
        print(
            f"after they cleared:   RSS {alerts['cleared']:7.1f} MB "
            f"({alerts['incidents_after']} open incidents; {alerts['snapshots']} snapshots)"
        )
        print(
            f"incidents resolved:   RSS {alerts['resolved']:7.1f} MB "
            f"({alerts['incidents_resolved']} open incidents; the page's first-breach "
            f'reads were done {alerts["backlog_s"]:.0f} s after "cleared")'
        )
    if none is not None and alerts is not None:
        print(f"ratio alerts / none:  {alerts['rss'] / none['rss']:.2f}x")
        print(f"ratio cleared / none: {alerts['cleared'] / none['rss']:.2f}x")
        print(f"ratio resolved / none: {alerts['resolved'] / none['rss']:.2f}x")
        print(
            f"ratio resolved ({alerts['resolved_min']:.1f} min in) / none at "
            f"{none['late_min']:.1f} min in (history full in both): "
            f"{alerts['resolved'] / none['rss_late']:.2f}x "
            f"(none then: RSS {none['rss_late']:.1f} MB, held {none['live_late']:.1f} MB; "
            f"held resolved / none then {alerts['live_resolved'] / none['live_late']:.2f}x)"
        )
        age, rss, live = min(none["aged"], key=lambda a: abs(a[0] - alerts["settled_min"]))
        print(
            f"ratio history turned over ({alerts['settled_min']:.1f} min in) / none at "
            f"{age:.1f} min in: {alerts['settled'] / rss:.2f}x (RSS {alerts['settled']:.1f} "
            f"vs {rss:.1f} MB; held {alerts['live_settled']:.1f} vs {live:.1f} MB, "
            f"{alerts['live_settled'] / live:.2f}x)"
        )
        # What the program holds (Python's live blocks, malloc's in use), apart from
        # what the allocators keep free after a busier moment.
        print(
            f"held by the program: none {none['live']:.1f} MB, alerts {alerts['live']:.1f} MB "
            f"({alerts['live'] / none['live']:.2f}x), cleared {alerts['live_cleared']:.1f} MB "
            f"({alerts['live_cleared'] / none['live']:.2f}x), resolved "
            f"{alerts['live_resolved']:.1f} MB ({alerts['live_resolved'] / none['live']:.2f}x)"
        )
    for name, result in got.items():
        if "trims" in result:
            print(
                f"{name}: {result['trims']} malloc trims in the state thread, "
                f"{result['trim_ms']:.1f} ms in all, longest {result['trim_longest_ms']:.1f} ms"
            )
    if "soak" in got:
        soak = got["soak"]
        samples = soak["samples"]
        print(
            f"soak {len(samples)} min: first {samples[0]:.1f} MB, last {samples[-1]:.1f} MB, "
            f"slope {slope(samples):+.2f} MB/min, ratio last / first "
            f"{samples[-1] / samples[0]:.2f}x"
        )
        # The sparklines' history fills for its window (ui.history) after the start:
        # growth until then is the history, bounded; after it, growth is not.
        full = math.ceil(soak["history_minutes"])
        if len(samples) > full + 2:
            after = samples[full:]
            print(
                f"soak from minute {full + 1} (sparkline history full): {after[0]:.1f} -> "
                f"{after[-1]:.1f} MB, slope {slope(after):+.2f} MB/min"
            )
        for minute in range(10, len(samples) + 1, 10):
            print(
                f"  at {minute} min: RSS {samples[minute - 1]:.1f} MB, Python blocks "
                f"{soak['blocks'][minute - 1]:,}, SQLite {soak['sqlite'][minute - 1]:.1f} MB"
            )
        print(f"  at the end, after malloc_trim: RSS {soak['trimmed']:.1f} MB")
        lives = soak["lives"]
        print(
            f"held by the program (Python's live blocks, malloc in use): first "
            f"{lives[0]:.1f} MB, last {lives[-1]:.1f} MB, slope {slope(lives):+.2f} MB/min"
        )
        print("soak samples (MB): " + " ".join(f"{s:.0f}" for s in samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=500)
    parser.add_argument("--minutes", type=float, default=2.0, help="per phase (default 2)")
    parser.add_argument("--soak-minutes", type=float, default=0.0, help="0: no soak")
    parser.add_argument("--timeout", type=float, default=120.0, help="Prometheus' (seconds)")
    parser.add_argument("--base-port", type=int, default=39290)
    parser.add_argument("--config", type=Path, help="a running lab's config: start none")
    parser.add_argument(
        "--scenarios",
        type=lambda text: text.split(","),
        help="comma-separated: which of none,alerts,soak to run (default: all asked for)",
    )
    parser.add_argument(
        "--trace-every",
        type=int,
        default=0,
        metavar="MINUTES",
        help="with MLCONSOLE_BENCH_TRACE: mark what grew every so many soak minutes",
    )
    parser.add_argument(
        "--no-trim",
        action="store_true",
        help="the poller never trims malloc's free heap (to compare with trimming)",
    )
    parser.add_argument(
        "--arena-max",
        type=int,
        default=DASHBOARD_ARENAS,
        metavar="N",
        help="cap malloc's arenas at N (glibc's M_ARENA_MAX) as the dashboard does "
        f"(default {DASHBOARD_ARENAS}, as the dashboard); 0: glibc's default, eight per core",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child, args.config, args))))
        return
    if args.alerts + max(1, args.alerts // 10) > args.models - 3:
        parser.error("--alerts: too many for --models (the soak fires a tenth more elsewhere)")
    with tempfile.TemporaryDirectory(prefix="mlconsole-bench-") as tmp:
        if args.config is not None:
            measure(args.config, Path(tmp), args)
            return
        from lab import control
        from lab.configs import Ports

        ports = Ports(args.base_port, args.base_port + 3, args.base_port + 10)
        print(f"starting a lab with {args.models} models ...", file=sys.stderr)
        info = control.up(Path(tmp), models=args.models, ports=ports, timeout=120, registry=False)
        try:
            measure(Path(info.config_path), Path(tmp), args)
        finally:
            control.down(Path(tmp))


if __name__ == "__main__":
    main()
