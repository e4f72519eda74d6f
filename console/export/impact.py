"""The incident, its impact and its detection, from its events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from console.export.collect import Collected
from console.export.readers import (
    as_flag,
    as_int,
    as_number,
    as_str_map,
    as_text,
    event_data,
    utc_or_none,
)
from console.export.schema import AlertInfo, Detection, Impact, ImpactQuery, IncidentInfo
from console.incidents.model import Incident
from console.incidents.timeline import utc


def derive_incident_info(incident: Incident) -> IncidentInfo:
    return IncidentInfo(
        id=incident.id,
        model=incident.model,
        alertname=incident.alertname,
        severity=incident.severity,
        title=incident.title,
        state=incident.state,
        owner=incident.owner,
        sli=incident.sli,
        opened_at=utc(incident.opened_at),
        opened_by=incident.opened_by,
        alert_started_at=utc(incident.alert_started_at),
        acked_at=utc_or_none(incident.acked_at),
        acked_by=incident.acked_by,
        mitigated_at=utc_or_none(incident.mitigated_at),
        resolved_at=utc_or_none(incident.resolved_at),
        resolved_by=incident.resolved_by,
        firing=incident.firing,
        alerts=[
            AlertInfo(
                fingerprint=alert.fingerprint,
                labels=as_str_map(alert.labels),
                annotations=as_str_map(alert.annotations),
                generator_url=alert.generator_url or "",
                starts_at=utc(alert.starts_at),
                ended_at=utc_or_none(alert.ended_at),
            )
            for alert in incident.alerts
        ],
    )


def derive_impact(incident: Incident, got: Collected) -> Impact:
    first = next((e for e in got.sli if e.kind == "sli.first_breach"), None)
    sli = incident.sli
    objective: str | None = None
    for event in [*got.sli, *got.impact]:
        data = event_data(event)
        sli = sli or as_text(data.get("sli"))
        objective = objective or as_text(data.get("objective"))
    fingerprints = {as_text(event_data(e).get("fingerprint")) or "" for e in got.fired}
    fingerprints |= {alert.fingerprint for alert in incident.alerts}
    fingerprints.discard("")
    impact = Impact(
        model=incident.model,
        sli=sli,
        objective=objective,
        first_breach_at=utc_or_none(first.at if first else None),
        first_breach_value=as_number(event_data(first).get("value")) if first else None,
        worst_value=None,
        worst_at=None,
        recovered_at=None,
        breach_seconds=None,
        measured_by=None,
        alerts_fired=len(fingerprints) or (1 if got.fired else 0),
    )
    measured = event_data(got.impact[-1]) if got.impact else None
    if measured is not None:
        impact.measured_by = _impact_query(measured)
    if measured is not None and impact.measured_by is not None and "error" not in measured:
        worst_at = as_number(measured.get("worst_at"))
        breach = as_number(measured.get("breach_seconds"))
        impact.worst_value = as_number(measured.get("worst_value"))
        impact.worst_at = utc_or_none(worst_at)
        impact.recovered_at = impact.measured_by.breached_until
        impact.breach_seconds = None if breach is None else round(breach, 3)
        return impact
    # Not measured: the snapshots, of the SLI's own query only (a recovery read by
    # verification may be a shorter window's query, which recovers sooner).
    own = as_text(event_data(first).get("query")) if first else None
    own = own or next((as_text(event_data(e).get("query")) for e in got.sli), None)
    readings = [
        e
        for e in got.sli
        if (not sli or as_text(event_data(e).get("sli")) in (None, sli))
        and (own is None or as_text(event_data(e).get("query")) in (None, own))
    ]
    # Lower is worse for an objective like "> 0.9"; higher for "< 0.01".
    lower_is_worse = bool(objective and objective.lstrip().startswith(">"))
    worst: tuple[float, float] | None = None
    for event in readings:
        value = as_number(event_data(event).get("value"))
        if value is None:
            continue
        if (
            worst is None
            or (lower_is_worse and value < worst[0])
            or (not lower_is_worse and value > worst[0])
        ):
            worst = (value, event.at)
    recovered = next(
        (e for e in readings if e.kind == "sli.recovery" and (first is None or e.at >= first.at)),
        None,
    )
    breach = recovered.at - first.at if first is not None and recovered is not None else None
    impact.worst_value = worst[0] if worst else None
    impact.worst_at = utc_or_none(worst[1] if worst else None)
    impact.recovered_at = utc_or_none(recovered.at if recovered else None)
    impact.breach_seconds = None if breach is None else round(breach, 3)
    return impact


def _impact_query(data: Mapping[str, Any]) -> ImpactQuery | None:
    query = as_text(data.get("query"))
    start, end = as_number(data.get("window_start")), as_number(data.get("window_end"))
    if query is None or start is None or end is None:
        return None
    return ImpactQuery(
        query=query,
        start=utc(start),
        end=utc(end),
        step_seconds=as_number(data.get("step")) or 0.0,
        points=as_int(data.get("points")),
        ongoing=as_flag(data.get("ongoing")) is True,
        breached_from=utc_or_none(as_number(data.get("breached_from"))),
        breached_until=utc_or_none(as_number(data.get("breached_until"))),
        error=as_text(data.get("error")),
    )


def derive_detection(incident: Incident, got: Collected) -> Detection:
    first = next((e for e in got.sli if e.kind == "sli.first_breach"), None)
    fired = got.fired[0].at if got.fired else incident.alert_started_at
    queries: dict[str, None] = {}
    for event in got.sli:
        query = as_text(event_data(event).get("query"))
        if query:
            queries[query] = None
    return Detection(
        first_breach_at=utc_or_none(first.at if first else None),
        alert_started_at=utc(fired),
        opened_at=utc(incident.opened_at),
        queries=list(queries),
    )
