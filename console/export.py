"""Export an incident: a postmortem draft in Markdown, or JSON in a versioned schema.

Both are built from one :class:`ExportDocument`, which :func:`build_document` makes
from the incident and its timeline (:mod:`console.timeline`). Nothing is read from
the store or the audit log here: the timeline already holds both.

The JSON follows :data:`SCHEMA_VERSION`; :func:`export_schema` returns its JSON
Schema (draft 2020-12), generated from the models below, so every field is
documented where it is defined. ``docs/export.md`` describes both formats.

Exports must stay fast for long incidents (a flapping alert can leave 100,000
events), so the long lists (timeline, triage paths, mitigations) are typed as
``TypedDict``: they are built as plain dicts, checked by the schema and the tests,
and serialised by pydantic-core without validating each entry. The fixed-size
parts (incident, impact, detection...) are validated models.

Event data is whatever the console recorded, so every key is read defensively:
an odd or missing value is left out or shown as not known, never a crash.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, with_config
from typing_extensions import TypedDict

from console import __version__
from console.config import format_duration
from console.file_kind import not_regular
from console.incidents import Incident
from console.text import inert
from console.timeline import METRIC_DEFINITIONS, MITIGATIONS, Event, compute_metrics, utc

#: The schema every JSON export names in its ``schema`` field. A change that could
#: break a reader (a field removed, renamed or retyped) gets a new version.
SCHEMA_VERSION = "mlconsole.incident/v1"
#: The JSON Schema's ``$id``.
SCHEMA_ID = "urn:mlconsole:schema:incident:v1"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_TITLE = "mlconsole incident export"

#: The Markdown sections, in order (each a ``## `` heading).
SECTIONS = (
    "Summary",
    "Impact",
    "Detection",
    "Timeline (UTC)",
    "Triage path and evidence",
    "Mitigation",
    "Root cause",
    "Metrics",
    "Action items",
)

Format = Literal["md", "json"]

#: A detection slower than this gets an action item.
SLOW_DETECTION = 60.0
#: Note prefixes that make a note an action item.
ACTION_NOTE_PREFIXES = ("action:", "todo:")
#: Rollback plans say the version a model served before and after.
ROLLBACK = "rollback"

_UTC_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
_UTC_EXAMPLE = "2026-11-24T03:12:09.412Z"

UtcTime = Annotated[
    str,
    Field(
        pattern=_UTC_PATTERN,
        description="UTC time with milliseconds, like 2026-11-24T03:12:09.412Z",
        examples=[_UTC_EXAMPLE],
    ),
]

_STRICT = ConfigDict(extra="forbid")

#: Data as the console recorded it. Its keys are text once written as JSON; typed
#: ``Any`` so an odd key (a number) is written as text rather than warned about.
Recorded = dict[Any, Any]


# -- the document --------------------------------------------------------------------


class AlertInfo(BaseModel):
    """One alert (by fingerprint) of the incident's alert group."""

    model_config = _STRICT

    fingerprint: str = Field(description="Alertmanager's fingerprint of the alert")
    labels: dict[str, str] = Field(description="The alert's labels")
    annotations: dict[str, str] = Field(description="The alert's annotations")
    generator_url: str = Field(description="Link to the rule that fired it (may be empty)")
    starts_at: UtcTime = Field(description="Alertmanager's startsAt")
    ended_at: UtcTime | None = Field(description="When it stopped firing; null while firing")


class IncidentInfo(BaseModel):
    """The incident as stored: who, what, and when each state change happened."""

    model_config = _STRICT

    id: str = Field(pattern=r"^INC-\d+$", description="The incident id, like INC-7")
    model: str = Field(description="The model the alert group is about")
    alertname: str = Field(description="The alert group's alert name")
    severity: str = Field(description="The severity label of the group")
    title: str = Field(description="The first alert's summary annotation, or its name")
    state: str = Field(description="triggered, acknowledged, mitigated or resolved")
    owner: str | None = Field(description="The first responder to acknowledge it")
    sli: str | None = Field(description="The SLI the alert is about (its sli label)")
    opened_at: UtcTime = Field(description="When the console opened the incident")
    opened_by: str = Field(description="Who or what opened it")
    alert_started_at: UtcTime = Field(description="The earliest startsAt of the group's alerts")
    acked_at: UtcTime | None = Field(description="First acknowledgement; null if none")
    acked_by: str | None = Field(description="Who acknowledged it first")
    mitigated_at: UtcTime | None = Field(description="First mitigation applied; null if none")
    resolved_at: UtcTime | None = Field(description="When it was resolved; null while open")
    resolved_by: str | None = Field(description="Who resolved it")
    firing: bool = Field(description="Whether any alert of the group fired when exported")
    alerts: list[AlertInfo] = Field(description="The alerts of the group")


class ImpactQuery(BaseModel):
    """The range query the impact figures come from."""

    model_config = _STRICT

    query: str = Field(description="The SLI's own PromQL, as configured")
    start: UtcTime = Field(description="The window's start: the first breach, else the firing")
    end: UtcTime = Field(
        description="The window's end: the resolution, else the last alert's end, else the "
        "export (then ongoing is true)"
    )
    step_seconds: float = Field(description="The range query's step")
    points: int | None = Field(description="Samples of the model's series in the window")
    ongoing: bool = Field(description="The incident was still firing: the window ends at export")
    breached_from: UtcTime | None = Field(description="The first breached sample in the window")
    breached_until: UtcTime | None = Field(
        description="The first good sample after the last breached one; null while breached"
    )
    error: str | None = Field(
        description="Why the query could not be read; the figures then come from the sli.* "
        "snapshots"
    )


class Impact(BaseModel):
    """What the SLI did: how bad, and for how long."""

    model_config = _STRICT

    model: str = Field(description="The affected model")
    sli: str | None = Field(description="The SLI that breached; null if not known")
    objective: str | None = Field(description="Its objective as configured, like '< 0.01'")
    first_breach_at: UtcTime | None = Field(description="The first breach (sli.first_breach)")
    first_breach_value: float | None = Field(description="The SLI's value at its first breach")
    worst_value: float | None = Field(
        description="The worst value of the SLI over the incident window (measured_by): the "
        "highest for an objective like '< x', the lowest for one like '> x'. Without a "
        "measurement, the worst of the sli.* snapshots of the SLI's own query"
    )
    worst_at: UtcTime | None = Field(description="When the worst value was read")
    recovered_at: UtcTime | None = Field(
        description="Back within its objective: measured_by's breached_until, else sli.recovery"
    )
    breach_seconds: float | None = Field(
        description="How long the SLI's own query was breached (measured_by: breached_from to "
        "breached_until; else first breach to a recovery of the same query); null when not known"
    )
    measured_by: ImpactQuery | None = Field(
        description="The range query over the incident window the figures come from; null "
        "when none was made (no SLI, or no metrics source)"
    )
    alerts_fired: int = Field(ge=0, description="Distinct alerts (fingerprints) that fired")


class Detection(BaseModel):
    """How the problem was noticed."""

    model_config = _STRICT

    first_breach_at: UtcTime | None = Field(
        description="The SLI's first breach of its objective in Prometheus; null if not recorded"
    )
    alert_started_at: UtcTime = Field(
        description="The first alert.firing event, else the incident's alert start"
    )
    opened_at: UtcTime = Field(description="When the console opened the incident")
    queries: list[str] = Field(description="The PromQL behind the sli.* readings")


@with_config(_STRICT)
class PlanChange(TypedDict):
    """One line of an action's plan."""

    target: Annotated[str, Field(description="What changes, like fraud-detector@champion")]
    before: Annotated[str, Field(description="Its state before, like v4")]
    after: Annotated[str, Field(description="Its state after, like v3")]
    details: Annotated[list[str], Field(description="Lines describing both states")]


@with_config(_STRICT)
class StepRecord(TypedDict):
    """One step of a runbook walk: what was asked or measured, and what was decided."""

    at: Annotated[UtcTime, Field(description="When the step was taken")]
    step: Annotated[str, Field(description="The step's id in the runbook")]
    kind: Annotated[str | None, Field(description="check, ask, action, note, link, conclude")]
    decision: Annotated[str | None, Field(description="true, false, error, a choice...")]
    evidence: Annotated[str, Field(description="The evidence in one line, as in the Markdown")]
    query: Annotated[str | None, Field(description="A check step's PromQL")]
    result: Annotated[bool | None, Field(description="Whether a check's condition held")]
    error: Annotated[str | None, Field(description="Why a check could not run")]
    inputs: Annotated[Recorded, Field(description="The step's inputs as recorded")]
    outputs: Annotated[Recorded, Field(description="The step's outputs as recorded")]
    ref: Annotated[str, Field(description="Where the evidence is kept")]
    read_after_firing: Annotated[
        float,
        Field(description="Seconds from the alert firing to this evidence (negative: before)"),
    ]
    recheck: Annotated[bool, Field(description="A check read again (R, or a walk opened late)")]
    superseded: Annotated[
        bool, Field(description="A later reading of the same check replaced it; kept as evidence")
    ]


@with_config(_STRICT)
class TriageRun(TypedDict):
    """One runbook walk on the incident: the path it took and what it concluded."""

    run: Annotated[str, Field(description="The walk's id")]
    runbook: Annotated[str | None, Field(description="The runbook's id")]
    runbook_version: Annotated[str | None, Field(description="The runbook's version")]
    started_at: Annotated[UtcTime, Field(description="The walk's first step or conclusion")]
    path: Annotated[list[StepRecord], Field(description="Every step taken, in order")]
    cause: Annotated[str | None, Field(description="data, model or infra; null if none")]
    summary: Annotated[str | None, Field(description="The conclusion's summary")]
    concluded_at: Annotated[UtcTime | None, Field(description="When it concluded; null if not")]


@with_config(_STRICT)
class AuditRecord(TypedDict):
    """One audit log entry of an action."""

    kind: Annotated[str, Field(description="intent, result, refusal, verify or reconcile")]
    seq: Annotated[int | None, Field(description="The entry's sequence number")]
    hash: Annotated[str | None, Field(description="The entry's chain hash (sha256)")]
    at: Annotated[UtcTime, Field(description="The time of its timeline event")]


@with_config(_STRICT)
class Verification(TypedDict):
    """What the SLI did while it was watched after the action (action.verify)."""

    recovered: Annotated[bool | None, Field(description="Whether the SLI recovered")]
    sli: Annotated[str | None, Field(description="The SLI watched (or meant to be)")]
    origin: Annotated[
        str | None,
        Field(
            description="Why that SLI: the one that paged (the alert's sli label), the "
            "runbook step's, or actions.verify.sli; null in exports of older entries"
        ),
    ]
    watched: Annotated[
        bool | None,
        Field(description="False when nothing could be watched (error says why)"),
    ]
    query: Annotated[str | None, Field(description="The PromQL read")]
    threshold: Annotated[str | None, Field(description="What counted as good")]
    value: Annotated[float | None, Field(description="The last value read")]
    elapsed: Annotated[float | None, Field(description="Seconds watched")]
    reads: Annotated[int | None, Field(description="Reads taken")]
    error: Annotated[str | None, Field(description="Why the SLI could not be read")]


@with_config(_STRICT)
class MitigationRecord(TypedDict):
    """One action taken under the incident, from its audit log entries."""

    action: Annotated[str, Field(description="rollback, fallback, pipeline, silence...")]
    model: Annotated[str | None, Field(description="The model acted on")]
    summary: Annotated[str, Field(description="The plan in one line")]
    actor: Annotated[str, Field(description="Who ran it")]
    requested_at: Annotated[UtcTime, Field(description="Its first audit entry (the intent)")]
    changes: Annotated[list[PlanChange], Field(description="The plan's changes")]
    before: Annotated[Recorded, Field(description="The state the plan started from")]
    after: Annotated[Recorded, Field(description="The state the plan aimed at")]
    notes: Annotated[list[str], Field(description="The plan's notes")]
    applied: Annotated[
        bool | None, Field(description="Whether the change took effect; null while in doubt")
    ]
    outcome: Annotated[
        str,
        Field(
            description="applied, not applied, failed, refused, in doubt (an intent with no "
            "result), or 'reconciled: VERDICT'"
        ),
    ]
    error: Annotated[str | None, Field(description="Why it failed or was refused")]
    confirmed: Annotated[
        bool | None, Field(description="Whether the state read back was the planned one")
    ]
    verified: Annotated[
        bool | None, Field(description="Whether the SLI recovered after it; null if not watched")
    ]
    verification: Annotated[Verification | None, Field(description="The SLI watch, if any")]
    intent_seq: Annotated[int | None, Field(description="The audit seq of its intent")]
    audit: Annotated[list[AuditRecord], Field(description="Its audit entries, in order")]


class RootCause(BaseModel):
    """The cause a runbook walk classified (the last walk to conclude)."""

    model_config = _STRICT

    cause: str = Field(description="data, model or infra")
    summary: str | None = Field(description="The conclusion's summary")
    runbook: str | None = Field(description="The runbook that concluded")
    run: str | None = Field(description="The walk's id")
    at: UtcTime = Field(description="When it concluded")


class MetricInfo(BaseModel):
    """One response metric: the difference of two events' times."""

    model_config = _STRICT

    key: str = Field(description="The metric's key")
    label: str = Field(description="Its name, like MTTD")
    definition: str = Field(description="Which two events it spans")
    seconds: float | None = Field(
        description="Seconds, to the millisecond; null when an end was not recorded"
    )
    start: str | None = Field(description="The ref of the event it starts at")
    end: str | None = Field(description="The ref of the event it ends at")


class Versions(BaseModel):
    """The model version served before and after the incident's rollbacks."""

    model_config = _STRICT

    model: str | None = Field(description="The model rolled back")
    alias: str | None = Field(description="The registry alias moved, like champion")
    before: str | None = Field(description="The version before the first rollback, like '4'")
    after: str | None = Field(description="The version after the last rollback, like '3'")
    applied: bool = Field(
        description="Whether a rollback took effect; false when every one failed or was "
        "refused (then after is what was planned, not what serves)"
    )


@with_config(_STRICT)
class Link(TypedDict):
    """A page about the incident."""

    title: Annotated[str, Field(description="What the link shows")]
    url: Annotated[str, Field(description="The address")]
    kind: Annotated[str, Field(description="alert, graph or registry")]


@with_config(_STRICT)
class TimelineEntry(TypedDict):
    """One event of the timeline, exactly as the console recorded it."""

    at: Annotated[UtcTime, Field(description="When it happened")]
    ts: Annotated[float, Field(description="The same time in Unix seconds")]
    kind: Annotated[str, Field(description="The event kind (see docs/export.md)")]
    actor: Annotated[str, Field(description="A responder, mlconsole, or alertmanager")]
    summary: Annotated[str, Field(description="One line a responder reads")]
    data: Annotated[Recorded, Field(description="The evidence; its keys depend on kind")]
    ref: Annotated[str, Field(description="event:N, audit:N or runbook:RUN/N")]


_METRIC_KEYS = ", ".join(f"{key} ({label})" for key, (label, _) in METRIC_DEFINITIONS.items())


class ExportDocument(BaseModel):
    """An incident exported by mlconsole: its facts, its whole timeline, and a
    postmortem draft's sections (impact, detection, triage, mitigation, root cause,
    metrics, action items)."""

    model_config = ConfigDict(
        extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    schema_: Literal["mlconsole.incident/v1"] = Field(
        alias="schema", description="The schema version of this document"
    )
    generator: str = Field(description="The program that wrote it, like 'mlconsole 0.1.0'")
    generated_at: UtcTime = Field(description="When it was exported")
    incident: IncidentInfo = Field(description="The incident as stored")
    summary: str = Field(description="What happened, in a few sentences (a draft)")
    impact: Impact = Field(description="What the SLI did")
    detection: Detection = Field(description="How the problem was noticed")
    timeline: list[TimelineEntry] = Field(description="Every event, in order")
    triage: list[TriageRun] = Field(description="The runbook walks, in the order they started")
    mitigation: list[MitigationRecord] = Field(description="The actions, in the order requested")
    root_cause: RootCause | None = Field(description="null when no walk concluded")
    metrics: dict[str, MetricInfo] = Field(description=f"By key: {_METRIC_KEYS}")
    versions: Versions | None = Field(description="null when there was no rollback")
    promql: list[str] = Field(description="Every distinct PromQL, in the order first used")
    links: list[Link] = Field(
        description="Alert sources, Prometheus graphs and model registry pages"
    )
    action_items: list[str] = Field(description="A draft list of follow-ups to review")


def export_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of :class:`ExportDocument`, as written by
    :func:`to_json`."""
    schema = ExportDocument.model_json_schema(by_alias=True)
    schema.pop("title", None)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": SCHEMA_TITLE,
        "version": SCHEMA_VERSION,
        "description": schema.pop("description", ""),
        **schema,
    }


# -- reading event data defensively ---------------------------------------------------


# ``type(x) is dict`` first: event data is plain dicts, and an ABC isinstance check
# costs as much as the rest of the work on an event.


def _data(event: Event) -> Mapping[str, Any]:
    data = event.data
    return data if type(data) is dict or isinstance(data, Mapping) else {}


def _mapping(value: Any) -> dict[str, Any]:
    """A dict as it is (shared, never modified here); another mapping copied."""
    if type(value) is dict:
        return value
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | bool):
        return str(value)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value) if isinstance(value, int | float | str) else None
    except (ValueError, OverflowError):
        return None
    return number if number is not None and math.isfinite(number) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        return []
    return [str(item) for item in value if item is not None]


def _str_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _utc_or_none(at: float | None) -> str | None:
    return None if at is None else utc(at)


# -- building the document ------------------------------------------------------------


class _Collected:
    """What one pass over the events gathers for the sections."""

    def __init__(self) -> None:
        self.timeline: list[TimelineEntry] = []
        self.sli: list[Event] = []
        self.steps: list[Event] = []
        self.actions: list[Event] = []
        self.mitigated: list[Event] = []
        self.notes: list[Event] = []
        self.fired: list[Event] = []
        self.concluded: list[Event] = []
        self.impact: list[Event] = []
        self.promql: dict[str, None] = {}
        self._at: dict[float, str] = {}

    def at(self, event: Event) -> str:
        """The event's time as UTC text, as its timeline entry has it."""
        text = self._at.get(event.at)
        if text is None:
            text = self._at[event.at] = utc(event.at)
        return text


_SLI_KINDS = frozenset({"sli.first_breach", "sli.mitigation", "sli.recovery"})
_ACTION_KINDS = frozenset(
    {"action.intent", "action.result", "action.refusal", "action.verify", "action.reconcile"}
)


def _collect(events: Sequence[Event]) -> _Collected:
    out = _Collected()
    append = out.timeline.append
    promql = out.promql
    times = out._at
    for event in events:
        data = event.data
        if type(data) is not dict:
            if isinstance(data, Mapping):
                data = {str(k): v for k, v in data.items()}
            else:
                data = {} if data is None else {"value": data}
        kind, actor, summary, ref = event.kind, event.actor, event.summary, event.ref
        at = float(event.at)
        text = times[at] = utc(at)
        append(
            {
                "at": text,
                "ts": at,
                "kind": kind if type(kind) is str else str(kind),
                "actor": actor if type(actor) is str else str(actor),
                "summary": summary if type(summary) is str else str(summary),
                "data": data,
                "ref": ref if type(ref) is str else str(ref),
            }
        )
        if kind == "runbook.step":
            out.steps.append(event)
            inputs = data.get("inputs")
            if (type(inputs) is dict or isinstance(inputs, Mapping)) and isinstance(
                query := inputs.get("query"), str
            ):
                promql[query] = None
        elif kind in _SLI_KINDS:
            out.sli.append(event)
            if isinstance(query := data.get("query"), str):
                promql[query] = None
        elif kind == "sli.impact":
            out.impact.append(event)
            if isinstance(query := data.get("query"), str):
                promql[query] = None
        elif kind in _ACTION_KINDS:
            out.actions.append(event)
            result = data.get("result")
            if (
                kind == "action.verify"
                and (type(result) is dict or isinstance(result, Mapping))
                and isinstance(query := result.get("query"), str)
            ):
                promql[query] = None
        elif kind == "alert.firing":
            out.fired.append(event)
        elif kind == "note":
            out.notes.append(event)
        elif kind == "runbook.concluded":
            out.concluded.append(event)
        elif kind == "incident.mitigated":
            out.mitigated.append(event)
    promql.pop("", None)
    return out


def _incident_info(incident: Incident) -> IncidentInfo:
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
        acked_at=_utc_or_none(incident.acked_at),
        acked_by=incident.acked_by,
        mitigated_at=_utc_or_none(incident.mitigated_at),
        resolved_at=_utc_or_none(incident.resolved_at),
        resolved_by=incident.resolved_by,
        firing=incident.firing,
        alerts=[
            AlertInfo(
                fingerprint=alert.fingerprint,
                labels=_str_map(alert.labels),
                annotations=_str_map(alert.annotations),
                generator_url=alert.generator_url or "",
                starts_at=utc(alert.starts_at),
                ended_at=_utc_or_none(alert.ended_at),
            )
            for alert in incident.alerts
        ],
    )


def _impact(incident: Incident, got: _Collected) -> Impact:
    first = next((e for e in got.sli if e.kind == "sli.first_breach"), None)
    sli = incident.sli
    objective: str | None = None
    for event in [*got.sli, *got.impact]:
        data = _data(event)
        sli = sli or _text(data.get("sli"))
        objective = objective or _text(data.get("objective"))
    fingerprints = {_text(_data(e).get("fingerprint")) or "" for e in got.fired}
    fingerprints |= {alert.fingerprint for alert in incident.alerts}
    fingerprints.discard("")
    impact = Impact(
        model=incident.model,
        sli=sli,
        objective=objective,
        first_breach_at=_utc_or_none(first.at if first else None),
        first_breach_value=_number(_data(first).get("value")) if first else None,
        worst_value=None,
        worst_at=None,
        recovered_at=None,
        breach_seconds=None,
        measured_by=None,
        alerts_fired=len(fingerprints) or (1 if got.fired else 0),
    )
    measured = _data(got.impact[-1]) if got.impact else None
    if measured is not None:
        impact.measured_by = _impact_query(measured)
    if measured is not None and impact.measured_by is not None and "error" not in measured:
        worst_at = _number(measured.get("worst_at"))
        breach = _number(measured.get("breach_seconds"))
        impact.worst_value = _number(measured.get("worst_value"))
        impact.worst_at = _utc_or_none(worst_at)
        impact.recovered_at = impact.measured_by.breached_until
        impact.breach_seconds = None if breach is None else round(breach, 3)
        return impact
    # Not measured: the snapshots, of the SLI's own query only (a recovery read by
    # verification may be a shorter window's query, which recovers sooner).
    own = _text(_data(first).get("query")) if first else None
    own = own or next((_text(_data(e).get("query")) for e in got.sli), None)
    readings = [
        e
        for e in got.sli
        if (not sli or _text(_data(e).get("sli")) in (None, sli))
        and (own is None or _text(_data(e).get("query")) in (None, own))
    ]
    # Lower is worse for an objective like "> 0.9"; higher for "< 0.01".
    lower_is_worse = bool(objective and objective.lstrip().startswith(">"))
    worst: tuple[float, float] | None = None
    for event in readings:
        value = _number(_data(event).get("value"))
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
    impact.worst_at = _utc_or_none(worst[1] if worst else None)
    impact.recovered_at = _utc_or_none(recovered.at if recovered else None)
    impact.breach_seconds = None if breach is None else round(breach, 3)
    return impact


def _impact_query(data: Mapping[str, Any]) -> ImpactQuery | None:
    query = _text(data.get("query"))
    start, end = _number(data.get("window_start")), _number(data.get("window_end"))
    if query is None or start is None or end is None:
        return None
    return ImpactQuery(
        query=query,
        start=utc(start),
        end=utc(end),
        step_seconds=_number(data.get("step")) or 0.0,
        points=_int(data.get("points")),
        ongoing=_flag(data.get("ongoing")) is True,
        breached_from=_utc_or_none(_number(data.get("breached_from"))),
        breached_until=_utc_or_none(_number(data.get("breached_until"))),
        error=_text(data.get("error")),
    )


def _detection(incident: Incident, got: _Collected) -> Detection:
    first = next((e for e in got.sli if e.kind == "sli.first_breach"), None)
    fired = got.fired[0].at if got.fired else incident.alert_started_at
    queries: dict[str, None] = {}
    for event in got.sli:
        query = _text(_data(event).get("query"))
        if query:
            queries[query] = None
    return Detection(
        first_breach_at=_utc_or_none(first.at if first else None),
        alert_started_at=utc(fired),
        opened_at=utc(incident.opened_at),
        queries=list(queries),
    )


def _values_text(values: Any, series: Any) -> str:
    if not isinstance(values, list) or not values:
        return "no series"
    shown: list[str] = []
    for item in values[:3]:
        item = _mapping(item)
        value = _number(item.get("value"))
        labels = _str_map(item.get("labels"))
        text = "NaN" if value is None else f"{value:.4g}"
        if labels:
            text += " {" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"
        shown.append(text)
    count = _int(series)
    total = count if count is not None else len(values)
    more = f" (+{total - len(shown)} more)" if total > len(shown) else ""
    return f"{total} series: " + "; ".join(shown) + more


def _step_evidence(kind: str | None, inputs: dict[str, Any], outputs: dict[str, Any]) -> str:
    """A step's evidence in one line."""
    if error := _text(outputs.get("error")):
        return f"error: {error}"
    if kind == "check":
        condition = _text(inputs.get("condition"))
        verdict = outputs.get("result")
        found = _values_text(outputs.get("values"), outputs.get("series"))
        held = (
            ""
            if not isinstance(verdict, bool)
            else f"; condition {condition or '?'} {'held' if verdict else 'did not hold'}"
        )
        return found + held
    if kind == "ask":
        question, label = _text(inputs.get("question")), _text(outputs.get("label"))
        return " → ".join(x for x in (question, label) if x)
    if kind == "action":
        action = _text(inputs.get("action")) or "action"
        params = _mapping(inputs.get("params"))
        listed = ", ".join(f"{k}={v}" for k, v in params.items())
        done = ", ".join(f"{k}={v}" for k, v in outputs.items())
        return f"{action}({listed})" + (f": {done}" if done else "")
    if kind in ("note", "link"):
        return _text(outputs.get("text")) or ""
    if kind == "conclude":
        cause, summary = _text(outputs.get("cause")), _text(outputs.get("summary"))
        return ": ".join(x for x in (cause, summary) if x)
    if outputs:
        return ", ".join(f"{k}={v}" for k, v in outputs.items())
    return ""


def _run_id(event: Event, data: Mapping[str, Any]) -> str:
    run = _text(data.get("run"))
    if run:
        return run
    ref = event.ref if isinstance(event.ref, str) else ""
    if ref.startswith("runbook:"):
        return ref.removeprefix("runbook:").split("/", 1)[0]
    return "unknown"


def _triage(got: _Collected, fired: float) -> list[TriageRun]:
    runs: dict[str, TriageRun] = {}

    def run_for(event: Event, data: Mapping[str, Any]) -> TriageRun:
        key = _run_id(event, data)
        run = runs.get(key)
        if run is None:
            run = runs[key] = {
                "run": key,
                "runbook": _text(data.get("runbook")),
                "runbook_version": _text(data.get("runbook_version")),
                "started_at": got.at(event),
                "path": [],
                "cause": None,
                "summary": None,
                "concluded_at": None,
            }
        if run["runbook"] is None:
            run["runbook"] = _text(data.get("runbook"))
        if run["runbook_version"] is None:
            run["runbook_version"] = _text(data.get("runbook_version"))
        return run

    for event in sorted([*got.steps, *got.concluded], key=lambda e: e.at):
        data = _data(event)
        run = run_for(event, data)
        if event.kind == "runbook.concluded":
            run["cause"] = _text(data.get("cause")) or run["cause"]
            run["summary"] = _text(data.get("summary")) or run["summary"]
            run["concluded_at"] = got.at(event)
            continue
        inputs, outputs = _mapping(data.get("inputs")), _mapping(data.get("outputs"))
        kind = _text(data.get("step_kind"))
        step = _text(data.get("step")) or "?"
        if kind == "check":
            for earlier in run["path"]:
                if earlier["kind"] == "check" and earlier["step"] == step:
                    earlier["superseded"] = True
        if outputs.get("changed") is True:  # read again, it branched elsewhere
            run["cause"] = run["summary"] = run["concluded_at"] = None
        run["path"].append(
            {
                "at": got.at(event),
                "step": _text(data.get("step")) or "?",
                "kind": kind,
                "decision": _text(data.get("decision")),
                "evidence": _step_evidence(kind, inputs, outputs),
                "query": _text(inputs.get("query")),
                "result": _flag(outputs.get("result")),
                "error": _text(outputs.get("error")),
                "inputs": inputs,
                "outputs": outputs,
                "ref": event.ref if isinstance(event.ref, str) else str(event.ref),
                "read_after_firing": round(float(event.at) - fired, 3),
                "recheck": outputs.get("recheck") is True,
                "superseded": False,
            }
        )
        if kind == "conclude" and run["cause"] is None:
            run["cause"] = _text(outputs.get("cause"))
            run["summary"] = _text(outputs.get("summary"))
    return list(runs.values())


def _root_cause(got: _Collected, triage: list[TriageRun]) -> RootCause | None:
    standing = {run["run"] for run in triage if run["cause"]}  # not withdrawn by a re-check
    for event in reversed(got.concluded):
        data = _data(event)
        cause = _text(data.get("cause"))
        if cause and _run_id(event, data) in standing:
            return RootCause(
                cause=cause,
                summary=_text(data.get("summary")),
                runbook=_text(data.get("runbook")),
                run=_run_id(event, data),
                at=utc(event.at),
            )
    for run in reversed(triage):  # a conclude step without its runbook.concluded event
        concluded = [s for s in run["path"] if s["kind"] == "conclude"]
        if run["cause"] and concluded:
            return RootCause(
                cause=run["cause"],
                summary=run["summary"],
                runbook=run["runbook"],
                run=run["run"],
                at=concluded[-1]["at"],
            )
    return None


def _changes(plan: Mapping[str, Any]) -> list[PlanChange]:
    raw = plan.get("changes")
    if not isinstance(raw, list):
        return []
    changes: list[PlanChange] = []
    for item in raw:
        change = _mapping(item)
        if change:
            changes.append(
                {
                    "target": _text(change.get("target")) or "",
                    "before": _text(change.get("before")) or "",
                    "after": _text(change.get("after")) or "",
                    "details": _strings(change.get("details")),
                }
            )
    return changes


def _verification(result: Mapping[str, Any]) -> Verification:
    return {
        "recovered": _flag(result.get("recovered")),
        "sli": _text(result.get("sli")),
        "origin": _text(result.get("origin")),
        "watched": _flag(result.get("watched")),
        "query": _text(result.get("query")),
        "threshold": _text(result.get("threshold")),
        "value": _number(result.get("value")),
        "elapsed": _number(result.get("elapsed")),
        "reads": _int(result.get("reads")),
        "error": _text(result.get("error")),
    }


def _new_mitigation(event: Event, data: Mapping[str, Any], at: str) -> MitigationRecord:
    return {
        "action": _text(data.get("action")) or "unknown",
        "model": None,
        "summary": "",
        "actor": event.actor if isinstance(event.actor, str) else str(event.actor),
        "requested_at": at,
        "changes": [],
        "before": {},
        "after": {},
        "notes": [],
        "applied": None,
        "outcome": "in doubt",
        "error": None,
        "confirmed": None,
        "verified": None,
        "verification": None,
        "intent_seq": None,
        "audit": [],
    }


def _mitigates(record: MitigationRecord) -> bool:
    """Whether an action changes what serves traffic for the better: a rollback, the
    fallback turned on, a pipeline paused (not a silence, not an undo)."""
    if record["action"] not in MITIGATIONS:
        return False
    return record["action"] == "rollback" or record["after"].get("on") is True


def _mitigations(got: _Collected) -> list[MitigationRecord]:
    """One record per action: its intent and the entries that name that intent."""
    records: dict[str, MitigationRecord] = {}
    seen_seqs: set[int] = set()
    for index, event in enumerate(got.actions):
        data = _data(event)
        seq, intent_seq = _int(data.get("seq")), _int(data.get("intent_seq"))
        kind = event.kind.removeprefix("action.")
        if kind == "intent":
            key = f"seq:{seq}" if seq is not None else f"event:{index}"
        else:
            key = f"seq:{intent_seq}" if intent_seq is not None else f"event:{index}"
        record = records.get(key)
        if record is None:
            record = records[key] = _new_mitigation(event, data, got.at(event))
            record["intent_seq"] = seq if kind == "intent" else intent_seq
        if seq is not None:
            seen_seqs.add(seq)
        record["audit"].append(
            {"kind": kind, "seq": seq, "hash": _text(data.get("hash")), "at": got.at(event)}
        )
        plan = _mapping(data.get("plan"))
        if plan and not record["summary"]:
            record["model"] = _text(plan.get("model"))
            record["summary"] = _text(plan.get("summary")) or ""
            record["changes"] = _changes(plan)
            record["before"] = _mapping(plan.get("before"))
            record["after"] = _mapping(plan.get("after"))
            record["notes"] = _strings(plan.get("notes"))
        if record["model"] is None:
            record["model"] = _text(_mapping(data.get("params")).get("model"))
        if record["action"] == "unknown":
            record["action"] = _text(data.get("action")) or "unknown"
        result, error = _mapping(data.get("result")), _text(data.get("error"))
        if kind == "refusal":
            record["applied"], record["outcome"], record["error"] = False, "refused", error
        elif kind == "result":
            applied = _flag(result.get("applied"))
            if applied is None:
                applied = error is None
            outcome = "failed" if error else ("applied" if applied else "not applied")
            record["applied"], record["outcome"], record["error"] = applied, outcome, error
            record["confirmed"] = _flag(result.get("confirmed"))
        elif kind == "reconcile":
            verdict = _text(result.get("verdict")) or "unknown"
            record["applied"] = {"applied": True, "not applied": False}.get(verdict)
            record["outcome"] = f"reconciled: {verdict}"
            record["error"] = record["error"] or error
        elif kind == "verify":
            verification = _verification(result)
            if error and not verification["error"]:
                verification["error"] = error
            record["verification"] = verification
            record["verified"] = verification["recovered"]
        if not record["summary"]:
            record["summary"] = event.summary if isinstance(event.summary, str) else ""
    out = list(records.values())
    # A mitigation the incident recorded whose audit entries are not in the timeline.
    for event in got.mitigated:
        data = _data(event)
        audit_seq = _int(data.get("audit_seq"))
        if audit_seq is not None and audit_seq in seen_seqs:
            continue
        record = _new_mitigation(event, data, got.at(event))
        record["summary"] = event.summary if isinstance(event.summary, str) else ""
        record["applied"], record["outcome"] = True, "applied"
        if audit_seq is not None:
            record["audit"].append(
                {"kind": "result", "seq": audit_seq, "hash": None, "at": got.at(event)}
            )
        out.append(record)
    out.sort(key=lambda r: r["requested_at"])
    return out


def _version(record: MitigationRecord, side: Literal["before", "after"]) -> str | None:
    version = _text(record[side].get("version"))
    if version is None and record["changes"]:
        version = record["changes"][0][side] or None
    return version.removeprefix("v") if version else None


def _versions(mitigation: list[MitigationRecord]) -> Versions | None:
    rollbacks = [m for m in mitigation if m["action"] == ROLLBACK]
    applied = [m for m in rollbacks if m["applied"]]
    chosen = applied or rollbacks
    if not chosen:
        return None
    before, after = _version(chosen[0], "before"), _version(chosen[-1], "after")
    if before is None and after is None:
        return None
    target = chosen[-1]["changes"][0]["target"] if chosen[-1]["changes"] else ""
    alias = target.rpartition("@")[2] if "@" in target else None
    return Versions(
        model=chosen[-1]["model"], alias=alias, before=before, after=after, applied=bool(applied)
    )


def _links(
    incident: Incident,
    got: _Collected,
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
        data = _data(event)
        labels = _str_map(data.get("labels"))
        name = labels.get("alertname") or incident.alertname
        fingerprint = _text(data.get("fingerprint")) or "?"
        add(f"Alert {name} ({fingerprint})", _text(data.get("generator_url")), "alert")
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
            add(f"Graph: {_shorten(query, 70)}", graph_url(prometheus_url, query), "graph")
    return list(links.values())


def graph_url(prometheus_url: str, query: str) -> str:
    """The Prometheus graph page of ``query``."""
    return f"{prometheus_url.rstrip('/')}/graph?g0.expr={quote(query, safe='')}&g0.tab=0"


def _shorten(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _recovery_text(recovered: bool | None, yes: str, no: str, unknown: str) -> str:
    return unknown if recovered is None else (yes if recovered else no)


def _verdict_clause(check: Verification | None) -> str:
    """The summary's words on a mitigation's verdict, naming the SLI it watched."""
    if check is None:
        return ""
    if check["watched"] is False:
        return "; its effect could not be verified (nothing was watched)"
    sli = check["sli"] or "the SLI"
    return _recovery_text(check["recovered"], f"; {sli} recovered", f"; {sli} did not recover", "")


def _verification_line(check: Verification) -> str:
    """A verdict as the Markdown shows it: always with the SLI it watched, and why."""
    sli = md_code(check["sli"]) if check["sli"] else "an unnamed SLI"
    origin = f" ({md_escape(check['origin'])})" if check["origin"] else ""
    error = f": {md_escape(check['error'])}" if check["error"] else ""
    if check["watched"] is False:
        return f"Not verified: nothing was watched{error}"
    verdict = _recovery_text(check["recovered"], "recovered", "not recovered", "unknown")
    reading = ""
    if check["elapsed"] is not None:
        value = "no data" if check["value"] is None else _value(check["value"])
        reading = f": {value} after {_seconds_text(check['elapsed'])}"
    return f"Verified on {sli}{origin}: {verdict}{reading}" + (
        f"; {md_escape(check['error'])}" if check["error"] else ""
    )


def _seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "not available"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds % 1 else f"{seconds:.0f}s"
    return format_duration(seconds)


def _offset_text(seconds: float) -> str:
    """``4m12s after`` or ``30s before``: evidence's age, counted from the firing."""
    return f"{_seconds_text(abs(seconds))} {'before' if seconds < 0 else 'after'}"


def _action_items(
    incident: Incident,
    got: _Collected,
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
        text = (_text(_data(event).get("text")) or "").strip()
        prefix = next((p for p in ACTION_NOTE_PREFIXES if text.lower().startswith(p)), None)
        if prefix is None:
            continue
        item = text[len(prefix) :].strip()
        if item:
            item = item[0].upper() + item[1:]
            items.append(f"{item} (note by {event.actor}, {got.at(event)})")
    return items


def _summary(
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
    applied = [m for m in mitigation if m["applied"] and _mitigates(m)]
    if applied:
        first = applied[0]
        what = first["summary"] or first["action"]
        verdict = _verdict_clause(first["verification"])
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
    got = _collect(events)
    if measured is not None:
        got.impact.append(measured)
        if isinstance(query := _data(measured).get("query"), str):
            got.promql[query] = None
    metrics = compute_metrics(events)
    impact = _impact(incident, got)
    detection = _detection(incident, got)
    triage = _triage(got, incident.alert_started_at)
    root = _root_cause(got, triage)
    mitigation = _mitigations(got)
    versions = _versions(mitigation)
    promql = list(got.promql)
    mttd = metrics["mttd"].seconds if "mttd" in metrics else None
    # The long lists are typed dicts built above; the rest is validated here.
    return ExportDocument.model_construct(
        schema_=SCHEMA_VERSION,
        generator=f"mlconsole {__version__}",
        generated_at=utc(time.time() if now is None else now),
        incident=_incident_info(incident),
        summary=_summary(incident, impact, detection, mitigation, root, versions),
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
        links=_links(incident, got, promql, versions, prometheus_url, registry_url),
        action_items=_action_items(incident, got, root, versions, mttd),
    )


# -- JSON -------------------------------------------------------------------------------


def _fallback(value: Any) -> Any:
    """What to write for a value JSON has no type for (event data is free-form)."""
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return list(value)
    return str(value)


def to_json(doc: ExportDocument) -> str:
    """The document as JSON (indent 2); NaN and infinities are written as null."""
    return doc.model_dump_json(indent=2, by_alias=True, fallback=_fallback) + "\n"


# -- Markdown ---------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"[\\`|<\[\]\r\n]")
_MD_ESCAPES = str.maketrans({"\\": "\\\\", "`": "\\`", "|": "\\|", "[": "\\[", "]": "\\]"})
_NEWLINES = re.compile(r"\r\n|[\r\n]")
_HTML_START = re.compile(r"<(?=[A-Za-z/!?])")


def md_escape(text: str) -> str:
    """``text`` as literal Markdown on one line: newlines become spaces; backslashes,
    backticks, pipes and brackets (a forged link) are escaped, and so are a ``<``
    that could open an HTML tag and a leading ``#``. Other control characters are
    shown as their escapes (:func:`console.text.inert`)."""
    if _MD_SPECIAL.search(text):
        text = _NEWLINES.sub(" ", text).translate(_MD_ESCAPES)
        text = _HTML_START.sub(r"\\<", text)
    text = inert(text)
    if text.startswith("#"):
        text = "\\" + text
    return text


def md_code(text: str) -> str:
    """``text`` as an inline code span, whatever backticks it holds."""
    text = inert(_NEWLINES.sub(" ", text))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _code_block(text: str, lang: str = "") -> list[str]:
    text = inert(text, multiline=True)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{lang}", *text.strip("\n").splitlines(), fence]


def _value(value: float | None) -> str:
    return "not known" if value is None else f"{value:.4g}"


def _link_line(link: Link) -> str:
    title, url = md_escape(link["title"]), link["url"]
    clean = inert(url) == url and not any(c in url for c in " <>")
    if url.startswith(("http://", "https://")) and clean:
        # md_escape has escaped the title's brackets: escaping them again showed a
        # backslash and left the bracket bare.
        target = url.replace("(", "%28").replace(")", "%29")
        return f"- [{title}]({target})"
    return f"- {title}: {md_code(url)}"


def _md_header(doc: ExportDocument) -> list[str]:
    inc = doc.incident
    facts = [
        ("Model", md_code(inc.model)),
        ("Alert", f"{md_code(inc.alertname)} ({md_escape(inc.severity)})"),
        ("State", md_escape(inc.state)),
        ("Owner", md_escape(inc.owner) if inc.owner else "none"),
        ("Opened", f"{inc.opened_at} by {md_escape(inc.opened_by)}"),
        (
            "Resolved",
            f"{inc.resolved_at} by {md_escape(inc.resolved_by or 'unknown')}"
            if inc.resolved_at
            else "not resolved",
        ),
    ]
    return [
        f"# {inc.id}: {md_escape(inc.title)}",
        "",
        f"_Postmortem draft exported by {md_escape(doc.generator)} at {doc.generated_at} "
        f"(schema {doc.schema_}). Review every section before sharing._",
        "",
        *[f"- **{name}:** {value}" for name, value in facts],
    ]


def _md_summary(doc: ExportDocument) -> list[str]:
    out = [md_escape(doc.summary)]
    if doc.links:
        out += ["", "### Links", "", *[_link_line(link) for link in doc.links]]
    return out


def _md_impact(doc: ExportDocument) -> list[str]:
    imp = doc.impact
    how = imp.measured_by
    measured = how is not None and how.error is None
    sli = md_code(imp.sli) if imp.sli else "not known"
    objective = f", objective {md_code(imp.objective)}" if imp.objective else ""
    first = (
        f"{_value(imp.first_breach_value)} at {imp.first_breach_at}"
        if imp.first_breach_at
        else "not recorded"
    )
    worst = f"{_value(imp.worst_value)} at {imp.worst_at}" if imp.worst_at else "not recorded"
    if how is not None and measured:
        if imp.breach_seconds is not None:
            breach = (
                f"{_seconds_text(imp.breach_seconds)} ({how.breached_from} → {how.breached_until})"
            )
        elif how.breached_from:
            breach = f"not over: breached from {how.breached_from} to the window's end"
        else:
            breach = "none: the SLI stayed within its objective over the window"
    elif imp.breach_seconds is not None:
        breach = f"{_seconds_text(imp.breach_seconds)} ({imp.first_breach_at} → {imp.recovered_at})"
    elif imp.first_breach_at:
        breach = "not known: no recovery of the SLI was recorded"
    else:
        breach = "not known: no breach of the SLI was recorded"
    if how is None:
        source = "the SLI snapshots on the timeline (no range query was made)"
    else:
        window = f"{how.start} → {how.end}{' (still firing)' if how.ongoing else ''}"
        source = (
            f"a range query of the SLI's own PromQL {md_code(how.query)} over {window}, "
            f"step {_seconds_text(how.step_seconds)}"
        )
        if how.error is not None:
            source = (
                f"the SLI snapshots on the timeline: {source} could not be read "
                f"({md_escape(how.error)})"
            )
    return [
        f"- **Model:** {md_code(imp.model)}",
        f"- **SLI:** {sli}{objective}",
        f"- **First breach:** {first}",
        f"- **Worst value seen:** {worst}",
        f"- **Breach duration:** {breach}",
        f"- **Measured by:** {source}",
        f"- **Alerts fired:** {imp.alerts_fired}",
    ]


def _md_detection(doc: ExportDocument) -> list[str]:
    det = doc.detection
    mttd = doc.metrics.get("mttd")
    out = [
        f"- **SLI first breached (Prometheus):** {det.first_breach_at or 'not recorded'}",
        f"- **Alert started firing:** {det.alert_started_at}",
        f"- **Incident opened:** {det.opened_at}",
        f"- **Time to detect (MTTD):** {_seconds_text(mttd.seconds if mttd else None)}"
        + (f" ({mttd.seconds:g} s)" if mttd and mttd.seconds is not None else ""),
    ]
    out += [f"- **SLI query:** {md_code(query)}" for query in det.queries]
    if doc.promql:
        out += ["", "### PromQL", "", "Every query the incident's evidence used, in order:"]
        for query in doc.promql:
            out += ["", *_code_block(query, "promql")]
    return out


def _md_timeline(doc: ExportDocument) -> list[str]:
    if not doc.timeline:
        return ["_No events were recorded._"]
    esc = md_escape
    names: dict[str, str] = {}  # kinds and actors repeat: escape each once

    def name(text: str) -> str:
        shown = names.get(text)
        if shown is None:
            shown = names[text] = esc(text)
        return shown

    return [
        f"- {e['at']} · {name(e['kind'])} · {name(e['actor'])} · {esc(e['summary'])}"
        for e in doc.timeline
    ]


def _md_triage(doc: ExportDocument) -> list[str]:
    if not doc.triage:
        return ["_No runbook walk was recorded for this incident._"]
    out: list[str] = []
    for run in doc.triage:
        version = f", version {md_escape(run['runbook_version'])}" if run["runbook_version"] else ""
        runbook = md_code(run["runbook"]) if run["runbook"] else "(unknown runbook)"
        out += [f"### Runbook {runbook} (walk {md_code(run['run'])}{version})", ""]
        for index, step in enumerate(run["path"], 1):
            kind = f" ({md_escape(step['kind'])})" if step["kind"] else ""
            decision = f" → **{md_escape(step['decision'])}**" if step["decision"] else ""
            when = f"{step['at']} ({_offset_text(step['read_after_firing'])} firing)"
            line = f"{index}. {when} · {md_code(step['step'])}{kind}{decision}"
            if step["recheck"]:
                line += " _(read again)_"
            if step["superseded"]:
                line += " _(earlier reading)_"
            if step["evidence"]:
                line += f": {md_escape(step['evidence'])}"
            out.append(line)
            if step["query"]:
                out.append(f"   - PromQL: {md_code(step['query'])}")
        if not run["path"]:
            out.append("_No steps recorded._")
        if run["cause"]:
            summary = f": {md_escape(run['summary'])}" if run["summary"] else ""
            out += ["", f"**Concluded:** cause **{md_escape(run['cause'])}**{summary}"]
        else:
            out += ["", "**Not concluded.**"]
        out.append("")
    out.pop()
    return out


def _md_mitigation(doc: ExportDocument) -> list[str]:
    out: list[str] = []
    if not doc.mitigation:
        out.append("_No mitigation was recorded._")
    for m in doc.mitigation:
        changes = "; ".join(
            f"{md_code(c['target'])}: {md_code(c['before'])} → {md_code(c['after'])}"
            for c in m["changes"]
        )
        what = changes or md_escape(m["summary"]) or "no plan recorded"
        outcome = md_escape(m["outcome"])
        if m["error"]:
            outcome += f" ({md_escape(m['error'])})"
        out.append(
            f"- {m['requested_at']} · **{md_escape(m['action'])}** by {md_escape(m['actor'])}: "
            f"{what} · {outcome}"
        )
        check = m["verification"]
        if check is not None:
            out.append(f"  - {_verification_line(check)}")
        audit = ", ".join(
            f"{md_escape(a['kind'])} #{a['seq'] if a['seq'] is not None else '?'}"
            + (f" {md_code(a['hash'][:12])}" if a["hash"] else "")
            for a in m["audit"]
        )
        if audit:
            out.append(f"  - Audit: {audit}")
        out.extend(f"  - Note: {md_escape(note)}" for note in m["notes"])
    versions = doc.versions
    if versions is not None:
        model = md_code(versions.model) if versions.model else "the model"
        alias = f" (alias {md_code(versions.alias)})" if versions.alias else ""
        state = "" if versions.applied else " — planned, but no rollback took effect"
        before = md_code(versions.before) if versions.before else "not known"
        after = md_code(versions.after) if versions.after else "not known"
        out += ["", f"**Model version:** {model}{alias}: {before} → {after}{state}"]
    return out


def _md_root_cause(doc: ExportDocument) -> list[str]:
    root = doc.root_cause
    if root is None:
        return ["_Not classified: no runbook walk concluded with a cause._"]
    source = f"runbook {md_code(root.runbook)}" if root.runbook else "a runbook walk"
    walk = f", walk {md_code(root.run)}" if root.run else ""
    out = [f"**Cause:** {md_escape(root.cause)} (from {source}{walk}, at {root.at})"]
    if root.summary:
        out += ["", md_escape(root.summary)]
    return out


def _md_metrics(doc: ExportDocument) -> list[str]:
    out = ["| Metric | Time | Seconds | From → to | Definition |", "|---|---|---|---|---|"]
    for metric in doc.metrics.values():
        span = (
            f"{md_escape(metric.start or '?')} → {md_escape(metric.end or '?')}"
            if metric.start or metric.end
            else ""
        )
        seconds = "" if metric.seconds is None else f"{metric.seconds:g}"
        out.append(
            f"| {md_escape(metric.label)} | {_seconds_text(metric.seconds)} | {seconds} "
            f"| {span} | {md_escape(metric.definition)} |"
        )
    return out


def _md_action_items(doc: ExportDocument) -> list[str]:
    out = ["_Draft: review each item, then give it an owner and a due date._", ""]
    out += [f"- [ ] {md_escape(item)}" for item in doc.action_items]
    return out


_MD_SECTIONS: tuple[Callable[[ExportDocument], list[str]], ...] = (
    _md_summary,
    _md_impact,
    _md_detection,
    _md_timeline,
    _md_triage,
    _md_mitigation,
    _md_root_cause,
    _md_metrics,
    _md_action_items,
)


def to_markdown(doc: ExportDocument) -> str:
    """The document as a postmortem draft: a title, then the :data:`SECTIONS`."""
    lines = _md_header(doc)
    for title, section in zip(SECTIONS, _MD_SECTIONS, strict=True):
        lines += ["", f"## {title}", ""]
        lines += section(doc)
    return "\n".join(lines) + "\n"


# -- writing ------------------------------------------------------------------------------


def render(doc: ExportDocument, fmt: Format | str) -> str:
    """The document in ``fmt``: ``md`` or ``json`` (else ValueError)."""
    if fmt == "json":
        return to_json(doc)
    if fmt == "md":
        return to_markdown(doc)
    raise ValueError(f"export format must be 'md' or 'json', not {fmt!r}")


class ExportTargetError(OSError):
    """An export path names something other than a regular file or a new path."""


def check_export_target(path: Path) -> None:
    """Raise :class:`ExportTargetError` unless ``path`` is a regular file or does not
    exist. A symbolic link is refused even when it points at a regular file: the
    export replaces what is at ``path``, and must never replace a link, a device
    (``/dev/null`` as root) or a FIFO."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    kind = not_regular(mode)
    if kind is not None:
        raise ExportTargetError(
            f"{path} is {kind}; an export writes only to a regular file or a new path, so name one"
        )


def write_export(doc: ExportDocument, fmt: Format | str, path: Path | None = None) -> str:
    """The document in ``fmt``; with ``path``, also written there atomically (a
    temporary file beside it, then renamed over it), creating its directories.
    ``path`` must be a regular file or a new path (see :func:`check_export_target`)."""
    text = render(doc, fmt)
    if path is None:
        return text
    check_export_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with open(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        check_export_target(path)  # again, as close to the rename as it gets
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return text
