"""What an incident is: its states, its id, its alerts, and what a sync of the
alerts did. One per firing alert group (model + alert name)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from adapters.records import AlertRecord
from console.incidents.timeline import iso

STATES = ("triggered", "acknowledged", "mitigated", "resolved")
#: Severity labels, most urgent first; anything else ranks after them.
SEVERITY_ORDER = ("critical", "page", "high", "error", "warning", "ticket", "info")
ID_PREFIX = "INC-"


class IncidentError(Exception):
    """The incident does not exist, cannot move that way, or the store failed."""


def incident_id(number: int) -> str:
    return f"{ID_PREFIX}{number}"


def parse_incident_id(text: str) -> int:
    """``INC-7``, ``inc-7`` or ``7`` → 7."""
    raw = text.strip()
    if raw.upper().startswith(ID_PREFIX):
        raw = raw[len(ID_PREFIX) :]
    # SQLite keeps numbers up to 2**63 - 1: a longer one names no incident.
    if not (raw.isascii() and raw.isdigit()) or int(raw) >= 2**63:
        raise IncidentError(f"{text!r} is not an incident id (like {ID_PREFIX}7)")
    return int(raw)


def severity_rank(severity: str) -> int:
    try:
        return SEVERITY_ORDER.index(severity.lower())
    except ValueError:
        return len(SEVERITY_ORDER)


def pick_open(
    incidents: Iterable[Incident], model: str, alertname: str | None = None
) -> Incident | None:
    """Of open ``incidents``, the one of ``model`` (and ``alertname``): the most
    severe, then the newest. The dashboard asks it of the incidents it last read."""
    candidates = [
        i
        for i in incidents
        if i.is_open and i.model == model and (alertname is None or i.alertname == alertname)
    ]
    candidates.sort(key=lambda i: (severity_rank(i.severity), -i.number))
    return candidates[0] if candidates else None


@dataclass(frozen=True, slots=True)
class IncidentAlert:
    """One alert (by fingerprint) of an incident's group."""

    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    generator_url: str
    starts_at: float
    ended_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "generator_url": self.generator_url,
            "starts_at": iso(self.starts_at),
            "ended_at": iso(self.ended_at),
        }


@dataclass(frozen=True, slots=True)
class Incident:
    """One incident as stored."""

    number: int
    model: str
    alertname: str
    severity: str
    title: str
    """The first alert's summary annotation (or its name)."""
    sli: str | None
    """The SLI the alert is about (its ``sli`` label), if known."""
    state: str
    """One of :data:`STATES`."""
    owner: str | None
    """Who took it: the first responder to acknowledge it."""
    opened_at: float
    opened_by: str
    alert_started_at: float
    """The earliest ``startsAt`` of the group's alerts."""
    acked_at: float | None
    acked_by: str | None
    ack_active: bool
    """Acknowledged, and no alert has stopped firing since."""
    mitigated_at: float | None
    resolved_at: float | None
    resolved_by: str | None
    firing: bool
    """Whether any alert of the group fires now (as last seen)."""
    updated_at: float
    alerts: tuple[IncidentAlert, ...] = ()

    @property
    def id(self) -> str:
        return incident_id(self.number)

    @property
    def is_open(self) -> bool:
        return self.state != "resolved"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "alertname": self.alertname,
            "severity": self.severity,
            "title": self.title,
            "sli": self.sli,
            "state": self.state,
            "owner": self.owner,
            "opened_at": iso(self.opened_at),
            "opened_by": self.opened_by,
            "alert_started_at": iso(self.alert_started_at),
            "acked_at": iso(self.acked_at),
            "acked_by": self.acked_by,
            "ack_active": self.ack_active,
            "mitigated_at": iso(self.mitigated_at),
            "resolved_at": iso(self.resolved_at),
            "resolved_by": self.resolved_by,
            "firing": self.firing,
            "alerts": [a.as_dict() for a in self.alerts],
        }


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one look at the alerts changed."""

    opened: tuple[Incident, ...] = ()
    retriggered: tuple[Incident, ...] = ()
    quiet: tuple[Incident, ...] = ()
    """Incidents whose every alert stopped firing just now."""
    resolved: tuple[Incident, ...] = ()
    """Incidents resolved by themselves: quiet for ``incidents.auto_resolve_after``."""

    @property
    def changed(self) -> bool:
        return bool(self.opened or self.retriggered or self.quiet or self.resolved)


def group_key(alert: AlertRecord, model_label: str) -> tuple[str, str]:
    """The alert group an incident is opened for: (model, alert name)."""
    return alert.labels.get(model_label, ""), alert.name


def alert_title(alert: AlertRecord) -> str:
    """An incident's title: the alert's summary, else its name."""
    return alert.summary or alert.name
