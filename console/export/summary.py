"""The links, the summary paragraph and the action items of an export."""

from __future__ import annotations

from urllib.parse import quote

from console.config.models import format_duration
from console.export.collect import Collected
from console.export.mitigations import is_mitigation
from console.export.readers import as_str_map, as_text, event_data
from console.export.schema import (
    ACTION_NOTE_PREFIXES,
    SLOW_DETECTION,
    Detection,
    Impact,
    Link,
    MitigationRecord,
    RootCause,
    Versions,
)
from console.export.words import shortened, verdict_clause
from console.incidents.model import Incident
from console.incidents.timeline import utc


def derive_links(
    incident: Incident,
    got: Collected,
    promql: list[str],
    versions: Versions | None,
    prometheus_url: str | None,
    registry_url: str | None,
) -> list[Link]:
    links: dict[str, Link] = {}

    def add(title: str, url: str | None, kind: str) -> None:
        if url and url not in links:
            links[url] = {"title": title, "url": url, "kind": kind}

    for alert in incident.alerts:
        name = alert.labels.get("alertname", incident.alertname) if alert.labels else ""
        add(
            f"Alert {name or incident.alertname} ({alert.fingerprint})",
            alert.generator_url,
            "alert",
        )
    for event in got.fired:
        data = event_data(event)
        labels = as_str_map(data.get("labels"))
        name = labels.get("alertname") or incident.alertname
        fingerprint = as_text(data.get("fingerprint")) or "?"
        add(f"Alert {name} ({fingerprint})", as_text(data.get("generator_url")), "alert")
    if registry_url and versions is not None and versions.model:
        base = registry_url.rstrip("/")
        model = quote(versions.model, safe="")
        for label, version in (("before", versions.before), ("after", versions.after)):
            if version:
                add(
                    f"{versions.model} version {version} ({label}) in the model registry",
                    f"{base}/#/models/{model}/versions/{quote(version, safe='')}",
                    "registry",
                )
    if prometheus_url:
        for query in promql:
            add(f"Graph: {shortened(query, 70)}", graph_url(prometheus_url, query), "graph")
    return list(links.values())


def graph_url(prometheus_url: str, query: str) -> str:
    """The Prometheus graph page of ``query``."""
    return f"{prometheus_url.rstrip('/')}/graph?g0.expr={quote(query, safe='')}&g0.tab=0"


def derive_action_items(
    incident: Incident,
    got: Collected,
    root: RootCause | None,
    versions: Versions | None,
    mttd: float | None,
) -> list[str]:
    model = incident.model
    items: list[str] = []
    cause = root.cause.lower() if root else None
    if cause == "model":
        alias = versions.alias if versions and versions.alias else "serving"
        items.append(
            f"Gate new versions of {model}: evaluate each candidate against the version it "
            f"replaces (offline metrics, then a canary) before it takes the {alias} alias."
        )
    elif cause == "data":
        items.append(
            f"Add a validation check on the input features of {model} (schema, null rates, "
            "ranges) so bad inputs are caught before they reach the model."
        )
    elif cause == "infra":
        items.append(
            f"Follow up on the capacity and dependencies of {model}'s serving path "
            "(saturation limits, upstream timeouts, autoscaling)."
        )
    elif root is not None:
        items.append(f"Follow up on the cause ({root.cause}): {root.summary or 'see triage'}.")
    else:
        items.append("Determine the root cause: no runbook walk concluded with a cause.")
    if mttd is not None and mttd > SLOW_DETECTION:
        items.append(
            f"Review the MTTD of {round(mttd, 1):g} s ({format_duration(mttd)}): the SLI "
            "breached its objective that long before the alert fired (check the alert rule's "
            "for duration and rate windows)."
        )
    for event in got.notes:
        text = (as_text(event_data(event).get("text")) or "").strip()
        prefix = next((p for p in ACTION_NOTE_PREFIXES if text.lower().startswith(p)), None)
        if prefix is None:
            continue
        item = text[len(prefix) :].strip()
        if item:
            item = item[0].upper() + item[1:]
            items.append(f"{item} (note by {event.actor}, {got.at(event)})")
    return items


def derive_summary(
    incident: Incident,
    impact: Impact,
    detection: Detection,
    mitigation: list[MitigationRecord],
    root: RootCause | None,
    versions: Versions | None,
) -> str:
    sentences: list[str] = []
    alert = f"{incident.alertname} ({incident.severity})"
    if impact.first_breach_at and impact.sli:
        value = impact.first_breach_value
        shown = f" (value {value:.4g})" if value is not None else ""
        objective = f" ({impact.objective})" if impact.objective else ""
        sentences.append(
            f"The {impact.sli} SLI of {incident.model} breached its objective{objective}"
            f" at {impact.first_breach_at}{shown}; {alert} started firing at "
            f"{detection.alert_started_at}."
        )
    else:
        sentences.append(
            f"{alert} started firing for {incident.model} at {detection.alert_started_at}."
        )
    if incident.acked_at is not None:
        who = incident.acked_by or "a responder"
        sentences.append(f"{who} acknowledged it at {utc(incident.acked_at)}.")
    applied = [m for m in mitigation if m["applied"] and is_mitigation(m)]
    if applied:
        first = applied[0]
        what = first["summary"] or first["action"]
        verdict = verdict_clause(first["verification"])
        when = utc(incident.mitigated_at) if incident.mitigated_at else first["requested_at"]
        sentences.append(f"It was mitigated at {when} by a {first['action']} ({what}){verdict}.")
        if versions is not None and versions.applied and versions.before and versions.after:
            sentences.append(
                f"{versions.model or incident.model} went from version {versions.before} "
                f"to {versions.after}."
            )
    elif mitigation:
        sentences.append("No mitigation took effect.")
    else:
        sentences.append("No mitigation was recorded.")
    if impact.recovered_at:
        sentences.append(f"The SLI was back within its objective at {impact.recovered_at}.")
    if root is not None:
        by = f"Runbook {root.runbook}" if root.runbook else "Triage"
        tail = f": {root.summary.rstrip().rstrip('.')}" if root.summary else ""
        sentences.append(f"{by} classified the cause as {root.cause}{tail}.")
    if incident.resolved_at is not None:
        who = incident.resolved_by or "a responder"
        sentences.append(f"{who} resolved the incident at {utc(incident.resolved_at)}.")
    else:
        sentences.append(f"The incident is {incident.state} (not resolved) at export time.")
    return " ".join(sentences)
