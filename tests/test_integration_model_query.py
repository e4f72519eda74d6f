"""An incident's queries select its model in PromQL, against the real lab's Prometheus:
one model's series comes back, not the whole fleet's, and what is recorded from it is
what the whole query gave. Model names are escaped, never read as PromQL or a regex.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.base import MetricsAdapter
from adapters.records import AlertRecord, QueryResult, RangeResult
from console.config.loader import load_config
from console.incidents.book import IncidentBook
from console.incidents.impact import measure_impact
from console.incidents.live import record_first_breach
from console.promql import promql_escape, select_series
from console.sources.build import build_adapters
from tests.test_integration_actions import MODEL, bad_deploy, lab_config, wait_for

pytestmark = pytest.mark.integration

SLI, SLI_QUERY = "error_ratio", "mlc:error_ratio:rate1m"


class Recording(MetricsAdapter):
    """The real Prometheus adapter, keeping every answer; ``whole`` asks every range
    query as the SLI's whole query instead (what incidents asked before)."""

    def __init__(self, inner: MetricsAdapter, whole: str | None = None) -> None:
        super().__init__(inner.name, inner.settings)
        self.inner = inner
        self.whole = whole
        self.answers: list[QueryResult | RangeResult] = []

    async def query(self, promql: str, at: float | None = None) -> QueryResult:
        answer = await self.inner.query(promql, at)
        self.answers.append(answer)
        return answer

    async def query_range(self, promql: str, start: float, end: float, step: float) -> RangeResult:
        answer = await self.inner.query_range(self.whole or promql, start, end, step)
        self.answers.append(answer)
        return answer


def sli_value(lab: Any) -> float:
    """The SLI's own query for MODEL, as Prometheus answers it now (0 if no data)."""
    url, query = f"{lab.prometheus_url}/api/v1/query", f'{SLI_QUERY}{{model="{MODEL}"}}'
    result = httpx.get(url, params={"query": query}, timeout=10).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def paging_alert(started: float) -> AlertRecord:
    return AlertRecord(
        fingerprint="fp-lab",
        labels={"alertname": "ModelErrorBudgetBurn", "model": MODEL, "sli": SLI},
        annotations={"summary": "errors"},
        starts_at=datetime.fromtimestamp(started, UTC),
        ends_at=None,
        updated_at=None,
        state="active",
        generator_url="",
    )


async def test_an_incident_reads_its_models_series_alone_and_records_the_same_breach(
    lab: Any, tmp_path: Path
) -> None:
    from lab import control

    try:
        await found_both_ways(lab, tmp_path)
    finally:
        control.reset(lab.state_dir)


async def found_both_ways(lab: Any, tmp_path: Path) -> None:
    await asyncio.to_thread(bad_deploy, lab)  # the error ratio of MODEL breaches
    await asyncio.to_thread(wait_for, "the SLI's own query breached", lambda: sli_value(lab) > 0.01)
    config = load_config(lab_config(lab, tmp_path))
    adapters, _ = build_adapters(config)
    prometheus = adapters["prometheus"]
    assert isinstance(prometheus, MetricsAdapter)
    sli = next(s for s in config.slis if s.name == SLI)
    started = time.time()  # the page: after the breach Prometheus shows
    selected, whole = Recording(prometheus), Recording(prometheus, whole=sli.query)
    found = {}
    try:
        for name, adapter in (("selected", selected), ("whole", whole)):
            book = IncidentBook(tmp_path / f"{name}.db")
            incident = book.open([paging_alert(started)], model_label="model", actor="t")
            assert await record_first_breach(book, incident, config, {"prometheus": adapter})
            (breach,) = [e for e in book.events(incident.number) if e.kind == "sli.first_breach"]
            impact = await measure_impact(
                incident, config, {"prometheus": adapter}, [breach], now=started
            )
            assert impact is not None and "error" not in impact.data
            found[name] = (breach.at, breach.data, impact.data)
            book.close()
    finally:
        await prometheus.aclose()

    # One series, the model's, for the first breach and for the impact alike...
    for answer in selected.answers:
        assert isinstance(answer, RangeResult)
        assert [s.labels["model"] for s in answer.series] == [MODEL]
    # ...where the whole query brought every model of the lab.
    assert all(isinstance(a, RangeResult) and len(a.series) > 1 for a in whole.answers)
    # The same breach, value and impact figures as from the whole query.
    assert found["selected"] == found["whole"]


async def test_a_model_name_with_quotes_and_backslashes_selects_that_model_only(
    lab: Any, tmp_path: Path
) -> None:
    config = load_config(lab_config(lab, tmp_path))
    adapters, _ = build_adapters(config)
    prometheus = adapters["prometheus"]
    assert isinstance(prometheus, MetricsAdapter)
    weird = "we\"ird'mo\\del $1 ${x} } or vector(9) #"
    literal = promql_escape(weird.replace("$", "$$"))
    # The lab's models plus one series that carries the odd name.
    query = f'mlc:error_ratio:rate1m or label_replace(vector(0.5), "model", "{literal}", "", "")'
    now = time.time()
    try:
        instant = await prometheus.query(select_series(query, "model", weird) or "")
        ranged = await prometheus.query_range(
            select_series(query, "model", weird) or "", now - 30, now, 5
        )
        # A name is a name, not a pattern: nothing is named "fraud.*".
        pattern = await prometheus.query(select_series(query, "model", "fraud.*") or "")
        lab_model = await prometheus.query(select_series(query, "model", MODEL) or "")
    finally:
        await prometheus.aclose()

    assert [(dict(s.labels), s.value) for s in instant.samples] == [({"model": weird}, 0.5)]
    assert [dict(s.labels) for s in ranged.series] == [{"model": weird}]
    assert {v for _, v in ranged.series[0].points} == {0.5}
    assert pattern.samples == ()
    assert [s.labels["model"] for s in lab_model.samples] == [MODEL]


def test_a_label_promql_cannot_name_in_on_selects_nothing_in_promql() -> None:
    # The whole query is read then, and the model's series picked from the answer.
    assert select_series("up", "app.kubernetes.io/name", "m") is None
    assert select_series("up", "model", "") is None
