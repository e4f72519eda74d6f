"""An incident's timeline: one ordered stream of everything that happened, and the
response metrics computed from it.

The stream merges what each part of the console keeps in its own place:

* incident events in the store: the incident opening, alert transitions (at
  Alertmanager's ``startsAt`` and when the alert stopped firing), acknowledgements,
  notes, state changes and SLI snapshots taken at the moments that matter;
* runbook evidence in the store, for the walks started on the incident's alerts;
* actions in the audit log, filed under the incident.

Nothing is copied between those places: the timeline is built when it is read, so
the audit log stays the one record of what was done.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from console.times import iso as iso
from console.times import seconds_of as seconds_of
from console.times import utc as utc

#: Every kind of event the timeline holds, and what it means.
EVENT_KINDS: Mapping[str, str] = {
    "incident.opened": "the console opened the incident for a firing alert group",
    "incident.acknowledged": "a responder acknowledged the incident",
    "incident.ack_expired": "the acknowledgement ended because every alert stopped firing",
    "incident.retriggered": "an alert fired again while the incident was still open",
    "incident.mitigated": "a mitigation was applied under the incident",
    "incident.resolved": "a responder resolved the incident",
    "alert.firing": "an alert of the group started firing (Alertmanager's startsAt)",
    "alert.resolved": "an alert of the group stopped firing",
    "note": "a responder's note",
    "runbook.step": "one step of a runbook walk: its inputs, outputs and decision",
    "runbook.concluded": "a runbook walk classified the cause (data, model or infra)",
    "action.intent": "an action was about to run (audit log)",
    "action.result": "what an action did (audit log)",
    "action.refusal": "an action was refused: the world had changed since its plan",
    "action.verify": "whether the SLI recovered after an action (audit log)",
    "action.reconcile": "an action left in doubt was settled by reading the real state",
    "sli.first_breach": "the SLI's first breach of its objective before the alert fired",
    "sli.mitigation": "the SLI when the first mitigation was applied",
    "sli.recovery": "the SLI back within its objective after the mitigation",
    "sli.impact": "the SLI over the incident window, from a range query of its own PromQL",
}

#: Actions that change what serves traffic (a silence only hides the page).
MITIGATIONS = frozenset({"rollback", "fallback", "pipeline"})


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened, when, and who or what did it."""

    at: float
    """Unix seconds (UTC)."""
    kind: str
    """One of :data:`EVENT_KINDS`."""
    actor: str
    """A responder, ``mlconsole``, or the system that reported it (``alertmanager``)."""
    summary: str
    """One line a responder reads."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """The evidence: labels, PromQL and values, plans, audit hashes…"""
    ref: str = ""
    """Where it is kept: ``event:N``, ``audit:N`` or ``runbook:RUN/N``."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": utc(self.at),
            "kind": self.kind,
            "actor": self.actor,
            "summary": self.summary,
            "data": dict(self.data),
            "ref": self.ref,
        }


def ordered(events: Iterable[Event]) -> list[Event]:
    """By time; at the same instant, in the order they were kept (stable)."""
    return sorted(events, key=lambda e: e.at)


@dataclass(frozen=True, slots=True)
class Metric:
    """One response metric for one incident."""

    key: str
    label: str
    definition: str
    seconds: float | None
    """None when an end of it has not happened (or was never seen)."""
    start: str | None = None
    """The ``ref`` of the event it starts at."""
    end: str | None = None
    """The ``ref`` of the event it ends at."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "definition": self.definition,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "start": self.start,
            "end": self.end,
        }


#: The metrics and how each is defined (README.md and docs/export.md repeat them).
METRIC_DEFINITIONS: Mapping[str, tuple[str, str]] = {
    "mttd": (
        "MTTD",
        "time to detect: from the SLI's first breach of its objective in Prometheus "
        "(sli.first_breach) to the alert starting to fire (first alert.firing)",
    ),
    "mtta": (
        "MTTA",
        "time to acknowledge: from the alert starting to fire to the first "
        "acknowledgement (incident.acknowledged)",
    ),
    "ttm": (
        "Time to mitigate",
        "from the alert starting to fire to the first mitigation applied under the "
        "incident (incident.mitigated)",
    ),
    "ttr": (
        "Time to recover",
        "from the alert starting to fire to the SLI being back within its objective "
        "(sli.recovery), else to the last alert.resolved",
    ),
    "mttr": (
        "MTTR",
        "time to resolve: from the alert starting to fire to the incident being "
        "resolved (incident.resolved)",
    ),
}


def _first(events: Sequence[Event], kind: str) -> Event | None:
    return next((e for e in events if e.kind == kind), None)


def _last(events: Sequence[Event], kind: str) -> Event | None:
    return next((e for e in reversed(events) if e.kind == kind), None)


def _span(key: str, start: Event | None, end: Event | None) -> Metric:
    label, definition = METRIC_DEFINITIONS[key]
    if start is None or end is None:
        return Metric(
            key,
            label,
            definition,
            None,
            None if start is None else start.ref,
            None if end is None else end.ref,
        )
    return Metric(key, label, definition, end.at - start.at, start.ref, end.ref)


def compute_metrics(events: Sequence[Event]) -> dict[str, Metric]:
    """MTTD, MTTA, time to mitigate, time to recover and MTTR from ``events``
    (ordered). Each is the difference of two events' times, named by their refs."""
    fired = _first(events, "alert.firing")
    recovered = _first(events, "sli.recovery")
    if recovered is None and not _still_firing(events):
        recovered = _last(events, "alert.resolved")
    return {
        "mttd": _span("mttd", _first(events, "sli.first_breach"), fired),
        "mtta": _span("mtta", fired, _first(events, "incident.acknowledged")),
        "ttm": _span("ttm", fired, _first(events, "incident.mitigated")),
        "ttr": _span("ttr", fired, recovered),
        "mttr": _span("mttr", fired, _first(events, "incident.resolved")),
    }


def _still_firing(events: Sequence[Event]) -> bool:
    """Whether an alert fires at the end. Alert events are taken in the order they were
    kept (``event:N``), not by time: an alert firing again may carry a start earlier than
    the moment its previous end was noticed."""
    transitions = [e for e in events if e.kind in ("alert.firing", "alert.resolved")]
    transitions.sort(key=_kept_order)
    firing: set[str] = set()
    for event in transitions:
        fingerprint = str(event.data.get("fingerprint", ""))
        if event.kind == "alert.firing":
            firing.add(fingerprint)
        else:
            firing.discard(fingerprint)
    return bool(firing)


def _kept_order(event: Event) -> tuple[int, float]:
    source, _, number = event.ref.partition(":")
    return (int(number), event.at) if source == "event" and number.isdigit() else (0, event.at)
