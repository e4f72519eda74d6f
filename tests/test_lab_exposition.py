"""The service's Prometheus exposition, parsed back and checked for consistency."""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict

import pytest

from lab.catalog import FEATURES, PIPELINE, model_names
from lab.exposition import FAMILIES, Exposition, escape_label_value
from lab.simulation import Simulation

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Labels = tuple[tuple[str, str], ...]
Samples = dict[str, dict[Labels, float]]
Scraped = tuple[Simulation, dict[str, str], Samples]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """Parse text format 0.0.4: family types and samples keyed by name and labels."""
    types: dict[str, str] = {}
    samples: dict[str, dict[Labels, float]] = defaultdict(dict)
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types, f"family {name} declared twice"
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"unparsable line: {line!r}"
        name, raw_labels, value = match.groups()
        labels = tuple(sorted(_LABEL.findall(raw_labels or "")))
        assert labels not in samples[name], f"duplicate series: {line}"
        samples[name][labels] = float(value)
    return types, samples


def without(labels: Labels, key: str) -> Labels:
    return tuple(kv for kv in labels if kv[0] != key)


@pytest.fixture(scope="module")
def scraped() -> Scraped:
    sim = Simulation(model_names(4), start=1_000_000.0, seed=11)
    sim.inject("bad-deploy", "recommender")
    for i in range(15):
        sim.step(1_000_001.0 + i)
    types, samples = parse(Exposition(sim).render().decode())
    return sim, types, samples


def test_every_family_is_declared_with_its_type(scraped: Scraped) -> None:
    _, types, samples = scraped
    assert types == {name: kind for name, (kind, _) in FAMILIES.items()}
    for name in samples:
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert family in types or name in types


@pytest.mark.parametrize("family", ["mlc_request_duration_seconds", "mlc_prediction_score"])
def test_histograms_are_cumulative_and_consistent(scraped: Scraped, family: str) -> None:
    sim, _, samples = scraped
    buckets: dict[Labels, list[tuple[float, float]]] = defaultdict(list)
    for labels, value in samples[f"{family}_bucket"].items():
        le = dict(labels)["le"]
        buckets[without(labels, "le")].append((math.inf if le == "+Inf" else float(le), value))
    assert {dict(k)["model"] for k in buckets} == set(sim.model_names)
    for key, series in buckets.items():
        series.sort()
        counts = [v for _, v in series]
        assert counts == sorted(counts), f"{family}{key} buckets are not cumulative"
        assert series[-1][0] == math.inf
        assert counts[-1] == samples[f"{family}_count"][key]
        assert samples[f"{family}_sum"][key] > 0


def test_duration_buckets_are_the_documented_ones(scraped: Scraped) -> None:
    _, _, samples = scraped
    les = {dict(k)["le"] for k in samples["mlc_request_duration_seconds_bucket"]}
    assert les == {"0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf"}
    les = {dict(k)["le"] for k in samples["mlc_prediction_score_bucket"]}
    assert les == {f"{i / 10}" for i in range(1, 11)} | {"+Inf"}


def test_requests_match_histogram_counts(scraped: Scraped) -> None:
    _, _, samples = scraped
    totals: dict[str, float] = defaultdict(float)
    for labels, value in samples["mlc_requests_total"].items():
        d = dict(labels)
        assert set(d) == {"model", "version", "status"}
        assert d["status"] in ("200", "500")
        totals[d["model"]] += value
    for labels, count in samples["mlc_request_duration_seconds_count"].items():
        assert totals[dict(labels)["model"]] == count


def test_served_versions_and_failing_series(scraped: Scraped) -> None:
    _, _, samples = scraped
    info = {dict(k)["model"]: dict(k)["version"] for k in samples["mlc_model_info"]}
    assert info == {
        "fraud-detector": "3", "churn-predictor": "3", "recommender": "4", "model-0004": "3",
    }  # fmt: skip
    assert set(samples["mlc_model_info"].values()) == {1.0}
    requests = samples["mlc_requests_total"]
    # Every served version has both status series, zeros included, so rate() sees the
    # first error.
    for model, version in info.items():
        for status in ("200", "500"):
            key = (("model", model), ("status", status), ("version", version))
            assert key in requests


def test_feature_and_pipeline_gauges(scraped: Scraped) -> None:
    sim, _, samples = scraped
    expected = {(m, f) for m in sim.model_names for f in FEATURES}
    for name in ("mlc_feature_drift_psi", "mlc_feature_null_ratio"):
        got = {(dict(k)["model"], dict(k)["feature"]) for k in samples[name]}
        assert got == expected
        assert all(v >= 0 for v in samples[name].values())
    for name in (
        "mlc_feature_last_updated_timestamp_seconds",
        "mlc_pipeline_last_success_timestamp_seconds",
    ):
        assert len(samples[name]) == len(sim.model_names)
        assert all(1_000_000 <= v <= sim.now for v in samples[name].values())
    runs = samples["mlc_pipeline_runs_total"]
    statuses = {(dict(k)["pipeline"], dict(k)["status"]) for k in runs}
    assert statuses == {(PIPELINE, "success"), (PIPELINE, "failed")}


def test_label_values_are_escaped() -> None:
    assert escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_a_thousand_models_render_cheaply() -> None:
    # A loose bound that only an accidental O(n^2) or per-line slowness would break;
    # the measured cost is far lower (see the lab's documentation).
    sim = Simulation(model_names(1000), start=0.0, seed=1)
    sim.step(1.0)
    exposition = Exposition(sim)
    exposition.render()  # warm the label caches
    start = time.process_time()
    body = exposition.render()
    assert time.process_time() - start < 1.0
    _, samples = parse(body.decode())
    assert len(samples["mlc_model_info"]) == 1000
