"""An incident's impact, measured once it is over: a range query of its SLI's own
PromQL over the incident window, how long it breached and how far."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from adapters.base import AdapterError
from console.config.models import Config, SliConfig
from console.incidents.book import IncidentBook
from console.incidents.model import Incident
from console.incidents.timeline import Event

if TYPE_CHECKING:
    pass

from console.incidents.live import (
    MAX_POINTS,
    incident_sli,
    keep_snapshot,
    metrics_source,
    model_query,
    sli_reading_data,
    value_text,
)


def incident_window(incident: Incident, events: Sequence[Event], now: float) -> tuple[float, float]:
    """From the SLI's first breach (else the alert firing) to the resolution, else the
    last alert's end once none fires, else ``now``."""
    breach = next((e.at for e in events if e.kind == "sli.first_breach"), None)
    start = incident.alert_started_at if breach is None else min(breach, incident.alert_started_at)
    end = incident.resolved_at
    if end is None and not incident.firing:
        ended = [a.ended_at for a in incident.alerts if a.ended_at is not None]
        end = max(ended) if ended else None
    return start, max(start, now if end is None else end)


async def measure_impact(
    incident: Incident,
    config: Config,
    adapters: dict[str, Any],
    events: Sequence[Event],
    *,
    now: float,
) -> Event | None:
    """How bad the SLI got, and for how long, from a range query of the SLI's own PromQL
    over the incident window: an ``sli.impact`` event (not kept). Its data says which
    query, window and step, or why it could not be read. None when the incident has
    no SLI."""
    sli = incident_sli(config, incident)
    if sli is None:
        return None
    start, end = incident_window(incident, events, now)
    step = max(1.0, math.ceil((end - start) / MAX_POINTS))
    data: dict[str, Any] = {
        **sli_reading_data(config, incident, sli, None),
        "window_start": start,
        "window_end": end,
        "step": step,
        "ongoing": incident.resolved_at is None and incident.firing,
    }
    data.pop("value")
    metrics = metrics_source(config, adapters, sli)
    try:
        if metrics is None:
            raise AdapterError(config.metrics_source_for(sli) or "metrics", "no such source")
        result = await metrics.query_range(
            model_query(config, sli, incident.model), start, end, step
        )
    except AdapterError as exc:  # redacted by the adapter: no credential reaches the store
        data["error"] = exc.summary()
        return Event(end, "sli.impact", "prometheus", f"{sli.name}: not measured", data)
    series = next(
        (s for s in result.series if s.labels.get(config.model_label) == incident.model), None
    )
    points = [(at, v) for at, v in (series.points if series else ()) if not math.isnan(v)]
    data |= breach_figures(sli, points)
    data["points"] = len(points)
    data["warnings"] = list(result.warnings)
    summary = (
        f"{sli.name} of {incident.model} over the incident: worst {value_text(data['worst_value'])}"
    )
    return Event(end, "sli.impact", "prometheus", summary, data)


def breach_figures(sli: SliConfig, points: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """The worst value and the breach of a series: from its first breached point to the
    first good point after its last breached one (null while still breached)."""
    worst: tuple[float, float] | None = None
    higher_is_worse = sli.objective.op in ("<", "<=")
    breached = [(at, v) for at, v in points if not sli.objective.met(v)]
    for at, value in points:
        if worst is None or (value > worst[1] if higher_is_worse else value < worst[1]):
            worst = (at, value)
    first = breached[0][0] if breached else None
    until = None
    if breached:
        last = breached[-1][0]
        until = next((at for at, v in points if at > last and sli.objective.met(v)), None)
    return {
        "worst_value": None if worst is None else worst[1],
        "worst_at": None if worst is None else worst[0],
        "breached_from": first,
        "breached_until": until,
        "breach_seconds": None if first is None or until is None else until - first,
    }


async def impact_event(
    book: IncidentBook,
    incident: Incident,
    config: Config,
    adapters: dict[str, Any],
    events: Sequence[Event],
    *,
    now: float,
) -> Event | None:
    """:func:`measure_impact`, kept in the incident once it is resolved and measured
    (its window is then final, and the postmortem keeps the figures after Prometheus
    has dropped the samples). Returns the reading when it is not in the incident's
    events: None when one was kept before, or is kept now (read the timeline again)."""
    if any(e.kind == "sli.impact" for e in events):
        return None  # measured once the window was final
    event = await measure_impact(incident, config, adapters, events, now=now)
    if event is None or incident.resolved_at is None or "error" in event.data:
        return event
    kept = keep_snapshot(
        book, incident.number, "sli.impact", event.summary, dict(event.data), event.at
    )
    return None if kept else event
