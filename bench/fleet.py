"""A synthetic fleet for benchmarks: Prometheus and Alertmanager answers for N models.

One small HTTP server (stdlib, a thread of the calling process, 127.0.0.1) answers
what the console asks of Prometheus and Alertmanager, for ``model-0000`` ... and the
SLIs of the lab's config:

* ``/api/v1/query``: each SLI's recording rule (and its SLO's error-ratio rule) for
  every model, or for the one a ``{model="..."}`` selector names; every value moves
  a little on every call, so the console is always refreshing. Any other query
  answers an empty vector.
* ``/api/v1/query_range``: the same series over the asked range and step.
* ``/api/v1/format_query``, ``/-/ready``, ``/-/healthy``.
* ``/api/v2/alerts``: the K firing alerts of :meth:`Fleet.fire` (the lab's alert
  names and labels, one per model), ``/api/v2/silences``, ``/api/v2/status``.
* ``/admin/state``, ``/admin/fallback?model=``, ``/admin/pipeline?model=``: every
  switch off, for a config that reads them.
* ``POST /-/fleet/fire?count=K`` fires K alerts, ``POST /-/fleet/clear`` clears them
  (for a console in another process; in-process, call :meth:`Fleet.fire`).

It stands in for the lab where the lab's own cost would drown what a benchmark
measures (a thousand simulated models scraped every second); tests use the real lab.
Run on its own, it serves until interrupted and prints the config it wrote::

    python bench/fleet.py --models 1000 --alerts 500 [--port 20190] [--dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import re
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from console.config.loader import load_config
from console.config.models import Config, SliConfig
from lab.configs import PACKAGE_DIR, Ports, mlconsole_config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fleet_http import FleetHandler, FleetServer

#: ``metric{matchers}``: the metric name and the matchers of a plain selector.
_SELECTOR = re.compile(r"^\s*([A-Za-z_:][\w:]*)\s*(?:\{([^}]*)\})?\s*$")
_MODEL_MATCHER = re.compile(r'model\s*=\s*"([^"]*)"')
#: ``(query) and on(model) label_replace(vector(1), "model", "NAME", "", "")``: one
#: model's series of ``query``, as the incident reads ask.
_ONE_MODEL = re.compile(
    r"^\(\s*(.+?)\s*\)\s*and\s+on\s*\(\s*model\s*\)\s*label_replace\(\s*vector\(1\)\s*,"
    r'\s*"model"\s*,\s*"([^"]*)"',
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Series:
    """How one recorded metric behaves: its healthy value, its value on a model with
    a firing alert, and how much it wanders from call to call (a fraction)."""

    healthy: float
    breached: float
    wander: float = 0.02


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One of the lab's alerting rules: its name, labels and annotations."""

    name: str
    labels: dict[str, str]
    annotations: dict[str, str]


def model_names(count: int) -> list[str]:
    return [f"model-{index:04d}" for index in range(count)]


def lab_config(directory: Path) -> Config:
    """The lab's console config (no registry), as ``lab up`` writes it."""
    path = directory / "lab-template.yaml"
    path.write_text(mlconsole_config(Ports(1, 2, 3), directory, registry=False))
    return load_config(path)


def lab_alert_rules() -> list[AlertRule]:
    """The lab's alerting rules, from the rule file Prometheus loads."""
    rules = yaml.safe_load((PACKAGE_DIR / "rules" / "alerts.yml").read_text(encoding="utf-8"))
    found = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                found.append(
                    AlertRule(
                        rule["alert"],
                        {k: str(v) for k, v in rule.get("labels", {}).items()},
                        {k: str(v) for k, v in rule.get("annotations", {}).items()},
                    )
                )
    return found


def series_for(slis: Sequence[SliConfig]) -> dict[str, Series]:
    """Each SLI query (and SLO error-ratio query) and how its values behave: well
    inside the objective, or well outside it on a model whose alert fires."""
    found: dict[str, Series] = {}
    for sli in slis:
        threshold = sli.objective.threshold
        if sli.objective.higher_is_better:
            room = (1.0 - threshold) if sli.unit == "ratio" else abs(threshold)
            found[sli.query] = Series(
                min(1.0, threshold + room * 0.6) if sli.unit == "ratio" else threshold * 1.5,
                threshold - room * 4 if sli.unit == "ratio" else threshold * 0.3,
                wander=0.0005 if sli.unit == "ratio" else 0.02,
            )
        else:
            found[sli.query] = Series(threshold * 0.3, threshold * 4)
        if sli.slo is not None and sli.slo.error_ratio_query:
            budget = 1.0 - sli.slo.target
            found.setdefault(sli.slo.error_ratio_query, Series(budget * 0.3, budget * 20))
    return found


class Fleet:
    """The server: N models, the SLIs of ``config`` (the lab's by default), and the
    alerts fired now. Start it with :meth:`start` or as a context manager."""

    def __init__(
        self,
        models: int,
        config: Config | None = None,
        *,
        port: int = 0,
        seed: int = 0,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if config is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="mlconsole-fleet-")
            config = lab_config(Path(self._tmp.name))
        self.config = config
        self.models = model_names(models)
        self.series = series_for(config.slis)
        self.rules = lab_alert_rules()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._firing: dict[str, AlertRule] = {}
        self._fired_at = time.time()
        self._alerts_json = b"[]"
        self._silences: list[dict[str, Any]] = []
        # The fixed part of each sample, rendered once: only the value and time move.
        self._prefix = {
            query: [
                '{"metric":{"__name__":' + json.dumps(query) + f',"model":"{model}"}},'
                for model in self.models
            ]
            for query in self.series
        }
        self.requests = 0
        fleet = self

        class Handler(FleetHandler):
            owner = fleet

        self._server = FleetServer(("127.0.0.1", port), Handler)
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Fleet:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fleet", kwargs={"poll_interval": 0.1}
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for a loop that must be running
            self._server.shutdown()
        self._server.server_close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- alerts -------------------------------------------------------------

    def fire(self, count: int) -> None:
        """Fire ``count`` alerts, one per model from ``model-0000`` on (the lab's
        alerting rules in turn); the alerts already firing on those models stay."""
        count = min(count, len(self.models))
        with self._lock:
            firing = {
                model: self._firing.get(model) or self.rules[index % len(self.rules)]
                for index, model in enumerate(self.models[:count])
            }
            self._firing = firing
            self._fired_at = time.time()
            self._alerts_json = self._render_alerts()

    def clear(self) -> None:
        """Every alert resolved."""
        self.fire(0)

    @property
    def firing(self) -> int:
        return len(self._firing)

    def _render_alerts(self) -> bytes:
        started = datetime.fromtimestamp(self._fired_at, UTC).isoformat().replace("+00:00", "Z")
        ends = datetime.fromtimestamp(self._fired_at + 3600, UTC).isoformat().replace("+00:00", "Z")
        alerts = []
        for model, rule in self._firing.items():
            labels = {"alertname": rule.name, "model": model, **rule.labels}
            fingerprint = hashlib.sha1(
                json.dumps(labels, sort_keys=True).encode(), usedforsecurity=False
            ).hexdigest()[:16]
            alerts.append(
                {
                    "labels": labels,
                    "annotations": {
                        k: v.replace("{{ $labels.model }}", model)
                        for k, v in rule.annotations.items()
                    },
                    "startsAt": started,
                    "endsAt": ends,
                    "updatedAt": started,
                    "fingerprint": fingerprint,
                    "generatorURL": f"{self.url}/graph",
                    "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
                    "receivers": [{"name": "console"}],
                }
            )
        return json.dumps(alerts).encode()

    # -- answers ------------------------------------------------------------

    def _value(self, series: Series, model: str, breached: bool) -> float:
        base = series.breached if breached else series.healthy
        return base * (1.0 + series.wander * (self._random.random() - 0.5))

    def _select(self, query: str) -> tuple[str, list[int]] | None:
        """The known query ``query`` asks for, and the indexes of the models it selects."""
        if query in self.series:
            return query, list(range(len(self.models)))
        one = _ONE_MODEL.match(query)
        if one is not None:
            inner = self._select(one.group(1))
            if inner is None:
                return None
            index = self._index(one.group(2))
            return inner[0], [i for i in inner[1] if i == index]
        match = _SELECTOR.match(query)
        if match is None or match.group(1) not in self.series:
            return None
        matchers = match.group(2) or ""
        wanted = _MODEL_MATCHER.search(matchers)
        if wanted is None:
            return match.group(1), list(range(len(self.models)))
        index = self._index(wanted.group(1))
        return match.group(1), [index] if index >= 0 else []

    def _index(self, name: str) -> int:
        """Where model ``name`` is in :attr:`models`; -1 when it is not one of them."""
        index = int(name[6:]) if name.startswith("model-") and name[6:].isdigit() else -1
        return index if 0 <= index < len(self.models) else -1

    def instant(self, query: str, at: float) -> bytes:
        selected = self._select(query)
        if selected is None:
            samples: list[str] = []
        else:
            name, indexes = selected
            series, prefix, firing = self.series[name], self._prefix[name], self._firing
            models = self.models
            samples = [
                f'{prefix[i]}"value":[{at:.3f},'
                f'"{self._value(series, models[i], models[i] in firing):.6g}"]}}'
                for i in indexes
            ]
        return (
            '{"status":"success","data":{"resultType":"vector","result":['
            + ",".join(samples)
            + "]}}"
        ).encode()

    def range(self, query: str, start: float, end: float, step: float) -> bytes:
        selected = self._select(query)
        result: list[str] = []
        if selected is not None and step > 0:
            name, indexes = selected
            series, prefix, firing = self.series[name], self._prefix[name], self._firing
            count = min(11_000, int((end - start) / step) + 1)
            times = [start + n * step for n in range(count)]
            for i in indexes:
                model = self.models[i]
                points = ",".join(
                    f'[{t:.3f},"{self._value(series, model, model in firing):.6g}"]' for t in times
                )
                result.append(f'{prefix[i]}"values":[{points}]}}')
        return (
            '{"status":"success","data":{"resultType":"matrix","result":['
            + ",".join(result)
            + "]}}"
        ).encode()


def write_config(
    fleet: Fleet,
    directory: Path,
    *,
    interval: float | None = None,
    switches: bool = False,
) -> Path:
    """A console config reading ``fleet`` (as Prometheus and Alertmanager), with its
    store in ``directory`` and no registry. ``interval`` replaces the lab's poll
    intervals (seconds); ``switches`` keeps the fallback and pipeline switch sources
    (every switch reads off), which otherwise are left out."""
    text = mlconsole_config(Ports(fleet.port, fleet.port, fleet.port), directory, registry=False)
    raw = yaml.safe_load(text)
    if not switches:
        for name in ("serving", "pipelines"):
            raw["sources"].pop(name, None)
        raw["actions"].pop("fallback", None)
        raw["actions"].pop("pipeline", None)
    if interval is not None:
        for source in raw["sources"].values():
            source["interval"] = f"{interval:g}s"
    path = directory / "mlconsole.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=0, help="alerts firing from the start")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dir", type=Path, help="where the config and store go (default: temp)")
    parser.add_argument("--interval", type=float, help="poll interval of every source, seconds")
    parser.add_argument("--switches", action="store_true", help="also serve the switch sources")
    args = parser.parse_args()
    with Fleet(args.models, port=args.port) as fleet:
        fleet.fire(args.alerts)
        with tempfile.TemporaryDirectory(prefix="mlconsole-fleet-") as tmp:
            directory = args.dir or Path(tmp)
            directory.mkdir(parents=True, exist_ok=True)
            path = write_config(fleet, directory, interval=args.interval, switches=args.switches)
            print(f"fleet of {args.models} models at {fleet.url}, {fleet.firing} alerts firing")
            print(f"config: {path}")
            print(f"fire K alerts: curl -X POST '{fleet.url}/-/fleet/fire?count=K'")
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()


if __name__ == "__main__":
    main()
