"""Prometheus text exposition (format 0.0.4) of the simulation's metrics.

Everything that does not change between scrapes (metric names, label sets) is
formatted once per series and cached, so a scrape of a thousand models is mostly
string joins.
"""

from __future__ import annotations

from itertools import accumulate

from lab.catalog import PIPELINE
from lab.simulation import DURATION_BOUNDS, SCORE_BOUNDS, ModelSim, Simulation

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Metric families in exposition order: name -> (type, help).
FAMILIES: dict[str, tuple[str, str]] = {
    "mlc_model_info": (
        "gauge",
        'The model version currently served, or "fallback" (always 1).',
    ),
    "mlc_requests_total": ("counter", "Prediction requests by served version and HTTP status."),
    "mlc_request_duration_seconds": ("histogram", "Prediction request latency in seconds."),
    "mlc_prediction_score": ("histogram", "Scores returned by the model."),
    "mlc_feature_drift_psi": (
        "gauge",
        "Population Stability Index of recent inputs against the reference distribution.",
    ),
    "mlc_feature_null_ratio": ("gauge", "Share of recent inputs where the feature is null."),
    "mlc_feature_last_updated_timestamp_seconds": (
        "gauge",
        "Unix time the feature store last refreshed the model's features.",
    ),
    "mlc_pipeline_last_success_timestamp_seconds": (
        "gauge",
        "Unix time of the pipeline's last successful run.",
    ),
    "mlc_pipeline_runs_total": ("counter", "Pipeline runs by outcome."),
}


def escape_label_value(value: str) -> str:
    """Escape a label value as the text format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_le(bound: float) -> str:
    """Format a histogram bound the way client libraries do ("0.25", "1.0", "+Inf")."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _series(name: str, labels: list[tuple[str, str]]) -> str:
    """``name{a="x",b="y"} `` including the trailing space before the value."""
    inner = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels)
    return f"{name}{{{inner}}} "


class _ModelSeries:
    """The pre-formatted series prefixes of one model."""

    __slots__ = (
        "duration",
        "duration_count",
        "duration_sum",
        "features_updated",
        "model",
        "nulls",
        "pipeline_last_success",
        "pipeline_runs",
        "psi",
        "score",
        "score_count",
        "score_sum",
    )

    def __init__(self, m: ModelSim) -> None:
        model = [("model", m.name)]
        self.model = m.name
        les = [format_le(b) for b in (*DURATION_BOUNDS, float("inf"))]
        self.duration = [
            _series("mlc_request_duration_seconds_bucket", [*model, ("le", le)]) for le in les
        ]
        self.duration_sum = _series("mlc_request_duration_seconds_sum", model)
        self.duration_count = _series("mlc_request_duration_seconds_count", model)
        les = [format_le(b) for b in (*SCORE_BOUNDS, float("inf"))]
        self.score = [_series("mlc_prediction_score_bucket", [*model, ("le", le)]) for le in les]
        self.score_sum = _series("mlc_prediction_score_sum", model)
        self.score_count = _series("mlc_prediction_score_count", model)
        names = [f.spec.name for f in m.features]
        self.psi = [_series("mlc_feature_drift_psi", [*model, ("feature", n)]) for n in names]
        self.nulls = [_series("mlc_feature_null_ratio", [*model, ("feature", n)]) for n in names]
        self.features_updated = _series("mlc_feature_last_updated_timestamp_seconds", model)
        pipeline = [*model, ("pipeline", PIPELINE)]
        self.pipeline_last_success = _series(
            "mlc_pipeline_last_success_timestamp_seconds", pipeline
        )
        self.pipeline_runs = {
            status: _series("mlc_pipeline_runs_total", [*pipeline, ("status", status)])
            for status in ("success", "failed")
        }


class Exposition:
    """Renders a :class:`Simulation` as Prometheus text; call under the simulation's lock."""

    def __init__(self, sim: Simulation) -> None:
        self._sim = sim
        self._series = [_ModelSeries(m) for m in sim.models]
        # Version-dependent series appear at runtime (a deploy), so they are cached lazily.
        self._requests: dict[tuple[str, str, str], str] = {}
        self._info: dict[tuple[str, str], str] = {}

    def _request_prefix(self, model: str, version: str, status: str) -> str:
        key = (model, version, status)
        prefix = self._requests.get(key)
        if prefix is None:
            labels = [("model", model), ("version", version), ("status", status)]
            prefix = self._requests[key] = _series("mlc_requests_total", labels)
        return prefix

    def _info_prefix(self, model: str, version: str) -> str:
        key = (model, version)
        prefix = self._info.get(key)
        if prefix is None:
            labels = [("model", model), ("version", version)]
            prefix = self._info[key] = _series("mlc_model_info", labels)
        return prefix

    def render(self) -> bytes:
        """Return the whole exposition, ready to serve."""
        pairs = list(zip(self._sim.models, self._series, strict=True))
        out: list[str] = []
        add = out.append
        extend = out.extend

        def header(name: str) -> None:
            kind, text = FAMILIES[name]
            add(f"# HELP {name} {text}")
            add(f"# TYPE {name} {kind}")

        header("mlc_model_info")
        for m, s in pairs:
            add(self._info_prefix(s.model, m.label) + "1")

        header("mlc_requests_total")
        for m, s in pairs:
            for (version, status), count in m.requests.items():
                add(f"{self._request_prefix(s.model, version, status)}{count}")

        header("mlc_request_duration_seconds")
        for m, s in pairs:
            extend(
                [f"{p}{c}" for p, c in zip(s.duration, accumulate(m.duration_counts), strict=True)]
            )
            add(f"{s.duration_sum}{m.duration_sum!r}")
            add(f"{s.duration_count}{m.duration_count}")

        header("mlc_prediction_score")
        for m, s in pairs:
            extend([f"{p}{c}" for p, c in zip(s.score, accumulate(m.score_counts), strict=True)])
            add(f"{s.score_sum}{m.score_sum!r}")
            add(f"{s.score_count}{m.score_count}")

        header("mlc_feature_drift_psi")
        for m, s in pairs:
            extend([f"{p}{f.psi:.6g}" for p, f in zip(s.psi, m.features, strict=True)])

        header("mlc_feature_null_ratio")
        for m, s in pairs:
            extend([f"{p}{f.null_ratio:.6g}" for p, f in zip(s.nulls, m.features, strict=True)])

        header("mlc_feature_last_updated_timestamp_seconds")
        for m, s in pairs:
            add(f"{s.features_updated}{m.features_updated_at:.3f}")

        header("mlc_pipeline_last_success_timestamp_seconds")
        for m, s in pairs:
            add(f"{s.pipeline_last_success}{m.pipeline_last_success:.3f}")

        header("mlc_pipeline_runs_total")
        for m, s in pairs:
            for status, count in m.pipeline_runs.items():
                add(f"{s.pipeline_runs[status]}{count}")

        add("")  # the format wants a final newline
        return "\n".join(out).encode()
