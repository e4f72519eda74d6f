"""The scale lab: synthetic SLI series for thousands of models in VictoriaMetrics.

No model service runs and nothing is scraped. Every series the console reads (the
recording-rule names of ``lab/rules/recording.yml`` that its lab config queries) is
written straight into VictoriaMetrics through its import API, one series per model
and metric, and the alerts the lab's alerting rules would raise for the breaching
models are posted straight to Alertmanager.

Values are a pure function of (model, metric, time): a slow and a fast wave between
bounds that are healthy for most models and breach an objective for a few. So the
history imported at start and the points appended later join without a seam, and
nothing needs to be remembered between ticks.

Run as a process of its own (``python -m lab.scale``), it imports the history, waits
until VictoriaMetrics answers every metric for every model, then appends one point per
series and re-posts the alerts every ``--interval`` seconds. It records what it did in
``scale.json`` in the lab's state directory, which ``lab up`` and ``lab status`` read.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from lab import web
from lab.configs import PACKAGE_DIR

#: The breach kinds, each named after what goes wrong, in the order models get them.
KINDS: tuple[str, ...] = ("errors", "latency", "drift", "stale", "pipeline")

#: The alert of each breach kind, as named in ``lab/rules/alerts.yml``, and the
#: series whose value its summary quotes.
KIND_ALERTS: dict[str, tuple[str, str]] = {
    "errors": ("ModelErrorBudgetBurn", "mlc:error_ratio:rate1m"),
    "latency": ("ModelLatencyBudgetBurn", "mlc:latency_slow_ratio:rate10s"),
    "drift": ("ModelFeatureDrift", "mlc:drift_psi:max"),
    "stale": ("ModelFeaturesStale", "mlc:data_freshness_seconds"),
    "pipeline": ("ModelPipelineFailing", "mlc:pipeline_success:ratio_rate1m"),
}


@dataclass(frozen=True, slots=True)
class Metric:
    """One synthetic series per model: its healthy bounds, and its bounds per breach kind."""

    name: str
    low: float
    high: float
    breach: tuple[tuple[str, float, float], ...] = ()

    def bounds(self, kind: str | None) -> tuple[float, float]:
        """(low, high) for a model with breach ``kind`` (None: healthy)."""
        for k, low, high in self.breach:
            if k == kind:
                return low, high
        return self.low, self.high


#: Every series the lab's console config reads: each SLI's query and each SLO's
#: error-ratio query. Healthy bounds sit inside the objectives of
#: ``lab/templates/mlconsole.yaml``; breach bounds sit well outside them.
METRICS: tuple[Metric, ...] = (
    Metric("mlc:availability:rate1m", 0.993, 0.9995, (("errors", 0.65, 0.82),)),
    Metric("mlc:error_ratio:rate1m", 0.0005, 0.007, (("errors", 0.18, 0.35),)),
    Metric("mlc:error_ratio:rate10s", 0.0003, 0.008, (("errors", 0.18, 0.4),)),
    Metric("mlc:latency_p95_seconds:rate1m", 0.06, 0.18, (("latency", 0.5, 1.2),)),
    Metric("mlc:latency_p99_seconds:rate1m", 0.1, 0.3, (("latency", 1.0, 2.0),)),
    Metric("mlc:latency_slow_ratio:rate10s", 0.001, 0.006, (("latency", 0.3, 0.6),)),
    Metric("mlc:drift_psi:max", 0.01, 0.08, (("drift", 0.3, 0.6),)),
    Metric("mlc:data_freshness_seconds", 1.0, 12.0, (("stale", 60.0, 240.0),)),
    Metric("mlc:pipeline_success:ratio_rate1m", 0.85, 1.0, (("pipeline", 0.0, 0.3),)),
)

#: Periods (seconds) of the slow and the fast wave every value follows.
_SLOW, _FAST = 600.0, 97.0
_TAU = 2 * math.pi


def model_names(count: int) -> list[str]:
    """``model-00000`` ... : numbered, so ten thousand of them sort and align."""
    if count < 1:
        raise ValueError("the scale lab needs at least one model")
    return [f"model-{i:05d}" for i in range(count)]


def breach_kinds(count: int, fraction: float) -> dict[int, str]:
    """Model index -> breach kind for ``round(count * fraction)`` models spread evenly
    over the fleet, the kinds taken in turn."""
    breaching = min(count, round(count * fraction))
    return {i * count // breaching: KINDS[i % len(KINDS)] for i in range(breaching)}


class _Waves:
    """sin and cos of both waves at a set of timestamps, computed once for all series."""

    def __init__(self, stamps: list[float]) -> None:
        self.stamps = stamps
        self.slow = [(math.sin(_TAU * t / _SLOW), math.cos(_TAU * t / _SLOW)) for t in stamps]
        self.fast = [(math.sin(_TAU * t / _FAST), math.cos(_TAU * t / _FAST)) for t in stamps]

    def values(self, low: float, high: float, index: int, salt: int) -> list[float]:
        """The series' values: between ``low`` and ``high``, phases set by model and metric."""
        phase = (index * 0.6180339887 + salt * 1.3) % 1.0 * _TAU
        s1, c1 = math.sin(phase), math.cos(phase)
        s2, c2 = math.sin(phase * 3.1), math.cos(phase * 3.1)
        mid, span = (low + high) / 2, (high - low) / 2
        # sin(a + p) = sin a cos p + cos a sin p; the weights keep the sum within [-1, 1].
        return [
            mid + span * (0.7 * (sa * c1 + ca * s1) + 0.3 * (sb * c2 + cb * s2))
            for (sa, ca), (sb, cb) in zip(self.slow, self.fast, strict=True)
        ]


def value_at(metric: Metric, index: int, kind: str | None, at: float) -> float:
    """One value, as the import and the appends compute it."""
    salt = METRICS.index(metric)
    return _Waves([at]).values(*metric.bounds(kind), index, salt)[0]


@dataclass(frozen=True, slots=True)
class Fleet:
    """The synthetic models and which of them breach."""

    models: list[str]
    kinds: dict[int, str]

    @classmethod
    def of(cls, count: int, breaching: float) -> Fleet:
        """``count`` models, ``breaching`` of them (a fraction) breaching an objective."""
        return cls(model_names(count), breach_kinds(count, breaching))

    @property
    def series(self) -> int:
        """Series per import: one per model and metric."""
        return len(self.models) * len(METRICS)

    def history_lines(self, stamps: list[float], first: int, last: int) -> Iterator[str]:
        """Lines of VictoriaMetrics' JSON line import for models ``first`` to ``last - 1``:
        one line per series carries all of its points."""
        waves = _Waves(stamps)
        times = ",".join(str(round(t * 1000)) for t in stamps)
        for salt, metric in enumerate(METRICS):
            for index in range(first, last):
                values = waves.values(*metric.bounds(self.kinds.get(index)), index, salt)
                labels = json.dumps({"__name__": metric.name, "model": self.models[index]})
                body = ",".join(f"{v:.6g}" for v in values)
                yield f'{{"metric":{labels},"values":[{body}],"timestamps":[{times}]}}\n'

    def point_text(self, at: float) -> str:
        """Prometheus text exposition with timestamps: one point per series at ``at``."""
        waves = _Waves([at])
        stamp = round(at * 1000)
        lines = []
        for salt, metric in enumerate(METRICS):
            for index, model in enumerate(self.models):
                (value,) = waves.values(*metric.bounds(self.kinds.get(index)), index, salt)
                lines.append(f'{metric.name}{{model="{model}"}} {value:.6g} {stamp}\n')
        return "".join(lines)

    def alerts(self, vm_url: str, since: float, until: float) -> list[dict[str, Any]]:
        """Alertmanager's ``POST /api/v2/alerts`` body for every breaching model: the
        labels and runbook of the alerting rule its breach would fire."""
        rules = alert_rules()
        out = []
        for index, kind in sorted(self.kinds.items()):
            model = self.models[index]
            name, quoted = KIND_ALERTS[kind]
            rule = rules[name]
            sli_metric = next(m for m in METRICS if m.name == quoted)
            value = value_at(sli_metric, index, kind, until)
            selector = f'{sli_metric.name}{{model="{model}"}}'
            out.append(
                {
                    "labels": {"alertname": name, "model": model, **rule["labels"]},
                    "annotations": {
                        "summary": f"{model}: {sli_metric.name} is {value:.3g}",
                        "runbook": rule["annotations"]["runbook"],
                    },
                    "startsAt": _iso(since),
                    "endsAt": _iso(until),
                    "generatorURL": f"{vm_url}/vmui/#/?g0.expr={urllib.parse.quote(selector)}",
                }
            )
        return out


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


@functools.cache
def alert_rules() -> dict[str, dict[str, Any]]:
    """The lab's alerting rules by alert name (``labels`` and ``annotations``)."""
    doc = yaml.safe_load((PACKAGE_DIR / "rules" / "alerts.yml").read_text(encoding="utf-8"))
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


# -- the process ------------------------------------------------------------------

#: Where the feeder records its progress, in the lab's state directory.
STATE_NAME = "scale.json"
#: Models per import request: about 2 MB of JSON lines at 60 points.
_MODELS_PER_REQUEST = 500


@dataclass
class Feeder:
    """Imports the history, then appends a point per series and re-posts the alerts."""

    fleet: Fleet
    vm_url: str
    alertmanager_url: str
    interval: float
    history: float
    step: float
    state_path: Path

    def __post_init__(self) -> None:
        self.record: dict[str, Any] = {
            "models": len(self.fleet.models),
            "breaching": len(self.fleet.kinds),
            "series": self.fleet.series,
            "metrics": [m.name for m in METRICS],
            "interval": self.interval,
            "ready": False,
        }

    def save(self) -> None:
        """Write the record atomically."""
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.record, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.state_path)

    def import_history(self, end: float) -> None:
        """Import ``history`` seconds up to ``end`` at ``step``: one request per batch of
        models, the next batch rendered while the last is sent."""
        points = int(self.history // self.step) + 1
        stamps = [end - (points - 1 - i) * self.step for i in range(points)]
        started = time.monotonic()
        count = len(self.fleet.models)
        sending: threading.Thread | None = None
        failure: list[BaseException] = []

        def send(body: bytes) -> None:
            try:
                web.post_bytes(f"{self.vm_url}/api/v1/import", body, timeout=120)
            except BaseException as exc:  # re-raised on the main thread
                failure.append(exc)

        for first in range(0, count, _MODELS_PER_REQUEST):
            last = min(count, first + _MODELS_PER_REQUEST)
            body = "".join(self.fleet.history_lines(stamps, first, last)).encode()
            if sending is not None:
                sending.join()
            if failure:
                raise failure[0]
            sending = threading.Thread(target=send, args=(body,), daemon=True)
            sending.start()
        if sending is not None:
            sending.join()
        if failure:
            raise failure[0]
        self.record.update(
            history_points=points,
            history_step=self.step,
            samples_imported=points * self.fleet.series,
            import_seconds=round(time.monotonic() - started, 3),
        )

    def flush(self) -> None:
        """Make what was imported searchable now: VictoriaMetrics otherwise buffers new
        rows for a few seconds before queries see them."""
        web.get_bytes(f"{self.vm_url}/internal/force_flush", timeout=60)

    def visible(self) -> bool:
        """Whether VictoriaMetrics answers every metric for every model."""
        for metric in METRICS:
            query = urllib.parse.urlencode({"query": f"count({metric.name})"})
            try:
                body = web.get_json(f"{self.vm_url}/api/v1/query?{query}", timeout=30)
            except web.HTTPCallError:
                return False
            result = body.get("data", {}).get("result", [])
            if not result or int(float(result[0]["value"][1])) < len(self.fleet.models):
                return False
        return True

    def tick(self, at: float) -> None:
        """Append one point per series at ``at`` and re-post the alerts."""
        body = self.fleet.point_text(at).encode()
        web.post_bytes(f"{self.vm_url}/api/v1/import/prometheus", body, timeout=60)
        self.flush()
        # endsAt well past the next tick: the alerts stay firing while the feeder runs,
        # and resolve on their own a few minutes after it stops.
        until = at + max(300.0, 4 * self.interval)
        alerts = self.fleet.alerts(self.vm_url, self.record["started_at"], until)
        if alerts:
            web.post_bytes(
                f"{self.alertmanager_url}/api/v2/alerts",
                json.dumps(alerts).encode(),
                content_type="application/json",
            )
        self.record.update(last_append=at, alerts=len(alerts))

    def run(self) -> None:
        """Import, wait until visible, then tick forever."""
        now = time.time()
        self.record["started_at"] = now
        end = math.floor(now / self.step) * self.step
        _wait_healthy(f"{self.vm_url}/health")
        # The first tick posts the alerts: Alertmanager, started alongside, must be up.
        _wait_healthy(f"{self.alertmanager_url}/-/ready")
        print(f"importing {self.history:g}s of history for {self.fleet.series} series", flush=True)
        self.import_history(end)
        print(f"imported in {self.record['import_seconds']}s", flush=True)
        self.tick(time.time())
        while not self.visible():
            time.sleep(0.2)
        self.record["ready"] = True
        self.record["ready_seconds"] = round(time.time() - now, 3)
        self.save()
        while True:
            next_at = (math.floor(time.time() / self.interval) + 1) * self.interval
            time.sleep(max(0.0, next_at - time.time()))
            try:
                self.tick(next_at)
            except web.HTTPCallError as exc:
                print(f"append at {_iso(next_at)} failed: {exc}", flush=True)
                continue
            self.save()


def _wait_healthy(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not web.is_ok(url):
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} does not answer after {timeout:.0f}s")
        time.sleep(0.1)


def read_state(state_dir: Path) -> dict[str, Any] | None:
    """The feeder's record in ``state_dir``, or None if it has written none yet."""
    try:
        data: dict[str, Any] = json.loads((state_dir / STATE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def main(argv: list[str] | None = None) -> int:
    """``python -m lab.scale``: the feeder process ``lab up --scale`` starts."""
    parser = argparse.ArgumentParser(prog="python -m lab.scale", description=__doc__)
    parser.add_argument("--victoria", required=True, metavar="URL")
    parser.add_argument("--alertmanager", required=True, metavar="URL")
    parser.add_argument("--models", type=int, required=True)
    parser.add_argument("--breaching", type=float, required=True, metavar="FRACTION")
    parser.add_argument("--interval", type=float, required=True, metavar="SECONDS")
    parser.add_argument("--history", type=float, required=True, metavar="SECONDS")
    parser.add_argument("--step", type=float, required=True, metavar="SECONDS")
    parser.add_argument("--state-dir", type=Path, required=True, metavar="DIR")
    args = parser.parse_args(argv)
    feeder = Feeder(
        Fleet.of(args.models, args.breaching),
        args.victoria,
        args.alertmanager,
        args.interval,
        args.history,
        args.step,
        args.state_dir / STATE_NAME,
    )
    feeder.save()
    feeder.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
