"""Incident export: the JSON against its schema, the Markdown postmortem draft."""

from __future__ import annotations

import json
import math
import random
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from jsonschema import Draft202012Validator

from console.export.derive import build_document
from console.export.document import ExportDocument, export_schema, to_json
from console.export.files import write_export
from console.export.markdown import to_markdown
from console.export.schema import SCHEMA_ID, SCHEMA_VERSION, SECTIONS
from console.export.words import md_code, md_escape
from console.incidents.model import Incident, IncidentAlert
from console.incidents.timeline import METRIC_DEFINITIONS, Event, utc

T0 = 1_795_489_200.0  # 2026-11-24T03:00:00Z
PROMETHEUS = "http://prometheus.internal:9090"
MLFLOW = "http://mlflow.internal:5000/"
MODEL = "fraud-detector"
ALERT = "ModelErrorBudgetBurn"
FINGERPRINT = "5f2c0a9e1b7d4c33"
GENERATOR = "http://prometheus.internal:9090/graph?g0.expr=slo%3Aerror_ratio%3Arate5m&g0.tab=1"
Q_SLI = (
    'sum by (model) (rate(mlc_requests_total{status=~"5.."}[5m]))'
    " / sum by (model) (rate(mlc_requests_total[5m]))"
)
Q_ERRORS = (
    'sum by (model) (rate(mlc_requests_total{model="fraud-detector", status=~"5.."}[1m]))'
    ' / sum by (model) (rate(mlc_requests_total{model="fraud-detector"}[1m])) > 0.05'
)
Q_DEPLOY = (
    'count(count by (version) (count_over_time(mlc_model_info{model="fraud-detector"}[30m]))) > 1'
)
Q_VERIFY = 'slo:error_ratio:rate1m{model="fraud-detector"}'
PLAN = {
    "action": "rollback",
    "model": MODEL,
    "summary": "fraud-detector@champion: v4 → v3",
    "changes": [
        {
            "target": "fraud-detector@champion",
            "before": "v4",
            "after": "v3",
            "details": ["v4: run 8e1f, created 2026-11-24 02:41 UTC", "v3: run 77aa, 2026-11-17"],
        }
    ],
    "before": {"version": "4"},
    "after": {"version": "3"},
    "notes": ["v3 is the version champion held before, until 2026-11-24 02:41 UTC"],
}
SLI = {"model": MODEL, "sli": "error_ratio", "query": Q_SLI, "objective": "< 0.01"}
NOISY_NOTE = "checked the dashboards | all green\nmoving on"


def audit(kind: str, seq: int, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "seq": seq,
        "hash": f"{seq:02d}" + "ab" * 31,
        "action": "rollback",
        "params": {"model": MODEL, "alias": "champion", "to": "3"},
        "plan": PLAN,
        "result": None,
        "error": None,
        "intent_seq": None,
    }
    body.update(fields)
    return body


def step(n: int, at: float, name: str, kind: str, decision: str, **io: Any) -> Event:
    return Event(
        T0 + at,
        "runbook.step",
        "alice@oncall",
        f"{name}: {decision}",
        {
            "run": "run-1",
            "runbook": "model-regression",
            "runbook_version": "1",
            "step": name,
            "step_kind": kind,
            "inputs": io.get("inputs", {}),
            "outputs": io.get("outputs", {}),
            "decision": decision,
        },
        f"runbook:run-1/{n}",
    )


def check(n: int, at: float, name: str, query: str, value: float) -> Event:
    outputs = {
        "values": [{"labels": {"model": MODEL, "version": "4"}, "value": value}],
        "series": 1,
        "result": True,
        "warnings": [],
    }
    inputs = {"query": query, "condition": "present"}
    return step(n, at, name, "check", "true", inputs=inputs, outputs=outputs)


def bad_deploy_events() -> list[Event]:
    """A bad deploy on fraud-detector, from the first breach to the resolution."""
    return [
        Event(T0, "sli.first_breach", "prometheus", "error_ratio 3.4% over < 0.01",
              {**SLI, "value": 0.034}, "event:1"),
        Event(T0 + 95.5, "alert.firing", "alertmanager", f"{ALERT} fraud-detector firing",
              {"fingerprint": FINGERPRINT,
               "labels": {"alertname": ALERT, "model": MODEL, "severity": "critical"},
               "annotations": {"summary": "fraud-detector burns its error budget"},
               "generator_url": GENERATOR, "starts_at": T0 + 95.5}, "event:2"),
        Event(T0 + 97, "incident.opened", "mlconsole", "INC-7 opened",
              {"model": MODEL, "alertname": ALERT, "severity": "critical", "sli": "error_ratio"},
              "event:3"),
        Event(T0 + 160.25, "incident.acknowledged", "alice@oncall", "acknowledged by alice",
              {}, "event:4"),
        check(1, 200, "errors-now", Q_ERRORS, 0.41),
        check(2, 205, "recent-deploy", Q_DEPLOY, 2),
        step(3, 230, "rollback-choice", "ask", "1: roll back",
             inputs={"question": "Roll back to the previous version?"},
             outputs={"choice": 1, "label": "roll back"}),
        Event(T0 + 240, "runbook.concluded", "alice@oncall", "cause: model",
              {"run": "run-1", "runbook": "model-regression", "cause": "model",
               "summary": "v4 fails on requests without merchant_category"}, "runbook:run-1/4"),
        Event(T0 + 300, "action.intent", "alice@oncall", "rollback fraud-detector: v4 → v3",
              audit("intent", 41), "audit:41"),
        Event(T0 + 302, "action.result", "alice@oncall", "applied: v4 → v3",
              audit("result", 42, intent_seq=41, result={
                  "applied": True, "read_back": {"version": "3"}, "confirmed": True}),
              "audit:42"),
        Event(T0 + 302.5, "incident.mitigated", "alice@oncall", "mitigated by rollback",
              {"audit_seq": 42, "action": "rollback"}, "event:5"),
        Event(T0 + 303, "sli.mitigation", "prometheus", "error_ratio at mitigation",
              {**SLI, "value": 0.058}, "event:6"),
        Event(T0 + 360, "action.verify", "alice@oncall", "RECOVERED",
              audit("verify", 43, intent_seq=41, result={
                  "model": MODEL, "sli": "error_ratio", "query": Q_VERIFY,
                  "origin": "the SLI that paged, from the alert's sli label", "watched": True,
                  "threshold": "good below 0.01", "recovered": True, "value": 0.004,
                  "elapsed": 57.2, "reads": 12, "error": None}), "audit:43"),
        Event(T0 + 365, "sli.recovery", "prometheus", "error_ratio back within objective",
              {**SLI, "value": 0.006}, "event:7"),
        Event(T0 + 420, "alert.resolved", "alertmanager", f"{ALERT} resolved",
              {"fingerprint": FINGERPRINT, "observed": False}, "event:8"),
        Event(T0 + 450, "note", "alice@oncall", "note: Action: add canary",
              {"text": "Action: add a canary stage before champion moves"}, "event:9"),
        Event(T0 + 455, "note", "bob@oncall", NOISY_NOTE, {"text": NOISY_NOTE}, "event:10"),
        Event(T0 + 600, "incident.resolved", "alice@oncall", "resolved by alice",
              {"comment": "rolled back; v4 quarantined"}, "event:11"),
    ]  # fmt: skip


def incident(**changes: Any) -> Incident:
    fields: dict[str, Any] = {
        "number": 7,
        "model": MODEL,
        "alertname": ALERT,
        "severity": "critical",
        "title": "fraud-detector burns its error budget",
        "sli": "error_ratio",
        "state": "resolved",
        "owner": "alice@oncall",
        "opened_at": T0 + 97,
        "opened_by": "mlconsole",
        "alert_started_at": T0 + 95.5,
        "acked_at": T0 + 160.25,
        "acked_by": "alice@oncall",
        "ack_active": False,
        "mitigated_at": T0 + 302.5,
        "resolved_at": T0 + 600,
        "resolved_by": "alice@oncall",
        "firing": False,
        "updated_at": T0 + 600,
        "alerts": (
            IncidentAlert(
                FINGERPRINT,
                {"alertname": ALERT, "model": MODEL},
                {"summary": "fraud-detector burns its error budget"},
                GENERATOR,
                T0 + 95.5,
                T0 + 420,
            ),
        ),
    }
    fields.update(changes)
    return Incident(**fields)


def bare_incident() -> Incident:
    """Opened, never acknowledged, mitigated or resolved."""
    return incident(
        state="triggered", owner=None, acked_at=None, acked_by=None, mitigated_at=None,
        resolved_at=None, resolved_by=None, firing=True, alerts=(),
    )  # fmt: skip


@pytest.fixture
def events() -> list[Event]:
    return bad_deploy_events()


@pytest.fixture
def doc(events: list[Event]) -> ExportDocument:
    return build_document(
        incident(), events, prometheus_url=PROMETHEUS, registry_url=MLFLOW, now=T0 + 3600
    )


@pytest.fixture
def data(doc: ExportDocument) -> dict[str, Any]:
    return dict(json.loads(to_json(doc)))


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = export_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def section(markdown: str, title: str) -> list[str]:
    """The lines of one ``## `` section, without its heading."""
    lines = markdown.splitlines()
    start = lines.index(f"## {title}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def strict_json(text: str) -> Any:
    """JSON as the standard has it: NaN and Infinity are not numbers."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} in the JSON")

    return json.loads(text, parse_constant=refuse)


# -- the JSON ------------------------------------------------------------------------


def test_schema_names_its_dialect_id_and_version() -> None:
    schema = export_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID
    assert schema["version"] == SCHEMA_VERSION
    assert schema["properties"]["schema"]["const"] == SCHEMA_VERSION
    assert json.loads(json.dumps(schema)) == schema  # what `mlconsole export --schema` prints
    top = set(schema["properties"])
    assert top == {
        "schema", "generator", "generated_at", "incident", "summary", "impact", "detection",
        "timeline", "triage", "mitigation", "root_cause", "metrics", "versions", "promql",
        "links", "action_items",
    }  # fmt: skip
    assert set(schema["required"]) == top
    # Self-documenting: every field of every object says what it holds.
    for name, definition in [("ExportDocument", schema), *schema["$defs"].items()]:
        for field, spec in definition.get("properties", {}).items():
            assert spec.get("description"), f"{name}.{field} has no description"


def test_export_validates_against_its_schema(
    data: dict[str, Any], validator: Draft202012Validator
) -> None:
    errors = [e.message for e in validator.iter_errors(data)]
    assert errors == []
    assert data["schema"] == SCHEMA_VERSION
    assert data["generated_at"] == "2026-11-24T04:00:00.000Z"


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.update(schema="mlconsole.incident/v0"),
        lambda d: d.pop("timeline"),
        lambda d: d.update(unexpected=True),
        lambda d: d["timeline"][0].update(at="2026-11-24 03:00:00"),
        lambda d: d["timeline"][0].pop("ref"),
        lambda d: d["incident"].update(id="7"),
        lambda d: d["metrics"]["mttd"].update(seconds="95.5"),
        lambda d: d["mitigation"][0].update(applied="yes"),
        lambda d: d["triage"][0]["path"][0].pop("decision"),
        lambda d: d.update(root_cause={"cause": "model"}),
        lambda d: d["links"].append({"title": "no url"}),
    ],
)
def test_a_broken_document_does_not_validate(
    data: dict[str, Any], validator: Draft202012Validator, breakage: Any
) -> None:
    assert validator.is_valid(data)
    breakage(data)
    assert not validator.is_valid(data)


def test_json_reads_back_into_the_model(doc: ExportDocument) -> None:
    text = to_json(doc)
    again = ExportDocument.model_validate_json(text)  # validates the typed-dict lists too
    assert to_json(again) == text


def test_serialising_warns_of_nothing(doc: ExportDocument) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_json(doc)


def test_incident_fields_are_utc_text(data: dict[str, Any]) -> None:
    inc = data["incident"]
    assert inc["id"] == "INC-7"
    assert inc["opened_at"] == "2026-11-24T03:01:37.000Z"
    assert inc["acked_at"] == "2026-11-24T03:02:40.250Z"
    assert inc["acked_by"] == "alice@oncall"
    assert inc["mitigated_at"] == "2026-11-24T03:05:02.500Z"
    assert inc["resolved_at"] == "2026-11-24T03:10:00.000Z"
    assert inc["alerts"][0]["ended_at"] == "2026-11-24T03:07:00.000Z"


def test_timeline_holds_every_event_as_recorded(data: dict[str, Any], events: list[Event]) -> None:
    # As `incident show --json` has them, plus `ts` (Unix seconds), which the export's
    # schema v1 keeps beside `at`.
    assert data["timeline"] == [{**json.loads(json.dumps(e.as_dict())), "ts": e.at} for e in events]


def test_metrics_are_differences_of_event_times(data: dict[str, Any], events: list[Event]) -> None:
    at = {e.ref: e.at for e in events}
    spans = {
        "mttd": ("event:1", "event:2"),  # first breach → alert firing
        "mtta": ("event:2", "event:4"),  # → acknowledged
        "ttm": ("event:2", "event:5"),  # → incident.mitigated
        "ttr": ("event:2", "event:7"),  # → sli.recovery
        "mttr": ("event:2", "event:11"),  # → incident.resolved
    }
    assert set(data["metrics"]) == set(METRIC_DEFINITIONS) == set(spans)
    for key, (start, end) in spans.items():
        metric = data["metrics"][key]
        assert metric["start"] == start and metric["end"] == end
        assert metric["seconds"] == pytest.approx(at[end] - at[start], abs=1e-3)
        assert metric["label"] == METRIC_DEFINITIONS[key][0]
        assert metric["definition"] == METRIC_DEFINITIONS[key][1]
    assert data["metrics"]["mttd"]["seconds"] == 95.5
    assert data["metrics"]["mtta"]["seconds"] == 64.75


def test_impact_and_detection(data: dict[str, Any]) -> None:
    impact = data["impact"]
    assert impact["sli"] == "error_ratio" and impact["objective"] == "< 0.01"
    assert impact["first_breach_value"] == 0.034
    assert impact["first_breach_at"] == "2026-11-24T03:00:00.000Z"
    assert impact["worst_value"] == 0.058  # the highest reading: lower is better
    assert impact["worst_at"] == utc(T0 + 303)
    assert impact["breach_seconds"] == 365.0  # first breach → sli.recovery
    assert impact["alerts_fired"] == 1
    detection = data["detection"]
    assert detection["first_breach_at"] == utc(T0)
    assert detection["alert_started_at"] == utc(T0 + 95.5)
    assert detection["queries"] == [Q_SLI]


def test_worst_value_is_the_lowest_when_higher_is_better() -> None:
    sli = {"model": MODEL, "sli": "availability", "query": "avail", "objective": ">= 0.999"}
    events = [
        Event(T0, "sli.first_breach", "prometheus", "breach", {**sli, "value": 0.99}, "event:1"),
        Event(T0 + 9, "sli.mitigation", "prometheus", "low", {**sli, "value": 0.93}, "event:2"),
        Event(T0 + 20, "sli.recovery", "prometheus", "ok", {**sli, "value": 0.9995}, "event:3"),
    ]
    doc = build_document(incident(sli="availability"), events, now=T0)
    assert doc.impact.worst_value == 0.93
    assert doc.impact.breach_seconds == 20.0


def test_unmeasured_impact_ignores_a_recovery_of_another_query() -> None:
    """Without a range query, the breach ends only when the SLI's own query recovers,
    not when verification's shorter-window query did."""
    sli = {"model": MODEL, "sli": "error_ratio", "query": Q_SLI, "objective": "< 0.01"}
    short = {**sli, "query": "slo:sli_error:ratio_rate1m", "value": 0.001}
    events = [
        Event(T0, "sli.first_breach", "prometheus", "breach", {**sli, "value": 0.02}, "event:1"),
        Event(T0 + 9, "sli.mitigation", "prometheus", "m", {**sli, "value": 0.05}, "event:2"),
        Event(T0 + 20, "sli.recovery", "prometheus", "ok", short, "event:3"),
    ]
    doc = build_document(incident(), events, now=T0)
    assert doc.impact.breach_seconds is None and doc.impact.recovered_at is None
    assert doc.impact.worst_value == 0.05 and doc.impact.measured_by is None
    assert "- **Measured by:** the SLI snapshots on the timeline (no range query was made)" in (
        to_markdown(doc)
    )


def test_triage_path_and_root_cause(data: dict[str, Any]) -> None:
    (run,) = data["triage"]
    assert run["run"] == "run-1" and run["runbook"] == "model-regression"
    assert run["runbook_version"] == "1"
    assert [s["step"] for s in run["path"]] == ["errors-now", "recent-deploy", "rollback-choice"]
    assert [s["decision"] for s in run["path"]] == ["true", "true", "1: roll back"]
    first = run["path"][0]
    assert first["kind"] == "check" and first["query"] == Q_ERRORS and first["result"] is True
    assert "0.41" in first["evidence"] and "condition present held" in first["evidence"]
    assert first["read_after_firing"] == 104.5  # its age, counted from the firing
    assert not first["recheck"] and not first["superseded"]
    assert run["path"][2]["evidence"] == "Roll back to the previous version? → roll back"
    assert run["cause"] == "model"
    assert run["concluded_at"] == utc(T0 + 240)
    assert data["root_cause"] == {
        "cause": "model",
        "summary": "v4 fails on requests without merchant_category",
        "runbook": "model-regression",
        "run": "run-1",
        "at": utc(T0 + 240),
    }


def test_mitigation_joins_the_audit_entries_of_one_action(data: dict[str, Any]) -> None:
    (rollback,) = data["mitigation"]  # incident.mitigated names the same audit entry
    assert rollback["action"] == "rollback" and rollback["model"] == MODEL
    assert rollback["summary"] == "fraud-detector@champion: v4 → v3"
    assert rollback["before"] == {"version": "4"} and rollback["after"] == {"version": "3"}
    assert rollback["applied"] is True and rollback["outcome"] == "applied"
    assert rollback["confirmed"] is True
    assert rollback["verified"] is True
    assert rollback["verification"]["value"] == 0.004
    assert rollback["verification"]["query"] == Q_VERIFY
    assert rollback["intent_seq"] == 41
    assert [(a["kind"], a["seq"]) for a in rollback["audit"]] == [
        ("intent", 41),
        ("result", 42),
        ("verify", 43),
    ]
    assert rollback["audit"][1]["hash"] == "42" + "ab" * 31
    assert rollback["requested_at"] == utc(T0 + 300)


def test_versions_before_and_after_the_rollback(data: dict[str, Any]) -> None:
    assert data["versions"] == {
        "model": MODEL,
        "alias": "champion",
        "before": "4",
        "after": "3",
        "applied": True,
    }


def test_a_refused_rollback_changes_no_version(events: list[Event]) -> None:
    refused = [
        e for e in events if e.kind not in ("action.result", "action.verify", "incident.mitigated")
    ]
    refused.append(
        Event(T0 + 301, "action.refusal", "alice@oncall", "refused",
              audit("refusal", 42, intent_seq=41, error="champion now points at v5"), "audit:42")
    )  # fmt: skip
    doc = build_document(incident(), sorted(refused, key=lambda e: e.at), now=T0)
    (rollback,) = doc.mitigation
    assert rollback["applied"] is False and rollback["outcome"] == "refused"
    assert rollback["error"] == "champion now points at v5"
    assert doc.versions is not None and doc.versions.applied is False
    assert "No mitigation took effect." in doc.summary
    assert "no rollback took effect" in to_markdown(doc)


def test_every_promql_and_the_links(data: dict[str, Any]) -> None:
    assert data["promql"] == [Q_SLI, Q_ERRORS, Q_DEPLOY, Q_VERIFY]  # as first used
    urls = {link["url"]: link["kind"] for link in data["links"]}
    assert urls[GENERATOR] == "alert"
    for query in data["promql"]:
        graph = f"{PROMETHEUS}/graph?g0.expr={quote(query, safe='')}&g0.tab=0"
        assert urls[graph] == "graph"
    base = MLFLOW.rstrip("/")
    assert urls[f"{base}/#/models/fraud-detector/versions/4"] == "registry"
    assert urls[f"{base}/#/models/fraud-detector/versions/3"] == "registry"
    assert len(urls) == len(data["links"])  # each once


def test_no_base_urls_no_graph_or_registry_links(events: list[Event]) -> None:
    doc = build_document(incident(), events, now=T0)
    assert {link["kind"] for link in doc.links} == {"alert"}


def test_action_items_draft(data: dict[str, Any]) -> None:
    items = data["action_items"]
    assert any(i.startswith("Gate new versions of fraud-detector") for i in items)
    assert any("champion alias" in i for i in items)
    assert any(
        i.startswith("Add a canary stage before champion moves (note by alice") for i in items
    )
    assert any(
        i.startswith("Review the MTTD of 95.5 s (1m36s)") for i in items
    )  # 95.5 s > 1 minute
    assert not any(NOISY_NOTE[:10] in i for i in items)  # not an action: note
    assert len(items) == 3


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        ("data", "Add a validation check on the input features of fraud-detector"),
        ("infra", "Follow up on the capacity and dependencies of fraud-detector"),
        ("model", "Gate new versions of fraud-detector"),
    ],
)
def test_action_item_follows_the_cause(cause: str, expected: str) -> None:
    events = [
        Event(T0, "runbook.concluded", "alice", f"cause: {cause}",
              {"run": "r", "runbook": "rb", "cause": cause, "summary": "why"}, "runbook:r/1"),
        Event(T0 + 1, "note", "bob", "todo", {"text": "TODO: write the runbook"}, "event:1"),
    ]  # fmt: skip
    doc = build_document(bare_incident(), events, now=T0)
    assert doc.action_items[0].startswith(expected)
    assert doc.action_items[1].startswith("Write the runbook (note by bob")


# -- the Markdown --------------------------------------------------------------------


def test_markdown_title_and_sections_in_order(doc: ExportDocument) -> None:
    markdown = to_markdown(doc)
    assert markdown.splitlines()[0] == "# INC-7: fraud-detector burns its error budget"
    headings = [line[3:] for line in markdown.splitlines() if line.startswith("## ")]
    assert headings == list(SECTIONS) == [
        "Summary", "Impact", "Detection", "Timeline (UTC)", "Triage path and evidence",
        "Mitigation", "Root cause", "Metrics", "Action items",
    ]  # fmt: skip


def test_markdown_timeline_lists_every_event_in_order(
    doc: ExportDocument, events: list[Event]
) -> None:
    lines = [line for line in section(to_markdown(doc), "Timeline (UTC)") if line]
    assert len(lines) == len(events)
    for line, event in zip(lines, events, strict=True):
        assert line.startswith(f"- {utc(event.at)} · {event.kind} · {event.actor} · ")
    assert lines[1] == (
        f"- 2026-11-24T03:01:35.500Z · alert.firing · alertmanager · {ALERT} fraud-detector firing"
    )


def test_markdown_escapes_summaries(doc: ExportDocument) -> None:
    lines = section(to_markdown(doc), "Timeline (UTC)")
    noisy = next(line for line in lines if "bob@oncall" in line)
    assert noisy.endswith(" · checked the dashboards \\| all green moving on")
    assert "\n" not in noisy


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a | b", "a \\| b"),
        ("# not a heading", "\\# not a heading"),
        ("one\ntwo\r\nthree\rfour", "one two three four"),
        ("use `kubectl`", "use \\`kubectl\\`"),
        ("C:\\models", "C:\\\\models"),
        ("<script>alert(1)</script>", "\\<script>alert(1)\\</script>"),
        ("error_ratio < 0.01", "error_ratio < 0.01"),
        ("plain words", "plain words"),
    ],
)
def test_md_escape(raw: str, shown: str) -> None:
    assert md_escape(raw) == shown


def test_md_code_holds_any_backticks() -> None:
    assert md_code("rate(x[5m])") == "`rate(x[5m])`"
    assert md_code("a `b` c") == "``a `b` c``"
    assert md_code("`x`") == "`` `x` ``"
    assert md_code("a\nb") == "`a b`"


def test_markdown_content(doc: ExportDocument) -> None:
    markdown = to_markdown(doc)
    summary = "\n".join(section(markdown, "Summary"))
    assert "breached its objective (< 0.01) at 2026-11-24T03:00:00.000Z" in summary
    assert "went from version 4 to 3" in summary
    assert "classified the cause as model" in summary
    assert f"[Alert {ALERT} ({FINGERPRINT})]({GENERATOR})" in summary
    detection = "\n".join(section(markdown, "Detection"))
    for query in (Q_SLI, Q_ERRORS, Q_DEPLOY, Q_VERIFY):
        assert f"```promql\n{query}\n```" in detection
    assert "- **Time to detect (MTTD):** 1m36s (95.5 s)" in detection
    triage = section(markdown, "Triage path and evidence")
    assert "### Runbook `model-regression` (walk `run-1`, version 1)" in triage
    assert any(line.startswith("1. 2026-11-24T03:03:20.000Z (1m44s after firing) · "
                               "`errors-now` (check) → **true**")
               for line in triage)  # fmt: skip
    assert f"   - PromQL: `{Q_ERRORS}`" in triage
    mitigation = "\n".join(section(markdown, "Mitigation"))
    assert "**rollback** by alice@oncall: `fraud-detector@champion`: `v4` → `v3` · applied" in (
        mitigation
    )
    assert (
        "  - Verified on `error_ratio` (the SLI that paged, from the alert's sli label): "
        "recovered: 0.004 after 57.2s"
    ) in mitigation
    assert "by a rollback (fraud-detector@champion: v4 → v3); error_ratio recovered." in summary
    assert "**Model version:** `fraud-detector` (alias `champion`): `4` → `3`" in mitigation
    assert "**Cause:** model" in "\n".join(section(markdown, "Root cause"))
    metrics = section(markdown, "Metrics")
    assert metrics[1].startswith("| Metric | Time | Seconds |")
    assert any(line.startswith("| MTTD | 1m36s | 95.5 | event:1 → event:2 | time to detect")
               for line in metrics)  # fmt: skip
    items = section(markdown, "Action items")
    assert sum(line.startswith("- [ ] ") for line in items) == 3


# -- sparse and odd incidents --------------------------------------------------------


def test_an_incident_with_no_events(validator: Draft202012Validator) -> None:
    doc = build_document(bare_incident(), [], now=T0)
    data = strict_json(to_json(doc))
    assert validator.is_valid(data)
    assert data["timeline"] == [] and data["triage"] == [] and data["mitigation"] == []
    assert data["root_cause"] is None and data["versions"] is None and data["promql"] == []
    assert all(m["seconds"] is None for m in data["metrics"].values())
    assert data["detection"]["alert_started_at"] == utc(T0 + 95.5)  # from the incident
    markdown = to_markdown(doc)
    headings = [line[3:] for line in markdown.splitlines() if line.startswith("## ")]
    assert headings == list(SECTIONS)
    assert section(markdown, "Timeline (UTC)") == ["", "_No events were recorded._", ""]
    rows = [line for line in section(markdown, "Metrics") if line.startswith("| ")][1:]
    assert len(rows) == 5 and all("| not available |" in row for row in rows)
    assert "_No runbook walk was recorded for this incident._" in markdown
    assert "_No mitigation was recorded._" in markdown
    assert "_Not classified: no runbook walk concluded with a cause._" in markdown
    assert "not resolved" in doc.summary


def test_an_incident_without_runbook_or_action(validator: Draft202012Validator) -> None:
    events = [e for e in bad_deploy_events() if e.kind.split(".")[0] not in ("runbook", "action")]
    events = [e for e in events if e.kind != "incident.mitigated"]
    doc = build_document(incident(), events, now=T0)
    assert validator.is_valid(strict_json(to_json(doc)))
    assert doc.triage == [] and doc.mitigation == [] and doc.versions is None
    assert doc.root_cause is None
    assert doc.metrics["ttm"].seconds is None and doc.metrics["mttd"].seconds == 95.5
    assert doc.action_items[0].startswith("Determine the root cause")
    markdown = to_markdown(doc)
    ttm = next(line for line in section(markdown, "Metrics") if line.startswith("| Time to mit"))
    assert "| not available |" in ttm


ODD_DATA: list[Any] = [
    None,
    [],
    "text",
    {"value": "not a number", "objective": 5, "sli": ["x"], "query": None},
    {"value": math.nan, "query": ""},
    {"value": math.inf},
    {"inputs": None, "outputs": "x", "step_kind": 3, "run": None},
    {"inputs": {"query": 7}, "outputs": {"values": "many", "series": "two", "result": "yes"}},
    {"plan": "not a plan", "result": [1, 2], "seq": "x", "intent_seq": True},
    {"plan": {"changes": "none", "before": None, "notes": 5}, "result": {"applied": "maybe"}},
    {"plan": {"changes": [None, {"target": 1}]}, "result": {"verdict": None}, "seq": 9},
    {"result": {"recovered": "yes", "value": "0.5", "elapsed": None, "reads": 1.5}},
    {"text": None, "fingerprint": None, "generator_url": 12, "labels": "x"},
    {"text": "todo:"},
    {"nested": {1: {2, 3}, "t": (1, 2), "b": b"bytes", "o": object()}},
    {1: "a number as key", (1, 2): "a tuple as key"},
]
ODD_KINDS = [
    "sli.first_breach", "sli.mitigation", "sli.recovery", "runbook.step", "runbook.concluded",
    "action.intent", "action.result", "action.refusal", "action.verify", "action.reconcile",
    "incident.mitigated", "alert.firing", "alert.resolved", "note", "something.new",
]  # fmt: skip


def test_odd_event_data_never_crashes(validator: Draft202012Validator) -> None:
    rng = random.Random(5)
    events = [
        Event(T0 + n, kind, "x", f"{kind} #{n} | `odd`\n", data, f"event:{n}")
        for n, (kind, data) in enumerate(
            (kind, rng.choice(ODD_DATA)) for kind in ODD_KINDS * 8
        )
    ]  # fmt: skip
    for kind in ODD_KINDS:
        for data in ODD_DATA:
            events.append(Event(T0 + len(events), kind, "x", "s", data, f"event:{len(events)}"))
    doc = build_document(bare_incident(), events, prometheus_url=PROMETHEUS, now=T0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = strict_json(to_json(doc))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
    assert errors == []
    assert len(data["timeline"]) == len(events)
    markdown = to_markdown(doc)
    timeline = [line for line in section(markdown, "Timeline (UTC)") if line]
    assert len(timeline) == len(events)


def test_event_times_render_like_the_timeline() -> None:
    rng = random.Random(11)
    times = [T0 + rng.uniform(-4e8, 4e8) for _ in range(3000)]
    times += [T0 + k + frac for k in range(50) for frac in (0.0005, 0.9995, 0.99949, 0.0004)]
    events = [Event(at, "note", "x", "t", {}, "") for at in sorted(times)]
    doc = build_document(bare_incident(), events, now=T0)
    assert [e["at"] for e in doc.timeline] == [utc(at) for at in sorted(times)]


def test_a_long_timeline(validator: Draft202012Validator) -> None:
    base = bad_deploy_events()
    events = [
        Event(T0 + 1000 + n * 0.25, "alert.firing" if n % 2 else "alert.resolved",
              "alertmanager", f"flap {n}", {"fingerprint": FINGERPRINT}, f"event:{100 + n}")
        for n in range(20_000)
    ]  # fmt: skip
    doc = build_document(incident(), base + events, now=T0)
    markdown = to_markdown(doc)
    assert len([line for line in section(markdown, "Timeline (UTC)") if line]) == 20_000 + len(base)
    assert validator.is_valid(json.loads(to_json(doc)))


# -- writing -------------------------------------------------------------------------


def test_write_export_writes_atomically(doc: ExportDocument, tmp_path: Path) -> None:
    target = tmp_path / "exports" / "nested" / "INC-7.md"
    text = write_export(doc, "md", target)
    assert text == to_markdown(doc)
    assert target.read_text(encoding="utf-8") == text
    json_path = tmp_path / "exports" / "INC-7.json"
    json_path.write_text("old contents", encoding="utf-8")
    assert write_export(doc, "json", json_path) == to_json(doc)
    assert json.loads(json_path.read_text(encoding="utf-8"))["incident"]["id"] == "INC-7"
    leftovers = [p.name for p in (tmp_path / "exports").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_write_export_without_a_path_only_renders(doc: ExportDocument, tmp_path: Path) -> None:
    assert write_export(doc, "json") == to_json(doc)
    with pytest.raises(ValueError, match="'md' or 'json'"):
        write_export(doc, "html", tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()


def test_checks_read_again_keep_the_earlier_readings_and_can_withdraw_a_cause() -> None:
    def reread(n: int, at: float, value: float, *, changed: bool) -> Event:
        event = check(n, at, "errors-now", Q_ERRORS, value)
        outputs = {**event.data["outputs"], "recheck": True, "changed": changed}
        return replace(event, data={**event.data, "outputs": outputs})

    concluded = Event(
        T0 + 240,
        "runbook.concluded",
        "alice@oncall",
        "model-regression: cause model",
        {"run": "run-1", "runbook": "model-regression", "cause": "model", "summary": "bad v4"},
        "runbook:run-1/4",
    )
    walked = [*bad_deploy_events()[:3], check(1, 200, "errors-now", Q_ERRORS, 0.41), concluded]
    same = build_document(incident(), [*walked, reread(5, 900, 0.38, changed=False)], now=T0)
    (run,) = same.triage
    assert [(s["superseded"], s["recheck"]) for s in run["path"]] == [(True, False), (False, True)]
    assert run["path"][1]["read_after_firing"] == 900 - 95.5
    assert same.root_cause is not None and same.root_cause.cause == "model"
    assert "_(earlier reading)_" in to_markdown(same) and "_(read again)_" in to_markdown(same)

    other = build_document(incident(), [*walked, reread(5, 900, 0.0, changed=True)], now=T0)
    (run,) = other.triage
    assert run["cause"] is None and run["concluded_at"] is None
    assert other.root_cause is None  # the check branched elsewhere: the cause no longer stands


def test_a_verdict_that_watched_nothing_says_so_and_claims_no_recovery(
    events: list[Event],
) -> None:
    unwatched = [e for e in events if e.kind not in ("action.verify", "sli.recovery")]
    unwatched.append(
        Event(T0 + 303, "action.verify", "alice@oncall", "NOT VERIFIED",
              audit("verify", 43, intent_seq=41, result={
                  "model": MODEL, "sli": "staleness", "query": "", "threshold": "",
                  "origin": "the SLI that paged, from the alert's sli label", "watched": False,
                  "recovered": False, "value": None, "elapsed": 0.0, "reads": 0,
                  "error": "the alert's sli label names 'staleness', which is not among `slis`",
              }), "audit:43")
    )  # fmt: skip
    doc = build_document(incident(), sorted(unwatched, key=lambda e: e.at), now=T0 + 3600)
    (rollback,) = doc.mitigation
    assert rollback["verification"] is not None
    assert rollback["verification"]["watched"] is False
    assert rollback["verification"]["sli"] == "staleness"
    assert rollback["verified"] is False
    markdown = to_markdown(doc)
    mitigation = "\n".join(section(markdown, "Mitigation"))
    assert "  - Not verified: nothing was watched: the alert's sli label names" in mitigation
    assert "recovered" not in doc.summary
    assert "its effect could not be verified (nothing was watched)" in doc.summary


def test_a_link_title_with_brackets_is_escaped_once() -> None:
    from console.export.markdown import _link_line

    line = _link_line(
        {"title": "Graph: rate(x[5m]) `a|b`", "url": "http://h/g?e=x", "kind": "graph"}
    )
    # Each bracket escaped once: rendered, the title reads rate(x[5m]), and no
    # bare bracket can close the link text early.
    assert line == "- [Graph: rate(x\\[5m\\]) \\`a\\|b\\`](http://h/g?e=x)"
