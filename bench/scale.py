"""The scale lab at 10,000 models: import time, VictoriaMetrics' memory, and one
snapshot refresh against raw httpx+json of the same queries.

Starts its own scale lab (``lab up --scale``: VictoriaMetrics, Alertmanager and the
feeder, own ports and state dir), then prints:

* how long ``up`` took, and how long the feeder's import of the history took
  (samples, seconds) before VictoriaMetrics answered every series;
* VictoriaMetrics' resident memory once ready, and after the refreshes;
* the refresh benchmark of ``bench/refresh.py`` against it: ``Poller.refresh`` of
  the metrics source next to the same PromQL sent at once with ``httpx`` and parsed
  with ``json``, medians and their ratio.

Only the ratio is meant to travel; the machine is noisy, so run it three times.

    python bench/scale.py [--models 10000] [--runs 5] [--base-port 39400] [--keep]

``--keep`` leaves the lab running and prints its config, e.g. for bench/keys.py's
``--config``; stop it with ``mlconsole lab down --state-dir DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.refresh import measure
from lab import control, scale
from lab.configs import Ports


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` in MiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for pid {pid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--base-port", type=int, default=39400, help="VM +28, Alertmanager +93")
    parser.add_argument("--keep", action="store_true", help="leave the lab running")
    args = parser.parse_args()
    state_dir = Path(tempfile.mkdtemp(prefix="mlconsole-bench-scale-"))
    ports = Ports(alertmanager=args.base_port + 93, victoria=args.base_port + 28)
    print(f"starting a scale lab with {args.models} models in {state_dir} ...", file=sys.stderr)
    started = time.monotonic()
    info = control.up(state_dir, models=args.models, ports=ports, scale=True, timeout=300)
    up_seconds = time.monotonic() - started
    try:
        record = scale.read_state(state_dir) or {}
        vm = info.processes["victoria"].pid
        print(f"lab up --scale {args.models}:       {up_seconds:.1f} s until every series answers")
        print(
            f"history import:             {record['samples_imported']:,} samples "
            f"({record['series']:,} series x {record['history_points']} points) "
            f"in {record['import_seconds']:.1f} s"
        )
        print(f"VictoriaMetrics RSS, ready: {rss_mib(vm):.0f} MiB")
        asyncio.run(measure(info.config_path, args.models, args.runs))
        print(f"VictoriaMetrics RSS, after: {rss_mib(vm):.0f} MiB")
        if args.keep:
            print(f"kept running; config: {info.config_path}")
            print(f"stop it with: mlconsole lab down --state-dir {state_dir}")
    finally:
        if not args.keep:
            control.down(state_dir)


if __name__ == "__main__":
    main()
