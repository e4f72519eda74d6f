"""Build the export document from an incident and its timeline.

Nothing is read from the store or the audit log here: the timeline already holds
both."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator, Sequence

from console import __version__
from console.export.collect import collect_events
from console.export.document import ExportDocument
from console.export.impact import derive_detection, derive_impact, derive_incident_info
from console.export.mitigations import derive_mitigations, derive_versions
from console.export.readers import event_data
from console.export.schema import SCHEMA_VERSION, MetricInfo
from console.export.summary import derive_action_items, derive_links, derive_summary
from console.export.triage import derive_root_cause, derive_triage
from console.incidents.model import Incident
from console.incidents.timeline import Event, compute_metrics, utc


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Building allocates several containers per event, none of them in a cycle; left
    on, the cyclic garbage collector walks the growing heap again and again (a third
    of the build time for 100,000 events). Pausing it only delays collecting garbage
    other code makes meanwhile."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def build_document(
    incident: Incident,
    events: Sequence[Event],
    *,
    prometheus_url: str | None = None,
    registry_url: str | None = None,
    now: float | None = None,
    measured: Event | None = None,
) -> ExportDocument:
    """The export of ``incident`` from its timeline ``events`` (ordered by time).

    With ``prometheus_url`` every PromQL gets a graph link; with ``registry_url``
    (MLflow's UI) the versions before and after a rollback get a page link.
    ``measured`` is an ``sli.impact`` reading not kept in the timeline (the incident is
    still open); the impact figures come from it, or from the last one kept.
    """
    with _collector_paused():
        return _build(incident, events, prometheus_url, registry_url, now, measured)


def _build(
    incident: Incident,
    events: Sequence[Event],
    prometheus_url: str | None,
    registry_url: str | None,
    now: float | None,
    measured: Event | None = None,
) -> ExportDocument:
    got = collect_events(events)
    if measured is not None:
        got.impact.append(measured)
        if isinstance(query := event_data(measured).get("query"), str):
            got.promql[query] = None
    metrics = compute_metrics(events)
    impact = derive_impact(incident, got)
    detection = derive_detection(incident, got)
    triage = derive_triage(got, incident.alert_started_at)
    root = derive_root_cause(got, triage)
    mitigation = derive_mitigations(got)
    versions = derive_versions(mitigation)
    promql = list(got.promql)
    mttd = metrics["mttd"].seconds if "mttd" in metrics else None
    # The long lists are typed dicts built above; the rest is validated here.
    return ExportDocument.model_construct(
        schema_=SCHEMA_VERSION,
        generator=f"mlconsole {__version__}",
        generated_at=utc(time.time() if now is None else now),
        incident=derive_incident_info(incident),
        summary=derive_summary(incident, impact, detection, mitigation, root, versions),
        impact=impact,
        detection=detection,
        timeline=got.timeline,
        triage=triage,
        mitigation=mitigation,
        root_cause=root,
        metrics={
            key: MetricInfo.model_validate(metric.as_dict()) for key, metric in metrics.items()
        },
        versions=versions,
        promql=promql,
        links=derive_links(incident, got, promql, versions, prometheus_url, registry_url),
        action_items=derive_action_items(incident, got, root, versions, mttd),
    )
