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
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from console.memory import DASHBOARD_ARENAS, trim

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.memory_probe import (
    Trace,
    breakdown,
    live_mb,
    rss_mb,
    sqlite_mb,
)
from bench.memory_scenes import (
    Alerts,
    breaches_read,
    connected,
    hold,
    settle_minutes,
    slope,
)


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
