"""The export's JSON schema: its version, the fixed-size parts (the incident, its
impact, its detection) as validated models, and the long lists (timeline, triage
paths, mitigations) as ``TypedDict``: built as plain dicts, checked by the schema and
the tests, and serialised without validating each entry, so a long incident exports
fast. The whole document is :class:`console.export.document.ExportDocument`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, with_config
from typing_extensions import TypedDict

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
