"""Process start to first paint: the mlconsole dashboard against a bare Textual app.

Each run is a fresh interpreter. The parent notes the wall time, starts the
child, and the child prints the wall time of its first paint (Textual's
``on_ready``) and exits. Both apps run headless, in the same way, interleaved,
so the ratio is fair on a noisy machine even when the seconds are not.

    python bench/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD_BARE = """
import sys, time
from textual.app import App
from textual.widgets import DataTable

class Bare(App):
    def compose(self):
        yield DataTable()
    def on_mount(self):
        table = self.query_one(DataTable)
        table.add_columns("model", "value")
        table.add_rows([(f"model-{i:04d}", str(i)) for i in range(1000)])
    def on_ready(self):
        print(time.time(), flush=True)
        self.exit()

Bare().run(headless=True, size=(160, 48))
"""

CHILD_DASHBOARD = """
import sys, time
from console.cli import build_parser, _resolve_config
from console.app import MLConsoleApp, create_app

args = build_parser().parse_args(["--config", sys.argv[1]])
config = _resolve_config(args)
original = MLConsoleApp.on_ready

def on_ready(self):
    original(self)
    print(time.time(), flush=True)
    self.exit()

MLConsoleApp.on_ready = on_ready
create_app(config).run(headless=True, size=(160, 48))
"""

# Sources that refuse at once: startup must not wait on the network anyway.
CONFIG = """
sources:
  prometheus: {type: prometheus, url: "http://127.0.0.1:9", interval: 60, retries: 0}
  alertmanager: {type: alertmanager, url: "http://127.0.0.1:9", interval: 60, retries: 0}
  registry: {type: mlflow, url: "http://127.0.0.1:9", interval: 60, retries: 0}
  serving:
    type: http-switch
    url: "http://127.0.0.1:9"
    interval: 60
    retries: 0
    options:
      read: {path: "/admin/fallback?model={target}", field: enabled}
      enable: {path: /admin/fallback, body: {model: "{target}", enabled: true}}
      disable: {path: /admin/fallback, body: {model: "{target}", enabled: false}}
actions: {fallback: serving}
slis:
  - {name: error_ratio, query: "mlc:error_ratio:rate1m", objective: "< 0.01", slo: {target: 0.99}}
  - {name: latency_p99, query: "mlc:latency_p99_seconds:rate1m", objective: "< 0.5", unit: seconds}
  - {name: drift_psi, query: "mlc:drift_psi:max", objective: "< 0.25", unit: psi}
"""


def once(code: str, *args: str) -> float:
    started = time.time()
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )
    return float(out.stdout.strip().splitlines()[-1]) - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG)
        once(CHILD_BARE)  # warm the page cache for both
        once(CHILD_DASHBOARD, str(config))
        bare, dashboard = [], []
        for _ in range(args.runs):
            bare.append(once(CHILD_BARE))
            dashboard.append(once(CHILD_DASHBOARD, str(config)))
    b, d = statistics.median(bare), statistics.median(dashboard)
    print(f"bare Textual app, one 1,000-row DataTable: median {b * 1000:.0f} ms ({args.runs} runs)")
    print(f"mlconsole dashboard (config, adapters, poller): median {d * 1000:.0f} ms")
    print(f"ratio dashboard / bare: {d / b:.2f}x")


if __name__ == "__main__":
    main()
