"""Export an incident: a postmortem draft in Markdown, or JSON in a versioned schema.

Both are built from one :class:`ExportDocument`, which
:func:`console.export.derive.build_document` makes from the incident and its
timeline. The JSON follows :data:`console.export.schema.SCHEMA_VERSION`;
:func:`export_schema` returns its JSON Schema (draft 2020-12), generated from the
models, so every field is documented where it is defined. ``docs/export.md``
describes both formats."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from console.export.schema import (
    JSON_SCHEMA_DIALECT,
    SCHEMA_ID,
    SCHEMA_TITLE,
    SCHEMA_VERSION,
    Detection,
    Impact,
    IncidentInfo,
    Link,
    MetricInfo,
    MitigationRecord,
    RootCause,
    TimelineEntry,
    TriageRun,
    UtcTime,
    Versions,
)
from console.incidents.timeline import METRIC_DEFINITIONS

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
