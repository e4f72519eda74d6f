"""Start-up, three ways, each against what it cannot do without, in one run:

* ``mlconsole --version`` against ``python -c pass``;
* ``mlconsole status --json`` on a 3-model lab against
  ``python -c "import httpx, pydantic, yaml"`` (the libraries it cannot run without);
* the dashboard's first paint against a bare Textual app with one 1,000-row
  DataTable: the parent notes the time, starts the child, and the child prints the
  time of its first paint (Textual's ``on_ready``) and exits. Both run headless.

Three more lines say how much of ``status --json``'s cost is its libraries' alone: a
fresh interpreter imports every third-party module one ``status --json`` run loaded
(listed by a run before the rounds), against the same baseline; one defines a
one-field pydantic model and validates a dict with it (``import pydantic`` alone
loads little of pydantic: its models are loaded on first use); and one does both,
then sends the GET requests that run sent, one after another on one ``httpx.Client``,
parsing each answer with orjson. They have no target: they are the floors no change
to this code goes below (the libraries' own work, before a line of ours runs).

Every sample is a fresh interpreter, the pairs are interleaved, and each line gives
the medians and their ratio (wall time; but for the first paint, also the CPU time
the child used, which the other processes on a busy machine disturb less). Only the
ratios are meant to travel. Bytecode is written on the warm-up round, as it is for
an installed package, even when ``PYTHONDONTWRITEBYTECODE`` is set here.

The lab is started on its own ports and state dir (``--port-base``: +190, +193,
+200, +500) and stopped at the end, unless ``--config`` names a running one.

    python bench/startup.py [--runs 7] [--config PATH] [--port-base 29000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

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
from console.cli.common import config_for
from console.cli.main import parse_args
from screens.app import MLConsoleApp, create_app

args = parse_args(["--config", sys.argv[1]])  # as `mlconsole --config PATH` reads it
config = config_for(args)
original = MLConsoleApp.on_ready

def on_ready(self):
    original(self)
    print(time.time(), flush=True)
    self.exit()

MLConsoleApp.on_ready = on_ready
create_app(config).run(headless=True, size=(160, 48))
"""

# One `status --json` run, then the third-party modules it loaded, in the order it did,
# and the URLs of the requests it sent.
CHILD_LIBRARIES = """
import contextlib, io, json, sys
import httpx
sent = []
send = httpx.Client.send

def recording(self, request, **kwargs):
    sent.append((request.method, str(request.url)))
    return send(self, request, **kwargs)

httpx.Client.send = recording
from console.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    main(sys.argv[1:])
ours = ("console", "adapters", "lab", "screens", "__editable__", "_distutils_hack")
print(json.dumps({"modules": [
    name for name, module in list(sys.modules.items())
    if "site-packages" in (getattr(module, "__file__", None) or "")
    and not name.startswith(ours)
], "sent": sent}))
"""

# What the `mlconsole` script runs (console.cli.main:main), for when it is not installed.
MLCONSOLE = ["-c", "import sys; from console.cli.main import main; sys.exit(main())"]

# Sources that refuse at once: the first paint must not wait on the network anyway.
DASHBOARD_CONFIG = """
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


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def mlconsole_argv(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("mlconsole")
    if script.exists():
        return [sys.executable, str(script), *args]
    return [sys.executable, *MLCONSOLE, *args]


def run_cpu(argv: Sequence[str], ok: Sequence[int] = (0,)) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one child, from start to exit."""
    started = time.perf_counter()
    child = subprocess.Popen(
        argv, cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert child.stderr is not None
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} exited {child.returncode}:\n{stderr.decode()}")
    return wall, usage.ru_utime + usage.ru_stime


def first_paint(code: str, *args: str) -> float:
    started = time.time()
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=child_env(),
        timeout=120,
    )
    return float(out.stdout.strip().splitlines()[-1]) - started


class Pair:
    """Samples of one measure and its baseline, and the line that compares them."""

    def __init__(self, ours: str, baseline: str, target: float | None = None) -> None:
        self.ours, self.baseline, self.target = ours, baseline, target
        self.samples: dict[str, list[tuple[float, float]]] = {"ours": [], "baseline": []}

    def add(self, which: str, wall: float, cpu: float = 0.0) -> None:
        self.samples[which].append((wall, cpu))

    def median(self, which: str, index: int) -> float:
        return statistics.median(s[index] for s in self.samples[which])

    def ratio(self, index: int = 0) -> float:
        return self.median("ours", index) / self.median("baseline", index)

    def lines(self) -> list[str]:
        wall = (
            f"  wall: {self.median('ours', 0) * 1000:6.0f} ms vs "
            f"{self.median('baseline', 0) * 1000:6.0f} ms  ratio {self.ratio(0):.2f}x"
        )
        if self.target is not None:
            wall += f"  (target <= {self.target}x)"
        out = [f"{self.ours}  vs  {self.baseline}", wall]
        if self.median("ours", 1) > 0:
            out.append(
                f"  cpu:  {self.median('ours', 1) * 1000:6.0f} ms vs "
                f"{self.median('baseline', 1) * 1000:6.0f} ms  ratio {self.ratio(1):.2f}x"
            )
        return out


def start_lab(state_dir: Path, port_base: int) -> Path:
    from lab import control
    from lab.configs import Ports

    ports = Ports(port_base + 190, port_base + 193, port_base + 200, port_base + 500)
    print(f"starting a 3-model lab in {state_dir} ...", file=sys.stderr)
    info = control.up(state_dir, models=3, ports=ports, timeout=120)
    return info.config_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="samples of each (default 7)")
    parser.add_argument("--config", type=Path, help="a running lab's config (default: start one)")
    parser.add_argument(
        "--port-base",
        type=int,
        default=int(os.environ.get("MLCONSOLE_TEST_PORT_BASE", "29000")),
        help="the lab's ports are this +190, +193, +200 and +500",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lab_dir = Path(tmp) / "lab"
        config = args.config or start_lab(lab_dir, args.port_base)
        try:
            pairs = measure(config, Path(tmp), args.runs)
        finally:
            if args.config is None:
                from lab import control

                control.down(lab_dir)
    print(f"medians of {args.runs} interleaved runs, each a fresh interpreter")
    for pair in pairs:
        print("\n".join(pair.lines()))


def measure(config: Path, tmp: Path, runs: int) -> list[Pair]:
    dashboard_config = tmp / "dashboard.yaml"
    dashboard_config.write_text(DASHBOARD_CONFIG)
    version = Pair("mlconsole --version", "python -c pass", 2.0)
    baseline = f'python -c "{BASELINE_IMPORTS}"'
    status = Pair("mlconsole status --json (3-model lab)", baseline, 2.0)
    libraries = Pair("status --json's third-party modules imported alone", baseline)
    one_model = Pair("the baseline's imports, one pydantic model defined and used", baseline)
    loaded, sent = status_libraries(config)
    with_requests = Pair(
        f"status --json's third-party modules, one model and its {len(sent)} requests in a row",
        baseline,
    )
    paint = Pair(
        "dashboard first paint (config, adapters, poller)",
        "bare Textual app, one 1,000-row DataTable",
        1.3,
    )
    # Exit 1 is "alerts firing": the lab may have some. 3 would mean a source is down.
    status_argv = mlconsole_argv("--config", str(config), "status", "--json")
    # One baseline sample a round serves the two lines that compare with it.
    rounds: list[tuple[tuple[Pair, ...], str, Callable[[], tuple[float, float]]]] = [
        ((version,), "baseline", lambda: run_cpu([sys.executable, "-c", "pass"])),
        ((version,), "ours", lambda: run_cpu(mlconsole_argv("--version"))),
        (
            (status, libraries, one_model, with_requests),
            "baseline",
            lambda: run_cpu([sys.executable, "-c", BASELINE_IMPORTS]),
        ),
        ((one_model,), "ours", lambda: run_cpu([sys.executable, "-c", ONE_MODEL])),
        ((status,), "ours", lambda: run_cpu(status_argv, ok=(0, 1))),
        ((libraries,), "ours", lambda: run_cpu(import_all(loaded))),
        ((with_requests,), "ours", lambda: run_cpu(import_all(loaded, sent))),
        ((paint,), "baseline", lambda: (first_paint(CHILD_BARE), 0.0)),
        ((paint,), "ours", lambda: (first_paint(CHILD_DASHBOARD, str(dashboard_config)), 0.0)),
    ]
    for _, _, once in rounds:  # warm the page cache, and write the bytecode
        once()
    for number in range(runs):
        print(f"round {number + 1}/{runs}", file=sys.stderr)
        for pairs, which, once in rounds:
            sample = once()
            for pair in pairs:
                pair.add(which, *sample)
    return [version, status, libraries, one_model, with_requests, paint]


BASELINE_IMPORTS = "import httpx, pydantic, yaml"

# `import pydantic` loads little until a model is defined: the least that reading a
# config through pydantic costs, with nothing of ours.
ONE_MODEL = (
    BASELINE_IMPORTS + "\nclass Settings(pydantic.BaseModel):\n    interval: float = 1.0\n"
    "Settings.model_validate({'interval': 2})"
)


def status_libraries(config: Path) -> tuple[list[str], list[str]]:
    """The third-party modules one `status --json` run loads, in the order it does, and
    the URLs of the GET requests it sends (none is sent any other way)."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD_LIBRARIES, "--config", str(config), "status", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env(),
        timeout=120,
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    methods = {method for method, _ in found["sent"]}
    if methods - {"GET"}:
        raise SystemExit(f"status --json sent {sorted(methods)} requests: only GET is replayed")
    return found["modules"], [url for _, url in found["sent"]]


def import_all(modules: Sequence[str], urls: Sequence[str] = ()) -> list[str]:
    """A fresh interpreter importing ``modules`` (and asyncio, which status runs on);
    with ``urls``, then defining and using one model, and getting each URL in turn on
    one client (no CA loaded: the lab is plain HTTP, as status's own clients know)."""
    code = "import asyncio, importlib\n"
    code += f"for name in {list(modules)!r}:\n    importlib.import_module(name)\n"
    if urls:
        code += "import pydantic" + ONE_MODEL.removeprefix(BASELINE_IMPORTS) + "\n"
        code += (
            "import ssl, httpx, orjson\n"
            "client = httpx.Client(verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))\n"
            f"for url in {list(urls)!r}:\n"
            "    orjson.loads(client.get(url).raise_for_status().content)\n"
        )
    return [sys.executable, "-c", code]


if __name__ == "__main__":
    main()
