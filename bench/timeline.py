"""The timeline widget with 100,000 events against the same widget with 100.

In one process, alternating the two sizes, each run mounts a bare app holding
only a ``TimelineView`` (headless, 120×40) and measures:

* mount and first paint: from building the app to the first screen drawn;
* key presses: ``pagedown`` K times (``home`` instead once the view cannot
  scroll further, so every press scrolls and repaints the whole screen), then
  ``end`` and ``home`` in turn, each followed by the repaint (``pilot.pause()``
  draws the screen);
* filtering: a first word (builds the lowercase text it searches), another
  word, the same word typed on, and clearing it; then replacing every event.

Times are CPU time (``time.process_time``): the Pilot sleeps at least 20 ms
per key to wait for idle, which would hide the work in wall time. The
``render_line`` share and the lines drawn per key come from the widget itself,
run with its line cache cut to one line so that both sizes format every line
they draw (see ``TimedTimeline``): the worst case, and the same work at any N.
It prints the medians and the ratio of the large to the small timeline; for
key presses that ratio should be about 1x. Filtering is one pass over the
events by design, so only its absolute time at N matters.

    python bench/timeline.py [--events 100000] [--presses 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.strip import Strip

from console.incidents.timeline import Event
from screens.timeline import TimelineView

SIZE = (120, 40)
SMALL = 100
START = datetime(2026, 11, 23, 22, 0, 0, tzinfo=UTC).timestamp()

MODELS = ["fraud-detector", "churn-predictor", "recommender", "eta-regressor", "search-ranker"]
ALERTS = ["ModelErrorBudgetBurn", "ModelLatencyHigh", "ModelFeatureDrift", "ModelNullInputs"]
RESPONDERS = ["ann@oncall", "bob@oncall", "chen@ml-platform", "dana@sre"]
#: How often each kind turns up in a long incident: runbook steps and SLI
#: readings dominate, notes and state changes are rarer.
KIND_WEIGHTS = {
    "runbook.step": 24,
    "alert.firing": 10,
    "alert.resolved": 9,
    "sli.first_breach": 4,
    "sli.mitigation": 3,
    "sli.recovery": 3,
    "action.intent": 6,
    "action.result": 6,
    "action.verify": 5,
    "action.refusal": 1,
    "action.reconcile": 1,
    "incident.opened": 2,
    "incident.acknowledged": 2,
    "incident.retriggered": 2,
    "incident.mitigated": 2,
    "incident.resolved": 1,
    "note": 12,
    "runbook.concluded": 2,
}
CLAUSES = [
    "error_ratio 0.0184 over objective 0.01 for the last 5m",
    "p99 latency 0.73s against an objective of 0.5s",
    "drift PSI 0.41 on feature merchant_category",
    "champion alias moved from v4 back to v3 by rollback",
    "null ratio 0.12 on input amount_usd since 02:58",
    "burn rate 14.2x on the 1h window, 6.1x on 6h",
    "plan checked against the registry before applying",
    "verify window 5m: SLI back within objective",
    "upstream feature pipeline paused for the night",
    "traffic shifted to the rule-based fallback",
]


def synthetic(count: int, seed: int = 7) -> list[Event]:
    """``count`` events in time order, a mixture of every kind, summaries of
    60 to 120 characters, about two seconds apart (so the dates change)."""
    rng = random.Random(seed)
    kinds = list(KIND_WEIGHTS)
    weights = list(KIND_WEIGHTS.values())
    at = START
    events: list[Event] = []
    for n, kind in enumerate(rng.choices(kinds, weights, k=count)):
        at += rng.expovariate(0.5)
        model, alert = rng.choice(MODELS), rng.choice(ALERTS)
        if kind.startswith("alert."):
            actor, head = "alertmanager", f"{alert} {model} ({kind.split('.')[1]})"
        elif kind.startswith("sli."):
            actor, head = "prometheus", f"{model} {kind.split('.')[1].replace('_', ' ')}"
        elif kind.startswith("runbook."):
            actor, head = "mlconsole", f"{alert.lower()}: step {rng.randint(1, 9)} on {model}"
        else:
            actor, head = rng.choice(RESPONDERS), f"{kind.split('.')[-1]} {model}"
        summary = head
        target = rng.randint(60, 120)
        while len(summary) < target:
            summary += "; " + rng.choice(CLAUSES)
        data = {"model": model, "alertname": alert, "seq": n}
        events.append(Event(at, kind, actor, summary[:target], data, ref=f"event:{n}"))
    return events


class TimedTimeline(TimelineView):
    """The widget, timing its own ``render_line``, with every line formatted afresh.

    A 100-event timeline is two and a half screens: paging through it redraws the
    same cached lines, while paging through 100,000 always meets new ones. With
    the line cache cut to one line both format every line they show, so the
    ratio compares like with like.
    """

    CACHE_SIZE = 1

    def __init__(self, events: Sequence[Event]) -> None:
        self.render_seconds = 0.0
        self.render_calls = 0
        super().__init__(events)

    def render_line(self, y: int) -> Strip:
        start = time.perf_counter()
        strip = super().render_line(y)
        self.render_seconds += time.perf_counter() - start
        self.render_calls += 1
        return strip


class TimelineBench(App[None]):
    def __init__(self, events: Sequence[Event]) -> None:
        super().__init__()
        self.events = events

    def compose(self) -> ComposeResult:
        yield TimedTimeline(self.events)


@dataclass
class Figures:
    """Medians over runs, in seconds (lines: per key)."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.samples.setdefault(name, []).append(value)

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])


async def press_each(
    pilot: Pilot[None], view: TimedTimeline, keys: list[str], figures: Figures, name: str
) -> None:
    """Press each key and repaint, noting CPU time, render_line time and lines drawn."""
    cpu: list[float] = []
    render: list[float] = []
    lines: list[float] = []
    for key in keys:
        if key == "pagedown" and view.scroll_offset.y >= view.max_scroll_y:
            key = "home"  # a small timeline is soon at its end: keep every press scrolling
        view.render_seconds, view.render_calls = 0.0, 0
        start = time.process_time()
        await pilot.press(key)
        await pilot.pause()
        cpu.append(time.process_time() - start)
        render.append(view.render_seconds)
        lines.append(view.render_calls)
    figures.add(f"{name} cpu", statistics.median(cpu))
    figures.add(f"{name} render", statistics.median(render))
    figures.add(f"{name} lines", statistics.median(lines))


async def run_once(events: list[Event], presses: int, figures: Figures) -> None:
    start = time.process_time()
    app = TimelineBench(events)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        figures.add("mount", time.process_time() - start)
        view = app.query_one(TimedTimeline)
        if view.render_calls == 0:
            raise SystemExit("the first screen was never painted: nothing was measured")
        await pilot.press("home")
        await pilot.pause()
        await press_each(pilot, view, ["pagedown"] * presses, figures, "pagedown")
        jumps = max(2, presses // 10)
        await press_each(pilot, view, ["end", "home"] * (jumps // 2), figures, "end/home")

        for name, text in (
            ("filter first", "rollback"),
            ("filter another", "fraud"),
            ("filter typing on", "fraud-detector"),
            ("filter cleared", ""),
        ):
            begin = time.perf_counter()
            view.set_filter(text)
            figures.add(name, time.perf_counter() - begin)
            await pilot.pause()
        begin = time.perf_counter()
        view.set_events(list(reversed(events)))
        figures.add("set_events", time.perf_counter() - begin)


def row(label: str, small: float, large: float, unit: str = "ms", ratio: bool = True) -> str:
    if unit == "ms":
        cells = f"{small * 1000:>12.2f} ms {large * 1000:>12.2f} ms"
    else:
        cells = f"{small:>15.0f} {large:>15.0f}"
    shown = f"{large / small:>7.2f}x" if ratio and small > 0 else ""
    return f"{label:<34}{cells}  {shown}"


async def measure(count: int, presses: int, runs: int) -> None:
    print(f"generating {count:,} events ...", file=sys.stderr)
    small_events, large_events = synthetic(SMALL), synthetic(count)
    small, large = Figures(), Figures()
    await run_once(small_events, 5, Figures())  # warm imports and CSS for both
    for _ in range(runs):
        await run_once(small_events, presses, small)
        await run_once(large_events, presses, large)
    width, height = SIZE
    print(
        f"TimelineView, {width}x{height} terminal, {presses} pagedowns and "
        f"{max(2, presses // 10)} end/home per run, median of {runs} runs (CPU time)"
    )
    print(f"{'':<34}{f'{SMALL:,} events':>15} {f'{count:,} events':>15}  ratio")
    m = small.median, large.median
    print(row("mount + first paint", m[0]("mount"), m[1]("mount")))
    for name in ("pagedown", "end/home"):
        print(row(f"{name} + repaint, per key", m[0](f"{name} cpu"), m[1](f"{name} cpu")))
        print(row("  of which render_line", m[0](f"{name} render"), m[1](f"{name} render")))
        lines = m[0](f"{name} lines"), m[1](f"{name} lines")
        print(row("  lines drawn per key", *lines, unit="lines"))
    for name, label in (
        ("filter first", "filter, first word (builds text)"),
        ("filter another", "filter, another word"),
        ("filter typing on", "filter, typing on (narrower)"),
        ("filter cleared", "filter cleared"),
        ("set_events", "set_events (replace all)"),
    ):
        print(row(label, m[0](name), m[1](name), ratio=False))
    ratio = m[1]("pagedown cpu") / m[0]("pagedown cpu")
    print(f"ratio per pagedown, {count:,} events / {SMALL}: {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(measure(args.events, args.presses, args.runs))


if __name__ == "__main__":
    main()
