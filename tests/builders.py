"""Deterministic configs and snapshots for UI unit tests."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.records import AlertRecord
from console.config.models import Config
from console.sources.sli import SliReading, burn_rate, judge
from console.sources.snapshot import Snapshot, SourceHealth

NOW = datetime(2026, 11, 23, 3, 14, 0, tzinfo=UTC).timestamp()

CONFIG = Config.model_validate(
    {
        "sources": {
            "prometheus": {"type": "prometheus", "url": "http://127.0.0.1:1", "interval": 2},
            "alertmanager": {"type": "alertmanager", "url": "http://127.0.0.1:2", "interval": 2},
        },
        # Screens here render fixed snapshots; tests that want incidents open them.
        "incidents": {"auto_open": False},
        "slis": [
            {
                "name": "error_ratio",
                "title": "Errors",
                "query": "e",
                "objective": "< 0.01",
                "slo": {"target": 0.99},
            },
            {
                "name": "latency_p99",
                "title": "p99",
                "query": "l",
                "objective": "< 0.5",
                "unit": "seconds",
            },
            {
                "name": "drift_psi",
                "title": "Drift PSI",
                "query": "d",
                "objective": "< 0.25",
                "unit": "psi",
            },
        ],
    }
)

VALUES = {
    "fraud-detector": {"error_ratio": 0.58, "latency_p99": 0.21, "drift_psi": 0.03},
    "churn-predictor": {"error_ratio": 0.002, "latency_p99": 0.19, "drift_psi": 0.41},
    "recommender": {"error_ratio": 0.001, "latency_p99": 0.12, "drift_psi": 0.02},
}


def alert(model: str, name: str, severity: str, minutes_ago: float, summary: str) -> AlertRecord:
    return AlertRecord(
        fingerprint=f"{model}-{name}",
        labels={"alertname": name, "model": model, "severity": severity, "cause_hint": "model"},
        annotations={"summary": summary, "runbook": "model-regression"},
        starts_at=datetime.fromtimestamp(NOW - minutes_ago * 60, UTC),
        ends_at=None,
        updated_at=None,
        state="active",
        generator_url="http://127.0.0.1:19090/graph?g0.expr=mlc%3Aerror_ratio",
    )


def snapshot(
    *, prometheus_down: bool = False, alerts: tuple[AlertRecord, ...] | None = None
) -> Snapshot:
    """The dashboard's test world; ``alerts`` replaces its two firing alerts."""
    slis = tuple(CONFIG.slis)
    readings = {}
    for model, values in VALUES.items():
        for sli in slis:
            value = values[sli.name]
            history = tuple(value * (0.2 + i / 10) for i in range(10))
            readings[(model, sli.name)] = SliReading(
                sli.name, model, value, judge(sli, value), burn_rate(sli, value, None), history
            )
    prom = SourceHealth("prometheus", "prometheus", 2, 6, last_success=NOW - 1)
    if prometheus_down:
        prom = SourceHealth(
            "prometheus",
            "prometheus",
            2,
            6,
            last_success=NOW - 42,
            last_error="prometheus: cannot connect (http://127.0.0.1:1)",
            last_error_at=NOW - 1,
        )
    sources = {
        "prometheus": prom,
        "alertmanager": SourceHealth("alertmanager", "alertmanager", 2, 6, last_success=NOW - 1),
    }
    if alerts is None:
        alerts = (
            alert(
                "fraud-detector",
                "ModelErrorBudgetBurn",
                "page",
                3,
                "fraud-detector burns its error budget 58x",
            ),
            alert(
                "churn-predictor",
                "ModelFeatureDrift",
                "ticket",
                12,
                "churn-predictor feature drift PSI 0.41",
            ),
        )
    return Snapshot.build(
        taken_at=NOW, slis=slis, readings=readings, alerts=alerts, sources=sources
    )
