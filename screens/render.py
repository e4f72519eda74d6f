"""Rich text for snapshot values, shared by the screens."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

from adapters.base import AlertRecord
from console.format import (
    HEALTH_STYLE,
    format_age,
)
from console.incidents import Incident
from console.serving import serving_cell as serving_cell
from console.snapshot import Health, SourceHealth
from console.text import inert

SEVERITY_STYLE = {
    "page": "bold red",
    "critical": "bold red",
    "ticket": "yellow",
    "warning": "yellow",
}


def source_badge(health: SourceHealth, now: float) -> Text:
    state = health.state(now)
    style = HEALTH_STYLE[state]
    age = health.age(now)
    text = Text.assemble(
        ("● ", style), (inert(health.name), "bold"), " ", (state.value.upper(), style)
    )
    if state is Health.OK:
        text.append(f" {format_age(age)}", style="dim")
    elif age is not None:
        text.append(f" data {format_age(age)} old", style=style)
    if health.warnings and state is Health.OK:
        text.append(f" ({len(health.warnings)} warning(s))", style="yellow")
    return text


def alert_age(alert: AlertRecord, now: float) -> str:
    return format_age(now - alert.starts_at.timestamp())


def alert_state(alert: AlertRecord) -> Text:
    if alert.state == "active":
        return Text("firing", style="bold red")
    if alert.silenced_by:
        return Text("silenced", style="dim")
    if alert.inhibited_by:
        return Text("inhibited", style="dim")
    return Text(inert(alert.state), style="dim")


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


#: How each incident state looks wherever incidents are listed.
INCIDENT_STYLE = {
    "triggered": "bold red",
    "acknowledged": "bold yellow",
    "mitigated": "bold green",
    "resolved": "dim",
}


def incident_cell(incident: Incident | None) -> Text:
    """``INC-3 ACK alice``: the incident, its state, and who acknowledged it."""
    if incident is None:
        return Text("—", style="dim")
    text = Text(incident.id + " ", style="bold")
    if incident.ack_active and incident.acked_by:
        text.append(f"ack {inert(incident.acked_by)}", style=INCIDENT_STYLE["acknowledged"])
        if incident.state == "mitigated":
            text.append(" mitigated", style=INCIDENT_STYLE["mitigated"])
        return text
    text.append(inert(incident.state), style=INCIDENT_STYLE.get(incident.state, ""))
    return text
