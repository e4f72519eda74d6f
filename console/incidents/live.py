"""Incident work that reads live sources: opening incidents from the alerts firing
now, and SLI snapshots at the moments that matter (the first breach before the
alert fired, the first mitigation, the recovery).

Each snapshot is read from Prometheus when it happens and kept in the incident's
events, so the postmortem holds the value after Prometheus has dropped the samples."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from adapters.base import AdapterError, AlertsAdapter, MetricsAdapter
from adapters.records import AlertRecord
from console.config.models import Config, SliConfig
from console.incidents.book import IncidentBook
from console.incidents.model import Incident, IncidentError, SyncResult
from console.keys_first import no_key
from console.promql import select_series

if TYPE_CHECKING:
    from console.actions.executor import Report
    from console.actions.verify import Recovery

#: Most points a range query may ask Prometheus for (it refuses more than 11,000).
MAX_POINTS = 10_000


def incident_sli(config: Config, incident: Incident) -> SliConfig | None:
    """The SLI the alert names (its ``sli`` label), else the one actions verify."""
    for name in (incident.sli, config.actions.verify.sli):
        sli = next((s for s in config.slis if s.name == name), None)
        if sli is not None:
            return sli
    return None


def metrics_source(
    config: Config, adapters: dict[str, Any], sli: SliConfig
) -> MetricsAdapter | None:
    adapter = adapters.get(config.metrics_source_for(sli) or "")
    return adapter if isinstance(adapter, MetricsAdapter) else None


def model_query(config: Config, sli: SliConfig, model: str) -> str:
    """The SLI's query narrowed to one model's series: an incident reads its model's
    series (about 25 kB over a lookback at 1,000 models), not every model's (20+ MB).
    Its whole query where the model cannot be selected in PromQL; callers still pick
    the model's series from the result."""
    return select_series(sli.query, config.model_label, model) or sli.query


def sli_reading_data(
    config: Config, incident: Incident, sli: SliConfig, value: float | None
) -> dict[str, Any]:
    return {
        "model": incident.model,
        "sli": sli.name,
        "query": sli.query,
        "value": value,
        "objective": str(sli.objective),
        "model_label": config.model_label,
    }


def value_text(value: float | None) -> str:
    return "no data" if value is None else f"{value:.4g}"


async def record_first_breach(
    book: IncidentBook,
    incident: Incident,
    config: Config,
    adapters: dict[str, Any],
    *,
    give_way: Callable[[], None] = no_key,
) -> bool:
    """Find when the SLI last went from good to breached before the alert fired, and
    keep that moment as ``sli.first_breach``. False when it cannot be found (no SLI,
    no data, never breached within ``incidents.breach_lookback``, Prometheus failing).

    A repeated page looks back no further than the end of the group's previous
    incident: a breach that began before then is that incident's, so when the SLI
    never recovered in between, this one's first breach is not known."""
    sli = incident_sli(config, incident)
    if sli is None:
        return False
    metrics = metrics_source(config, adapters, sli)
    if metrics is None:
        return False
    end = incident.alert_started_at
    start = end - config.incidents.breach_lookback
    try:
        previous = book.previous_end(incident)
    except IncidentError:
        return False
    if previous is not None:
        start = max(start, previous)
    if start >= end:
        return False
    step = max(1.0, math.ceil((end - start) / MAX_POINTS))
    try:
        result = await metrics.query_range(
            model_query(config, sli, incident.model), start, end, step
        )
    except AdapterError:
        return False
    give_way()
    series = next(
        (s for s in result.series if s.labels.get(config.model_label) == incident.model), None
    )
    if series is None:
        return False
    # Only what the window holds: points before it belong to an earlier incident.
    points = [(at, value) for at, value in series.points if at >= start]
    breach: tuple[float, float] | None = None
    for at, value in points:
        if math.isnan(value):
            continue
        if sli.objective.met(value):
            breach = None
        elif breach is None:
            breach = (at, value)
    if breach is None:
        return False
    if breach[0] <= points[0][0]:
        return False  # breached for the whole lookback: when it began is not known
    at, value = breach
    return keep_snapshot(
        book,
        incident.number,
        "sli.first_breach",
        f"{sli.name} of {incident.model} first breached {sli.objective}: {value_text(value)}",
        sli_reading_data(config, incident, sli, value),
        at,
    )


def record_first_breach_here(
    book: IncidentBook,
    incident: Incident,
    config: Config,
    adapters: dict[str, Any],
    *,
    give_way: Callable[[], None] = no_key,
) -> bool:
    """:func:`record_first_breach` run to its end in the calling thread, on an event
    loop of its own: from a worker thread, the range query's parse and the store's
    writes stay off the UI's loop, where at a thousand models they delayed keys.
    ``give_way`` is called before the read starts and before its answer is worked
    through (see :mod:`console.keys_first`)."""
    give_way()
    return asyncio.run(record_first_breach(book, incident, config, adapters, give_way=give_way))


def keep_snapshot(
    book: IncidentBook, number: int, kind: str, summary: str, data: dict[str, Any], at: float
) -> bool:
    """Keep an SLI snapshot, once per incident and kind; False if it is not kept."""
    try:
        return book.record(number, kind, summary, data, actor="prometheus", at=at, once=True)
    except IncidentError:
        return False


async def record_snapshot(
    book: IncidentBook,
    incident: Incident,
    config: Config,
    adapters: dict[str, Any],
    kind: str,
    *,
    at: float,
) -> bool:
    """Read the SLI now and keep it as ``kind`` (once per incident)."""
    sli = incident_sli(config, incident)
    if sli is None:
        return False
    metrics = metrics_source(config, adapters, sli)
    value: float | None = None
    if metrics is not None:
        try:
            result = await metrics.query(model_query(config, sli, incident.model))
        except AdapterError:
            result = None
        if result is not None:
            value = next(
                (
                    s.value
                    for s in result.samples
                    if s.labels.get(config.model_label) == incident.model
                    and not math.isnan(s.value)
                ),
                None,
            )
    what = kind.removeprefix("sli.")
    return keep_snapshot(
        book,
        incident.number,
        kind,
        f"{sli.name} of {incident.model} at {what}: {value_text(value)} ({sli.objective})",
        sli_reading_data(config, incident, sli, value),
        at,
    )


async def after_action(
    book: IncidentBook,
    incident_id: str | None,
    report: Report,
    config: Config,
    adapters: dict[str, Any],
    *,
    actor: str,
    at: float,
) -> bool:
    """An action ran under ``incident_id``: when it was an applied mitigation, move the
    incident to mitigated and keep the SLI at that moment. True when it moved."""
    from console.actions.executor import Outcome
    from console.incidents.timeline import MITIGATIONS

    if incident_id is None or report.outcome is not Outcome.APPLIED:
        return False
    params = report.plan.params
    if report.plan.action not in MITIGATIONS:
        return False
    # Turning the fallback off or resuming the pipeline undoes a mitigation.
    if (report.plan.action == "fallback" and not params.get("on")) or (
        report.plan.action == "pipeline" and not params.get("paused")
    ):
        return False
    try:
        incident = book.find(incident_id)
        moved = book.mitigated(
            incident.number,
            actor=actor,
            action=report.plan.action,
            summary=report.plan.summary(),
            audit_seq=report.result_seq,
            now=at,
        )
    except IncidentError:
        return False
    if moved:
        await record_snapshot(book, incident, config, adapters, "sli.mitigation", at=at)
    return moved


def record_recovery(
    book: IncidentBook, incident_id: str | None, recovery: Recovery, config: Config, *, at: float
) -> bool:
    """The SLI recovered after a mitigation: keep the value verification read, when
    verification watched the incident's own SLI (a latency page is not over because
    the error ratio is fine)."""
    if incident_id is None or not recovery.recovered:
        return False
    try:
        incident = book.find(incident_id)
    except IncidentError:
        return False
    sli = incident_sli(config, incident)
    if sli is None or sli.name != recovery.sli:
        return False
    return keep_snapshot(
        book,
        incident.number,
        "sli.recovery",
        f"{recovery.sli} of {recovery.model} recovered: {value_text(recovery.value)} "
        f"({recovery.threshold}) after {recovery.elapsed:.0f}s",
        {
            "model": recovery.model,
            "sli": recovery.sli,
            "query": recovery.query,
            "value": recovery.value,
            "objective": recovery.threshold,
        },
        at,
    )


def alerts_source(config: Config, adapters: dict[str, Any]) -> AlertsAdapter | None:
    """The alerts source incidents follow: ``actions.silences``, else the first one."""
    named = adapters.get(config.actions.silences or "")
    if isinstance(named, AlertsAdapter):
        return named
    return next((a for a in adapters.values() if isinstance(a, AlertsAdapter)), None)


def sync_alerts(
    book: IncidentBook,
    config: Config,
    alerts: Sequence[AlertRecord],
    *,
    actor: str = "mlconsole",
    now: float | None = None,
) -> SyncResult:
    """:meth:`IncidentBook.sync` with the config's ``incidents`` settings: the one way
    the dashboard and the commands bring incidents in line with the alerts."""
    settings = config.incidents
    return book.sync(
        alerts,
        model_label=config.model_label,
        auto_open=settings.auto_open,
        severities=settings.severities,
        actor=actor,
        now=now,
        end_grace=settings.end_grace,
        auto_resolve_after=settings.auto_resolve_after,
    )


async def sync_from_source(
    book: IncidentBook, config: Config, adapters: dict[str, Any], *, actor: str = "mlconsole"
) -> SyncResult:
    """Read every alerts source once and bring the incidents in line. Raises
    AdapterError, changing nothing, unless every configured alerts source answered:
    alerts missing from an unreachable source are not alerts that stopped."""
    unloaded = [
        name
        for name, src in config.sources.items()
        if src.type == "alertmanager" and name not in adapters
    ]
    if unloaded:
        raise AdapterError(unloaded[0], "could not be loaded, so incidents are not synced")
    sources = [a for a in adapters.values() if isinstance(a, AlertsAdapter)]
    if not sources:
        raise AdapterError("alerts", "no alerts source is configured")
    alerts = [alert for source in sources for alert in await source.alerts()]
    result = sync_alerts(book, config, alerts, actor=actor)
    for incident in result.opened:
        await record_first_breach(book, incident, config, adapters)
    return result
