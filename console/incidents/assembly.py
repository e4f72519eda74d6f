"""An incident's whole timeline: its own events, the runbook walks filed under it,
and its actions from the audit log, in one order."""

from __future__ import annotations

import calendar
import time
from collections.abc import Sequence

from console.audit.chain import TIME_FORMAT as AUDIT_TIME_FORMAT
from console.audit.chain import AuditEntry
from console.audit.log import AuditLog
from console.incidents.book import IncidentBook
from console.incidents.model import Incident
from console.incidents.timeline import Event, ordered
from console.triage.store import RUN_GRACE, Evidence, RunRecord, Store


def timeline(
    incident: Incident,
    book: IncidentBook,
    *,
    store: Store | None = None,
    audit: AuditLog | None = None,
) -> list[Event]:
    """The incident's events, its alerts' runbook evidence and its actions, in order."""
    events = book.events(incident.number)
    if store is not None:
        events.extend(runbook_events(incident, store))
    if audit is not None:
        events.extend(audit_events(audit.entries(incident=incident.id)))
    return ordered(events)


def runbook_events(incident: Incident, store: Store) -> list[Event]:
    """The evidence of the incident's own walks: those filed under it, and those on its
    alerts filed under none that triage one of its firings. A walk of an earlier
    firing of the same alert (an earlier incident's) is never one of them."""
    out: list[Event] = []
    for run in store.incident_runs(incident.number, (a.fingerprint for a in incident.alerts)):
        if run.incident is not None and run.incident != incident.number:
            continue
        evidence = store.evidence(run.id)
        if run.incident is None and not _triages(incident, run, evidence):
            continue
        out.extend(_run_events(run, evidence))
    return out


def _triages(incident: Incident, run: RunRecord, evidence: Sequence[Evidence]) -> bool:
    """Whether a walk filed under no incident triages one of ``incident``'s firings."""
    start, end = incident.alert_started_at, incident.resolved_at
    if run.firing_at is not None:
        return run.firing_at >= start - 1e-3 and (end is None or run.firing_at <= end)
    # A walk from a store that kept no firing: judged by when it ran.
    if run.created_at < start - RUN_GRACE or (end is not None and run.created_at > end):
        return False
    ended_before = run.status == "concluded" and all(e.at < start for e in evidence)
    return not ended_before


def _run_events(run: RunRecord, items: Sequence[Evidence]) -> list[Event]:
    out = []
    for seq, evidence in enumerate(items, start=1):
        base = {
            "run": run.id,
            "runbook": run.runbook_id,
            "runbook_version": run.runbook_version,
            "step": evidence.step_id,
            "step_kind": evidence.kind,
            "inputs": dict(evidence.inputs),
            "outputs": dict(evidence.outputs),
            "decision": evidence.decision,
        }
        ref = f"runbook:{run.id}/{seq}"
        if evidence.kind == "conclude":
            cause = str(evidence.outputs.get("cause", ""))
            summary = str(evidence.outputs.get("summary", ""))
            out.append(
                Event(
                    evidence.at,
                    "runbook.concluded",
                    evidence.actor,
                    f"{run.runbook_id}: cause {cause}: {summary}",
                    {**base, "cause": cause, "summary": summary},
                    ref,
                )
            )
            continue
        out.append(
            Event(
                evidence.at,
                "runbook.step",
                evidence.actor,
                _step_line(run.runbook_id, evidence),
                base,
                ref,
            )
        )
    return out


def _step_line(runbook: str, evidence: Evidence) -> str:
    outputs = evidence.outputs
    detail = ""
    if evidence.kind == "check":
        if "error" in outputs:
            detail = f" error: {outputs['error']}"
        else:
            values = [v.get("value") for v in outputs.get("values", []) if isinstance(v, dict)]
            shown = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values[:3])
            detail = f" (value {shown or 'none'}; {evidence.inputs.get('condition', '')})"
    elif evidence.kind == "ask":
        detail = f" ({evidence.inputs.get('question', '')})"
    return f"{runbook}/{evidence.step_id} {evidence.kind}: {evidence.decision}{detail}"


def audit_events(entries: Sequence[AuditEntry]) -> list[Event]:
    """Audit entries as timeline events; the entry's seq and hash stay with it."""
    out = []
    for entry in entries:
        body = entry.body
        at = body.get("ts")
        if not isinstance(at, int | float):
            at = _audit_time(str(body.get("at", "")))
        line = entry.summary()
        out.append(
            Event(
                float(at),
                f"action.{entry.kind}",
                str(body.get("actor", "")),
                line,
                {
                    "seq": entry.seq,
                    "hash": entry.hash,
                    "action": body.get("action"),
                    "params": body.get("params"),
                    "plan": body.get("plan"),
                    "result": body.get("result"),
                    "error": body.get("error"),
                    "intent_seq": body.get("intent_seq"),
                },
                f"audit:{entry.seq}",
            )
        )
    return out


def _audit_time(text: str) -> float:
    try:
        return calendar.timegm(time.strptime(text, AUDIT_TIME_FORMAT))
    except ValueError:
        return 0.0
