"""The refresh's own work: one bulk read per SLI, readings kept while nothing moved,
history built for appending, a snapshot that costs what changed."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import respx

from adapters.base import AdapterError, MetricsAdapter
from adapters.records import LabelValues, QueryResult, RangeResult, Sample
from adapters.settings import SourceSettings
from console.sources.poller import Poller
from console.sources.sli import SliReading, SliStatus
from console.sources.snapshot import Snapshot
from console.sources.state import _History
from tests.builders import CONFIG, alert
from tests.faultserver import Reply, fault_server
from tests.test_prometheus_adapter import adapter

SETTINGS = SourceSettings(url="http://127.0.0.1:1")


class BulkMetrics(MetricsAdapter):
    """Answers the refresh's bulk read only; a per-series query is a failure."""

    def __init__(self, values: dict[str, dict[str, float]], at: float = 1000.0) -> None:
        super().__init__("prometheus", SETTINGS)
        self.values = values
        self.at = at
        self.bulk_reads: list[str] = []

    async def query(self, promql: str, at: float | None = None) -> QueryResult:
        raise AssertionError("the refresh reads in bulk, never a Sample per series")

    async def query_by_label(self, promql: str, label: str) -> LabelValues:
        self.bulk_reads.append(promql)
        by_model = {m: v[promql] for m, v in self.values.items() if promql in v}
        return LabelValues(promql, label, by_model, self.at)

    async def query_range(self, promql: str, start: float, end: float, step: float) -> RangeResult:
        return RangeResult(promql, ())


VALUES = {
    "fraud-detector": {"e": 0.3, "l": 0.2, "d": 0.01},
    "recommender": {"e": 0.001, "l": 0.1, "d": 0.5},
}


async def test_the_refresh_asks_each_query_once_in_bulk() -> None:
    metrics = BulkMetrics(VALUES)
    poller = Poller(CONFIG, {"prometheus": metrics})
    await poller.refresh("prometheus")
    assert sorted(metrics.bulk_reads) == ["d", "e", "l"]
    errors = poller.snapshot.reading("fraud-detector", "error_ratio")
    assert errors is not None and errors.status is SliStatus.BREACH
    assert errors.burn_rate == pytest.approx(30.0)  # 0.3 / (1 - 0.99)


async def test_a_reading_that_did_not_move_is_the_same_object() -> None:
    metrics = BulkMetrics(VALUES)
    poller = Poller(CONFIG, {"prometheus": metrics})
    await poller.refresh("prometheus")
    first = poller.snapshot
    metrics.at += 2  # the next refresh, within the same history step
    metrics.values = {**VALUES, "recommender": {**VALUES["recommender"], "d": 0.6}}
    await poller.refresh("prometheus")
    second = poller.snapshot
    assert second is not first
    # Nothing moved for these: a screen can skip their cells by identity.
    for key in [("fraud-detector", "error_ratio"), ("fraud-detector", "drift_psi")]:
        assert second.readings[key] is first.readings[key]
    moved = second.readings[("recommender", "drift_psi")]
    assert moved is not first.readings[("recommender", "drift_psi")]
    assert moved.value == 0.6 and moved.history == (0.6,)
    assert first.readings[("recommender", "drift_psi")].value == 0.5  # the old one kept


async def test_a_new_history_step_is_a_new_reading_with_the_point_added() -> None:
    metrics = BulkMetrics(VALUES)
    poller = Poller(CONFIG, {"prometheus": metrics})
    await poller.refresh("prometheus")
    before = poller.snapshot.readings[("fraud-detector", "error_ratio")]
    metrics.at += poller._history.step  # a whole step later, the same value
    await poller.refresh("prometheus")
    after = poller.snapshot.readings[("fraud-detector", "error_ratio")]
    assert (
        after is not before
        and after.history == (0.3, 0.3)
        and after == replace(before, history=(0.3, 0.3))
    )


async def test_a_vanished_series_says_no_data_once_then_stays_the_same() -> None:
    metrics = BulkMetrics(VALUES)
    poller = Poller(CONFIG, {"prometheus": metrics})
    await poller.refresh("prometheus")
    metrics.values = {"fraud-detector": VALUES["fraud-detector"]}
    await poller.refresh("prometheus")
    gone = poller.snapshot.readings[("recommender", "error_ratio")]
    assert (gone.value, gone.status, gone.burn_rate) == (None, SliStatus.NODATA, None)
    assert "recommender" in poller.snapshot.models  # still listed
    await poller.refresh("prometheus")
    assert poller.snapshot.readings[("recommender", "error_ratio")] is gone


async def test_a_series_gone_longer_than_the_history_window_is_forgotten() -> None:
    """What the poller holds follows the series there are now: a model whose series
    stopped (a retired model, a relabelled job) says no data while its sparkline still
    reaches back, then its readings and history are dropped and it leaves the list."""
    now = [1000.0]
    metrics = BulkMetrics(VALUES)
    poller = Poller(CONFIG, {"prometheus": metrics}, clock=lambda: now[0])
    await poller.refresh("prometheus")
    metrics.values = {"fraud-detector": VALUES["fraud-detector"]}
    await poller.refresh("prometheus")
    assert "recommender" in poller.snapshot.models  # no data, still listed
    now[0] += CONFIG.ui.history  # the sparkline's window: still held
    metrics.at = now[0]
    await poller.refresh("prometheus")
    assert poller.snapshot.reading("recommender", "error_ratio") is not None
    now[0] += 1  # past the window
    metrics.at = now[0]
    await poller.refresh("prometheus")
    assert poller.snapshot.reading("recommender", "error_ratio") is None
    assert "recommender" not in poller.snapshot.models
    assert all(key[0] != "recommender" for key in poller._history.series)
    assert poller._vanished == {}
    # It comes back: listed and read again, from a fresh history.
    metrics.values = VALUES
    await poller.refresh("prometheus")
    back = poller.snapshot.reading("recommender", "error_ratio")
    assert back is not None and back.value == VALUES["recommender"]["e"]
    assert back.history == (VALUES["recommender"]["e"],)
    assert "recommender" in poller.snapshot.models


def test_history_hands_back_the_same_tuple_while_the_value_holds() -> None:
    history = _History(points=3, step=10)
    key = ("m", "s")
    first = history.add(key, 100, 1.0)
    assert history.add(key, 102, 1.0) is first  # same step, same value: nothing built
    nan = history.add(key, 104, math.nan)
    assert history.add(key, 106, math.nan) is nan  # NaN equals NaN here
    assert history.add(key, 111, 2.0) == (nan[0], 2.0)


def test_readings_compare_and_hash_by_value() -> None:
    a = SliReading("e", "m", 0.5, SliStatus.OK, None, (0.5,))
    b = SliReading(sli="e", model="m", value=0.5, status=SliStatus.OK, history=(0.5,))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert replace(a, value=0.7) != a


def test_a_snapshot_keeps_the_alert_index_when_the_alerts_are_the_same() -> None:
    alerts = (alert("fraud-detector", "ModelErrorBudgetBurn", "page", 1, "burn"),)
    args = {"slis": tuple(CONFIG.slis), "readings": {}, "sources": {}}
    first = Snapshot.build(taken_at=1.0, alerts=alerts, **args)  # type: ignore[arg-type]
    again = Snapshot.build(taken_at=2.0, alerts=alerts, previous=first, **args)  # type: ignore[arg-type]
    assert again.alerts_by_model is first.alerts_by_model
    assert again.models is first.models == ("fraud-detector",)
    other = (*alerts, alert("recommender", "ModelFeatureDrift", "ticket", 2, "drift"))
    moved = Snapshot.build(taken_at=3.0, alerts=other, previous=again, **args)  # type: ignore[arg-type]
    assert set(moved.alerts_by_model) == {"fraud-detector", "recommender"}
    assert moved.models == ("fraud-detector", "recommender")


# -- the Prometheus adapter's bulk read -------------------------------------------------


def answer(result: list[object], **extra: object) -> bytes:
    body = {"status": "success", "data": {"resultType": "vector", "result": result}, **extra}
    return json.dumps(body).encode()


async def test_prometheus_reads_values_by_label_without_samples() -> None:
    result = [
        {"metric": {"__name__": "x", "model": "a"}, "value": [1700000000.5, "0.5"]},
        {"metric": {"model": "b"}, "value": [1700000000.5, "NaN"]},
        {"metric": {"model": "c"}, "value": [1700000000.5, "+Inf"]},
        {"metric": {"job": "no-model"}, "value": [1700000000.5, "1"]},
    ]
    reply = Reply(body=answer(result, warnings=["store gateway unavailable"]))
    with fault_server(reply) as srv:
        read = await adapter(srv.url).query_by_label("x", "model")
    assert read.values["a"] == 0.5 and math.isnan(read.values["b"])
    assert read.values["c"] == math.inf and set(read.values) == {"a", "b", "c"}
    assert read.timestamp == 1700000000.5 and read.unlabelled == 1
    assert read.warnings == ("store gateway unavailable",)


async def test_prometheus_bulk_read_of_a_malformed_sample_is_an_error() -> None:
    reply = Reply(body=answer([{"metric": {"model": "a"}, "value": "0.5"}]))
    with fault_server(reply) as srv, pytest.raises(AdapterError, match="malformed response"):
        await adapter(srv.url).query_by_label("x", "model")


async def test_the_default_bulk_read_goes_through_query() -> None:
    class PerSample(MetricsAdapter):
        async def query(self, promql: str, at: float | None = None) -> QueryResult:
            samples = (Sample({"model": "a"}, 1.0, 5.0), Sample({"job": "x"}, 2.0, 6.0))
            return QueryResult(promql, samples, ("partial",))

        async def query_range(
            self, promql: str, start: float, end: float, step: float
        ) -> RangeResult:
            return RangeResult(promql, ())

    read = await PerSample("third-party", SETTINGS).query_by_label("q", "model")
    assert (dict(read.values), read.timestamp, read.unlabelled) == ({"a": 1.0}, 5.0, 1)
    assert read.warnings == ("partial",)


# -- Alertmanager: an unchanged alert is not parsed again --------------------------------


def am_alert(fingerprint: str, state: str = "active") -> dict[str, object]:
    return {
        "fingerprint": fingerprint,
        "labels": {"alertname": "ModelErrorBudgetBurn", "model": "fraud-detector"},
        "annotations": {"summary": "burning"},
        "startsAt": "2026-11-30T05:40:00.000Z",
        "endsAt": "2026-11-30T05:50:00.000Z",
        "updatedAt": "2026-11-30T05:45:00.000Z",
        "status": {"state": state, "silencedBy": [], "inhibitedBy": []},
    }


@respx.mock
async def test_an_unchanged_alert_is_the_same_record_on_the_next_read() -> None:
    from adapters.alertmanager import AlertmanagerAdapter

    route = respx.get("http://am.test/api/v2/alerts")
    route.respond(json=[am_alert("a"), am_alert("b")])
    am = AlertmanagerAdapter("alertmanager", SourceSettings(url="http://am.test"))
    first = await am.alerts()
    route.respond(json=[am_alert("a"), am_alert("b", state="suppressed")])
    second = await am.alerts()
    assert second[0] is first[0]  # unchanged: not parsed again
    assert second[1] is not first[1] and second[1].state == "suppressed"
    am.model_label = "service"  # a record names its model by the configured label
    third = await am.alerts()
    assert third[0] is not second[0] and third[0].model_label == "service"
    await am.aclose()
