"""Key to paint: the dashboard at 1,000 models with 500 alerts firing against 3 models.

Two synthetic fleets (:mod:`bench.fleet`, served from this process) stand in for
Prometheus and Alertmanager: 3 models with one alert firing (``--small-alerts``), and
``--models`` models with ``--alerts`` alerts firing. ``enter`` is pressed on the first
model, which fires on both sides, so both open the same kind of screen: an alert in
full (with ``--small-alerts 0`` the small side opens a model's "no alerts" detail,
which is less to draw). Their values move on every call, so both consoles keep
refreshing at the lab config's intervals (``--interval`` to change them). Each console
is the real :class:`~screens.app.MLConsoleApp` with its real adapters and poller, run
headless at 160x48 through ``App.run_test()``, in a child process of its own; the
children take turns (small, big, small, big, ...) so the machine's noise falls on
both alike.

**What is timed.** A key goes in as a terminal's driver would send it
(``driver.send_message(Key)``, from the moment it is sent), and the clock stops when
the app writes the first frame that shows its effect: ``App._display`` is wrapped,
and each frame it is handed is checked against what the key must change (the models
table's cursor row for ``down``/``up``, the alert detail screen on top for ``enter``,
the dashboard back on top for ``escape``). Headless, Textual computes each frame but
does not serialize it for a terminal, so the wrapper does that too
(``render_segments``), as a real terminal's frame costs. A frame is only produced
once the key's handler has run and the screen's update timer has fired, so a key
that waits behind a snapshot's render waits here too. ``pilot.press`` is not used
for the timed keys: it waits for the app to go idle, which is not what a user waits
for.

**When.** A page of 500 alerts opens 500 incidents at once, and for each the
console reads when its SLI first breached: 500 range queries, parsed and kept one
after another in a worker thread (10-15 s at 1,000 models). ``--phase steady``
(the default) times the keys once those reads are done, with every source
refreshing; ``--phase storm`` times them from the moment the incidents are open,
while the reads go on.

Between keys a random pause (0.05–0.4 s) puts the keys at every phase of the
refresh cycle. Keys cycle ``down down up up enter escape``.

**How far a ratio goes.** Beside each ratio it prints the middle 90% of that ratio
over 1,000 bootstrap resamples of the keys timed. The p50 of all keys falls between
the cursor keys and the screen keys, where there are few of either, so it moves far
from one run to the next; more keys (``--keys``, ``--runs``) narrow it.

**Quit.** After the keys, ``q`` is sent; the child reports the time until the app's
run loop ends and until ``asyncio.run`` has returned (worker threads joined), then
ends as ``mlconsole`` does after its dashboard (:func:`console.cli.main.leave_the_heap`),
and the parent reports the time until the child process has exited: what a user
waits for.

    python bench/keys.py [--models 1000] [--alerts 500] [--keys 60] [--runs 3] [--phase storm]
    python bench/keys.py --config PATH   # the big side reads PATH instead of a fleet
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.key_stats import groups_of, ratio_interval, report

#: The cycle of timed keys; each leaves the cursor and screens as they were.
KEYS = ("down", "down", "up", "up", "enter", "escape")
SIZE = (160, 48)


@dataclass
class Side:
    """One console under test: its config and what it must show before keys go in."""

    name: str
    config: Path
    models: int | None
    alerts: int | None


# -- the child: one console, timed ------------------------------------------------


async def _until(check: Any, deadline: float, what: str) -> None:
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def child(
    config_path: Path,
    models: int | None,
    alerts: int | None,
    keys: int,
    seed: int,
    steady: bool = True,
) -> dict[str, Any]:
    from textual import events
    from textual.widgets import DataTable

    from console.config.loader import load_config
    from screens.alert_detail import AlertDetailScreen
    from screens.app import create_app
    from screens.dashboard import DashboardScreen

    config = load_config(config_path)
    app = create_app(config)
    rng = random.Random(seed)
    result: dict[str, Any] = {"keys": {}}
    waiting: list[tuple[Any, asyncio.Future[float]]] = []
    original = app._display

    def display(screen: Any, renderable: Any) -> None:
        original(screen, renderable)
        if renderable is None:
            return
        # Headless Textual skips turning the frame into terminal bytes; a terminal cannot.
        if hasattr(renderable, "render_segments"):
            renderable.render_segments(app.console)
        if waiting:
            check, future = waiting[0]
            if check(screen) and not future.done():
                future.set_result(time.perf_counter())

    app._display = display  # type: ignore[method-assign]

    async with app.run_test(size=SIZE) as pilot:
        start = time.monotonic()
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        table = dashboard.query_one("#models", DataTable)
        alerts_table = dashboard.query_one("#alerts", DataTable)

        def ready() -> bool:
            snapshot = app.snapshot
            shown = len(snapshot.models)
            if models is not None and shown < models:
                return False
            if alerts is not None and len(snapshot.firing) < alerts:
                return False
            if alerts and len(app.open_incidents) < alerts:
                return False
            # A config's fleet (--config) is not known in advance: every source has
            # answered, and each alert firing has its incident.
            if any(s.last_success is None for s in snapshot.sources.values()):
                return False
            opens_all = app.config.incidents.auto_open and not app.config.incidents.severities
            if app.incidents is not None and opens_all:
                groups = {(a.model, a.name) for a in snapshot.firing}
                if len(app.open_incidents) < len(groups):
                    return False
            return (
                shown > 0
                and table.row_count == shown
                and alerts_table.row_count == len(snapshot.alerts)
            )

        await _until(ready, start + 300, "the dashboard to show every model and alert")
        result["ready_s"] = time.monotonic() - start
        if steady:
            await _until(
                lambda: not app.first_breaches_pending,
                start + 300,
                "the first breaches to be read",
            )
        result["breaches_s"] = time.monotonic() - start
        await pilot.pause(2.0)  # a refresh or two in steady state
        table.focus()
        table.move_cursor(row=0, animate=False)
        await pilot.pause()

        driver = app._driver
        assert driver is not None
        row = 0
        for index in range(keys):
            key = KEYS[index % len(KEYS)]
            if key == "down":
                row += 1
                check = lambda s, r=row: s is dashboard and table.cursor_row == r  # noqa: E731
            elif key == "up":
                row -= 1
                check = lambda s, r=row: s is dashboard and table.cursor_row == r  # noqa: E731
            elif key == "enter":
                check = lambda s: isinstance(s, AlertDetailScreen) and app.screen is s  # noqa: E731
            else:
                check = lambda s: s is dashboard and app.screen is dashboard  # noqa: E731
            future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            waiting[:] = [(check, future)]
            event = events.Key(key, None)
            event.set_sender(app)
            sent = time.perf_counter()
            driver.send_message(event)
            try:
                painted = await asyncio.wait_for(future, timeout=30)
            except TimeoutError:
                painted = float("nan")
            waiting.clear()
            result["keys"].setdefault(key, []).append(painted - sent)
            await asyncio.sleep(rng.uniform(0.05, 0.4))

        result["rows"] = table.row_count
        result["alerts"] = alerts_table.row_count
        print(json.dumps(result), flush=True)
        result = {}
        quit_event = events.Key("q", "q")
        quit_event.set_sender(app)
        sent = time.perf_counter()
        print(json.dumps({"quit_sent": time.time()}), flush=True)
        driver.send_message(quit_event)
        assert app._task is not None
        await app._task
        result["quit_app_s"] = time.perf_counter() - sent
    result["quit_sent"] = sent
    return result


def run_child(args: argparse.Namespace) -> None:
    from console.cli.main import leave_the_heap

    outcome = asyncio.run(
        child(
            Path(args.child),
            args.models_shown,
            args.alerts_shown,
            args.keys,
            args.seed,
            steady=args.phase == "steady",
        )
    )
    outcome["quit_run_s"] = time.perf_counter() - outcome.pop("quit_sent")
    print(json.dumps(outcome), flush=True)
    leave_the_heap()  # the rest of the exit is the command's own


# -- the parent: fleets, turns, figures ---------------------------------------------


def one_run(side: Side, keys: int, seed: int, phase: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", str(side.config), "--keys", str(keys)]
    command += ["--seed", str(seed), "--phase", phase]
    if side.models is not None:
        command += ["--models-shown", str(side.models)]
    if side.alerts is not None:
        command += ["--alerts-shown", str(side.alerts)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    merged: dict[str, Any] = {}
    for line in process.stdout:
        if line.startswith("{"):
            merged.update(json.loads(line))
    process.wait()
    ended = time.time()
    if process.returncode != 0 or "quit_sent" not in merged:
        raise SystemExit(f"{side.name}: the child failed (exit {process.returncode})")
    merged["quit_process_s"] = ended - merged.pop("quit_sent")
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000, help="models of the big fleet")
    parser.add_argument("--alerts", type=int, default=500, help="alerts firing in the big fleet")
    parser.add_argument("--small", type=int, default=3, help="models of the small fleet")
    parser.add_argument(
        "--small-alerts",
        type=int,
        default=1,
        help="alerts firing in the small fleet (default 1: enter opens an alert on both sides)",
    )
    parser.add_argument("--keys", type=int, default=60, help="timed keys per console run")
    parser.add_argument("--runs", type=int, default=3, help="turns of each console")
    parser.add_argument("--interval", type=float, help="poll interval of every source, s")
    parser.add_argument("--config", type=Path, help="the big side reads this config instead")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--phase",
        choices=("steady", "storm"),
        default="steady",
        help="time the keys once the incidents' first breaches are read (steady), "
        "or while they are read (storm)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--models-shown", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--alerts-shown", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return

    from bench.fleet import Fleet, write_config

    with tempfile.TemporaryDirectory(prefix="mlconsole-keys-") as tmp:
        small_dir, big_dir = Path(tmp, "small"), Path(tmp, "big")
        small_dir.mkdir()
        big_dir.mkdir()
        fleets = [Fleet(args.small).start()]
        fleets[0].fire(args.small_alerts)
        small = Side(
            "small",
            write_config(fleets[0], small_dir, interval=args.interval),
            args.small,
            args.small_alerts,
        )
        if args.config is not None:
            big = Side("big", args.config.resolve(), None, None)
        else:
            fleets.append(Fleet(args.models, seed=2).start())
            fleets[1].fire(args.alerts)
            big = Side(
                "big",
                write_config(fleets[1], big_dir, interval=args.interval),
                args.models,
                args.alerts,
            )
        try:
            samples: dict[str, dict[str, list[float]]] = {"small": {}, "big": {}}
            quits: dict[str, list[tuple[float, float, float]]] = {"small": [], "big": []}
            for turn in range(args.runs):
                for side in (small, big):
                    # A fresh store each run: the incidents of the last run are not this one's.
                    for leftover in side.config.parent.glob("store.db*"):
                        leftover.unlink()
                    outcome = one_run(side, args.keys, args.seed + turn, args.phase)
                    for key, values in outcome["keys"].items():
                        samples[side.name].setdefault(key, []).extend(values)
                    quits[side.name].append(
                        (outcome["quit_app_s"], outcome["quit_run_s"], outcome["quit_process_s"])
                    )
                    print(
                        f"turn {turn + 1} {side.name}: {outcome['rows']} models, "
                        f"{outcome['alerts']} alerts, ready after {outcome['ready_s']:.1f} s"
                        + (
                            f", first breaches read after {outcome['breaches_s']:.1f} s"
                            if args.phase == "steady"
                            else ""
                        ),
                        file=sys.stderr,
                    )
        finally:
            for fleet in fleets:
                fleet.stop()

    big_label = str(args.config) if args.config else f"{args.models} models, {args.alerts} alerts"
    print(
        f"key to paint: {args.small} models, {args.small_alerts} alerts (small)"
        f" vs {big_label} (big), {args.runs} runs each, phase {args.phase}"
    )
    small_groups, big_groups = groups_of(samples["small"]), groups_of(samples["big"])
    small_fig = report("small", small_groups)
    big_fig = report("big", big_groups)
    for group in ("all", "cursor", "screen"):
        (s50, s95), (b50, b95) = small_fig[group], big_fig[group]
        print(f"ratio big/small {group:<7} p50 {b50 / s50:5.2f}x  p95 {b95 / s95:5.2f}x")
    print("middle 90% of each ratio over 1,000 resamples of the keys (how far one run goes):")
    for group in ("all", "cursor", "screen"):
        low50, high50 = ratio_interval(small_groups[group], big_groups[group], 0.5)
        low95, high95 = ratio_interval(small_groups[group], big_groups[group], 0.95)
        print(
            f"  {group:<7} p50 {low50:5.2f}x to {high50:5.2f}x  p95 {low95:5.2f}x to {high95:5.2f}x"
        )
    for name in ("small", "big"):
        app_s, run_s, process_s = (statistics.median(v) for v in zip(*quits[name], strict=True))
        print(
            f"quit (q) {name:<6} median: app loop ended {app_s * 1000:.0f} ms, "
            f"asyncio.run returned {run_s * 1000:.0f} ms, process exited {process_s * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
