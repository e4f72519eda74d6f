"""The poller: per-source loops, no overlap, health and burn rates.

These use in-process adapters that follow the contracts in adapters/base.py;
the same behaviour against real servers is in tests/test_integration_*.py.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

from adapters.base import (
    AdapterError,
    AlertsAdapter,
    MetricsAdapter,
    RegistryAdapter,
    SwitchAdapter,
)
from adapters.records import (
    AlertRecord,
    ModelVersion,
    QueryResult,
    RangeResult,
    RegisteredModel,
    Sample,
    SilenceRecord,
)
from adapters.settings import SourceSettings
from console.config.models import Config, SourceConfig
from console.sources.poller import Poller
from console.sources.sli import SliStatus, burn_rate
from console.sources.snapshot import Health
from tests.builders import CONFIG, alert

SETTINGS = SourceSettings(url="http://127.0.0.1:1")


class ScriptedMetrics(MetricsAdapter):
    """Answers every SLI query with fixed values; can be slowed, failed, and counts overlap."""

    def __init__(self, values: dict[str, dict[str, float]], delay: float = 0.0) -> None:
        super().__init__("prometheus", SETTINGS)
        self.values = values
        self.delay = delay
        self.fail: AdapterError | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls = 0

    async def query(self, promql: str, at: float | None = None) -> QueryResult:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.calls += 1
        try:
            await asyncio.sleep(self.delay)
            if self.fail is not None:
                raise self.fail
            samples = tuple(
                Sample({"model": model}, by_sli[promql], time.time())
                for model, by_sli in self.values.items()
                if promql in by_sli
            )
            return QueryResult(
                promql, samples, ("partial: one store down",) if promql == "l" else ()
            )
        finally:
            self.in_flight -= 1

    async def query_range(self, promql: str, start: float, end: float, step: float) -> RangeResult:
        return RangeResult(promql, ())


class ScriptedAlerts(AlertsAdapter):
    def __init__(self, alerts: tuple[AlertRecord, ...]) -> None:
        super().__init__("alertmanager", SETTINGS)
        self._alerts = alerts
        self.refreshed = asyncio.Event()

    async def alerts(self) -> tuple[AlertRecord, ...]:
        self.refreshed.set()
        return self._alerts

    async def groups(self):  # type: ignore[no-untyped-def]
        return ()

    async def silences(self) -> tuple[SilenceRecord, ...]:
        return ()

    async def create_silence(self, *args: object) -> str:
        raise AssertionError("the poller only reads")

    async def expire_silence(self, silence_id: str) -> None:
        raise AssertionError("the poller only reads")


VALUES = {
    "fraud-detector": {"e": 0.3, "l": 0.2, "d": 0.01},
    "recommender": {"e": 0.001, "l": 0.1, "d": 0.5},
}


async def test_refresh_once_builds_a_snapshot() -> None:
    firing = alert("fraud-detector", "ModelErrorBudgetBurn", "page", 1, "burn")
    poller = Poller(
        CONFIG, {"prometheus": ScriptedMetrics(VALUES), "alertmanager": ScriptedAlerts((firing,))}
    )
    snap = await poller.refresh_once()
    assert snap.models == ("fraud-detector", "recommender")
    errors = snap.reading("fraud-detector", "error_ratio")
    assert errors is not None and errors.status is SliStatus.BREACH
    assert errors.burn_rate == pytest.approx(30.0)  # 0.3 / (1 - 0.99)
    assert snap.reading("recommender", "drift_psi").status is SliStatus.BREACH  # type: ignore[union-attr]
    assert snap.reading("recommender", "error_ratio").status is SliStatus.OK  # type: ignore[union-attr]
    assert [a.name for a in snap.firing] == ["ModelErrorBudgetBurn"]
    assert snap.sources["prometheus"].warnings == ("latency_p99: partial: one store down",)
    assert all(h.state(time.time()) is Health.OK for h in snap.sources.values())


async def test_a_slow_source_never_delays_a_fast_one() -> None:
    slow = ScriptedMetrics(VALUES, delay=30)
    fast = ScriptedAlerts(())
    poller = Poller(CONFIG, {"prometheus": slow, "alertmanager": fast})
    published: list[str] = []
    poller.on_snapshot = lambda snap: published.append("x")
    poller.start()
    try:
        await asyncio.wait_for(fast.refreshed.wait(), timeout=10)
        while not slow.in_flight:  # let the slow source's first query start
            await asyncio.sleep(0.01)

        async def alerts_published() -> None:
            while not (published and poller.snapshot.sources["alertmanager"].last_success):
                await asyncio.sleep(0.01)

        await asyncio.wait_for(alerts_published(), timeout=10)
        assert poller.snapshot.sources["alertmanager"].last_success is not None
        assert poller.snapshot.sources["prometheus"].last_success is None
        assert published  # the alerts snapshot went out without waiting
    finally:
        await poller.stop()


async def test_refreshes_of_one_source_never_overlap() -> None:
    metrics = ScriptedMetrics(VALUES, delay=0.05)
    config = Config.model_validate(
        {
            **CONFIG.model_dump(mode="json", exclude={"sources"}),
            "slis": [{"name": "e", "query": "e", "objective": "< 1"}],
            "sources": {
                "prometheus": {"type": "prometheus", "url": "http://x:1", "interval": 0.01}
            },
        }
    )
    poller = Poller(config, {"prometheus": metrics})
    poller.start()
    try:
        for _ in range(5):
            poller.refresh_now()  # ask for more refreshes than the loop can run
            await poller.refresh("prometheus")  # and refresh by hand at the same time
        assert metrics.calls >= 5
        assert metrics.max_in_flight == 1
    finally:
        await poller.stop()


async def test_a_failing_source_is_down_keeps_its_data_and_recovers() -> None:
    metrics = ScriptedMetrics(VALUES)
    poller = Poller(CONFIG, {"prometheus": metrics})
    await poller.refresh("prometheus")
    metrics.fail = AdapterError("prometheus", "cannot connect", url="http://127.0.0.1:1")
    await poller.refresh("prometheus")
    health = poller.snapshot.sources["prometheus"]
    assert health.state(time.time()) is Health.DOWN
    assert "cannot connect" in (health.last_error or "")
    assert poller.snapshot.reading("fraud-detector", "error_ratio") is not None  # kept, not hidden
    metrics.fail = None
    await poller.refresh("prometheus")
    assert poller.snapshot.sources["prometheus"].state(time.time()) is Health.OK


def test_health_states() -> None:
    from console.sources.snapshot import SourceHealth

    h = SourceHealth("p", "prometheus", interval=2, stale_after=6)
    assert h.state(100) is Health.PENDING
    ok = SourceHealth("p", "prometheus", 2, 6, last_success=100)
    assert ok.state(103) is Health.OK and ok.state(107) is Health.STALE and ok.age(107) == 7
    down = SourceHealth(
        "p", "prometheus", 2, 6, last_success=100, last_error="x", last_error_at=101
    )
    assert down.state(101) is Health.DOWN and down.age(110) == 10


def test_burn_rate_for_good_ratio_and_query() -> None:
    availability = Config.model_validate(
        {
            "sources": {"p": {"type": "prometheus", "url": "http://x:1"}},
            "slis": [{"name": "a", "query": "a", "objective": ">= 0.99", "slo": {"target": 0.99}}],
        }
    ).slis[0]
    assert burn_rate(availability, 0.86, None) == pytest.approx(14.0)
    assert burn_rate(availability, 0.86, 0.05) == pytest.approx(5.0)  # from error_ratio_query
    assert burn_rate(availability, None, None) is None
    # A bad ratio below zero (a counter reset, a rounding) burns nothing; NaN has no rate.
    assert burn_rate(availability, 1.02, None) == 0.0
    assert burn_rate(availability, 0.5, -0.01) == 0.0
    assert burn_rate(availability, 0.5, -0.0) == 0.0
    assert burn_rate(availability, 0.5, math.nan) is None


async def test_a_broken_adapter_type_is_a_down_source_not_a_crash() -> None:
    from console.sources.build import build_adapters

    config = Config.model_validate(
        {"sources": {"p": {"type": "no-such-adapter", "url": "http://x:1"}}}
    )
    adapters, failures = build_adapters(config)
    assert adapters == {} and "unknown adapter type" in failures["p"]
    poller = Poller(config, adapters, load_errors=failures)
    assert poller.snapshot.sources["p"].state(time.time()) is Health.DOWN


def test_status_exit_codes() -> None:
    from dataclasses import replace as dc_replace

    from console.cli.status import exit_code
    from console.sources.snapshot import Snapshot
    from tests.builders import NOW, snapshot

    firing = snapshot()
    assert exit_code(firing, NOW) == 1  # alerts firing
    quiet = Snapshot.build(
        taken_at=NOW, slis=firing.slis, readings=firing.readings, alerts=(), sources=firing.sources
    )
    assert exit_code(quiet, NOW) == 0  # healthy
    down = snapshot(prometheus_down=True)
    assert exit_code(down, NOW) == 3  # unreachable wins over firing
    silenced = dc_replace(firing.alerts[0], state="suppressed", silenced_by=("s1",))
    only_silenced = Snapshot.build(
        taken_at=NOW,
        slis=firing.slis,
        readings=firing.readings,
        alerts=(silenced,),
        sources=firing.sources,
    )
    assert exit_code(only_silenced, NOW) == 0  # a silenced alert pages no one


def test_history_keeps_one_point_per_step() -> None:
    from console.sources.state import _History

    history = _History(points=3, step=10)
    key = ("m", "s")
    assert history.add(key, 100, 1.0) == (1.0,)
    assert history.add(key, 105, 2.0) == (2.0,)  # same step: the newest value wins
    assert history.add(key, 111, 3.0) == (2.0, 3.0)
    history.add(key, 121, 4.0)
    assert history.add(key, 131, 5.0) == (3.0, 4.0, 5.0)  # bounded


class ScriptedRegistry(RegistryAdapter):
    """A registry that knows its models, whatever the metrics say."""

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__("registry", SETTINGS)
        self.names = names

    async def models(self) -> tuple[RegisteredModel, ...]:
        return tuple(RegisteredModel(n, {"champion": "3"}) for n in self.names)

    async def versions(self, model: str) -> tuple[ModelVersion, ...]:
        return ()

    async def version(self, model: str, version: str) -> ModelVersion | None:
        return None

    async def alias(self, model: str, alias: str) -> str | None:
        return "3"

    async def set_alias(self, model: str, alias: str, version: str) -> None:
        raise AssertionError("the poller only reads")


class ScriptedSwitch(SwitchAdapter):
    """A fallback switch: on for the models in ``on``; ``fail`` makes every read fail."""

    def __init__(self, on: set[str]) -> None:
        super().__init__("serving", SETTINGS)
        self.on = on
        self.fail: AdapterError | None = None
        self.asked: list[str] = []

    async def state(self, target: str) -> bool:
        self.asked.append(target)
        if self.fail is not None:
            raise self.fail
        return target in self.on

    async def set_state(self, target: str, on: bool) -> None:
        raise AssertionError("the poller only reads")


WORLD = CONFIG.model_copy(
    update={
        "sources": {
            **CONFIG.sources,
            "registry": SourceConfig(type="mlflow", url="http://127.0.0.1:3"),
            "serving": SourceConfig(type="http-switch", url="http://127.0.0.1:4"),
        },
        "actions": CONFIG.actions.model_copy(update={"fallback": "serving"}),
    }
)


async def test_models_stay_from_the_registry_while_the_metrics_are_down() -> None:
    metrics = ScriptedMetrics(VALUES)
    metrics.fail = AdapterError("prometheus", "cannot connect", url="http://127.0.0.1:1")
    registry = ScriptedRegistry(("fraud-detector", "recommender"))
    poller = Poller(WORLD, {"prometheus": metrics, "registry": registry})
    snap = await poller.refresh_once()
    assert snap.sources["prometheus"].state(time.time()) is Health.DOWN
    # The registry knows them: they stay listed, their SLIs unknown, so keys act on them.
    assert snap.models == ("fraud-detector", "recommender")
    assert snap.reading("fraud-detector", "error_ratio") is None


async def test_status_reads_each_switch_once_the_models_are_known() -> None:
    switch = ScriptedSwitch({"fraud-detector"})
    poller = Poller(WORLD, {"prometheus": ScriptedMetrics(VALUES), "serving": switch})
    snap = await poller.refresh_once()
    assert sorted(switch.asked) == ["fraud-detector", "recommender"]
    assert snap.switches["fallback"] == {"fraud-detector": True, "recommender": False}
    assert snap.sources["serving"].state(time.time()) is Health.OK


async def test_a_switch_whose_server_is_down_is_down_not_ok() -> None:
    switch = ScriptedSwitch(set())
    switch.fail = AdapterError("serving", "cannot connect", url="http://127.0.0.1:4")
    poller = Poller(WORLD, {"prometheus": ScriptedMetrics(VALUES), "serving": switch})
    snap = await poller.refresh_once()
    assert snap.sources["serving"].state(time.time()) is Health.DOWN


async def test_a_switch_with_no_model_to_ask_stays_pending() -> None:
    switch = ScriptedSwitch(set())
    poller = Poller(WORLD, {"serving": switch})
    snap = await poller.refresh_once()
    assert switch.asked == []
    assert snap.sources["serving"].state(time.time()) is Health.PENDING


def test_alerts_name_their_model_by_the_configured_label() -> None:
    from datetime import UTC, datetime

    from console.sources.snapshot import Snapshot

    record = AlertRecord(
        fingerprint="f1",
        labels={"alertname": "ModelErrorBudgetBurn", "service": "fraud-detector"},
        annotations={},
        starts_at=datetime.now(UTC),
        ends_at=None,
        updated_at=None,
        state="active",
    )
    snap = Snapshot.build(
        taken_at=time.time(),
        slis=tuple(CONFIG.slis),
        readings={},
        alerts=(record,),
        sources={},
        model_label="service",
    )
    assert [a.model for a in snap.alerts] == ["fraud-detector"]
    assert snap.models == ("fraud-detector",)


async def test_a_switch_is_read_as_soon_as_the_first_models_are_known() -> None:
    slow = WORLD.model_copy(
        update={
            "sources": {
                **WORLD.sources,
                # Its next turn would be an hour away: only the models' arrival wakes it.
                "serving": WORLD.sources["serving"].model_copy(update={"interval": 3600.0}),
            }
        }
    )
    switch = ScriptedSwitch({"fraud-detector"})
    read = asyncio.Event()
    metrics = ScriptedMetrics(VALUES, delay=0.05)  # answers after the switch's first turn
    poller = Poller(
        slow,
        {"prometheus": metrics, "serving": switch},
        on_snapshot=lambda snap: read.set() if snap.switches.get("fallback") else None,
    )
    poller.start()
    try:
        await asyncio.wait_for(read.wait(), timeout=60)
    finally:
        await poller.stop()
    assert poller.snapshot.switches["fallback"]["fraud-detector"] is True


async def test_answers_are_applied_in_the_state_thread_and_measured_there() -> None:
    import threading

    from console.render import fitting, model_table

    loop_thread = threading.current_thread()
    book = fitting.WidthBook()
    built_in: list[tuple[threading.Thread, int]] = []

    def on_built(snap: Any) -> None:
        built_in.append((threading.current_thread(), len(snap.readings)))
        book.measure(snap)

    poller = Poller(
        CONFIG, {"prometheus": ScriptedMetrics(VALUES), "alertmanager": ScriptedAlerts(())}
    )
    poller.on_built = on_built
    published: list[Any] = []
    poller.on_snapshot = published.append
    snap = await poller.refresh_once()
    # Each source's answer became a snapshot built off the loop, then published on it.
    assert len(built_in) == 2 == len(published)
    assert all(thread is not loop_thread for thread, _ in built_in)
    assert published[-1] is snap is poller.snapshot
    # What the dashboard will ask is in the book already.
    assert len(book) == len(snap.readings) > 0
    for (model, name), reading in snap.readings.items():
        sli = next(s for s in snap.slis if s.name == name)
        assert book.widths(sli, reading) == model_table.sli_widths(sli, reading), model
    await poller.stop()


async def test_the_heap_is_trimmed_in_the_state_thread_once_alerts_fall() -> None:
    import threading

    from console.memory import HeapTrimmer

    two = (
        alert("fraud-detector", "ModelErrorBudgetBurn", "page", 1, "burn"),
        alert("recommender", "ModelErrorBudgetBurn", "page", 1, "burn"),
    )
    source = ScriptedAlerts(two)
    poller = Poller(CONFIG, {"alertmanager": source})
    trimmed = threading.Event()
    seen: list[tuple[str, int]] = []

    def trim() -> bool:  # what the poller held when it trimmed, and where it ran
        seen.append((threading.current_thread().name, len(poller.snapshot.alerts)))
        trimmed.set()
        return True

    # No trim on the clock (an hour), one as soon as the alerts fall.
    poller.trimmer = HeapTrimmer(interval=3600, soon=0, trim=trim)
    await poller.refresh("alertmanager")
    assert len(poller.snapshot.alerts) == 2
    source._alerts = two[:1]  # one resolves
    await poller.refresh("alertmanager")
    assert await asyncio.to_thread(trimmed.wait, 10)
    # After the snapshot that let the alert go, in the poller's state thread.
    assert seen == [("poller-state_0", 1)]
    await poller.stop()


async def test_alerts_answered_again_unchanged_keep_the_snapshots_tuple() -> None:
    """An alerts refresh that brings the same alerts (new objects, equal) leaves the
    snapshot's alerts as the very tuple they were, and with them its alert index: the
    screens see by identity that no alert changed. Any change replaces them."""
    from dataclasses import replace
    from datetime import UTC, datetime

    first = (
        alert("fraud-detector", "ModelErrorBudgetBurn", "page", 3, "burn"),
        alert("recommender", "ModelLatencyHigh", "ticket", 12, "slow"),
    )
    source = ScriptedAlerts(first)
    poller = Poller(CONFIG, {"alertmanager": source})
    await poller.refresh("alertmanager")
    kept, index = poller.snapshot.alerts, poller.snapshot.alerts_by_model
    assert kept == first

    source._alerts = tuple(replace(a) for a in first)  # the same alerts, answered again
    await poller.refresh("alertmanager")
    assert poller.snapshot.alerts is kept and poller.snapshot.alerts_by_model is index

    later = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    moved = (replace(first[0], updated_at=later), first[1])  # Alertmanager saw it again
    source._alerts = moved
    await poller.refresh("alertmanager")
    assert poller.snapshot.alerts == moved and poller.snapshot.alerts is not kept
    assert poller.snapshot.alerts_for("fraud-detector")[0].updated_at == later

    source._alerts = ()  # both resolved
    await poller.refresh("alertmanager")
    assert poller.snapshot.alerts == () and poller.snapshot.alerts_by_model == {}
    await poller.stop()
