"""The runbook walks filed under the incident, step by step, and the root cause they
concluded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from console.export.collect import Collected
from console.export.readers import (
    as_flag,
    as_int,
    as_mapping,
    as_number,
    as_str_map,
    as_text,
    event_data,
)
from console.export.schema import RootCause, TriageRun
from console.incidents.timeline import Event, utc


def _values_text(values: Any, series: Any) -> str:
    if not isinstance(values, list) or not values:
        return "no series"
    shown: list[str] = []
    for item in values[:3]:
        item = as_mapping(item)
        value = as_number(item.get("value"))
        labels = as_str_map(item.get("labels"))
        text = "NaN" if value is None else f"{value:.4g}"
        if labels:
            text += " {" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"
        shown.append(text)
    count = as_int(series)
    total = count if count is not None else len(values)
    more = f" (+{total - len(shown)} more)" if total > len(shown) else ""
    return f"{total} series: " + "; ".join(shown) + more


def _step_evidence(kind: str | None, inputs: dict[str, Any], outputs: dict[str, Any]) -> str:
    """A step's evidence in one line."""
    if error := as_text(outputs.get("error")):
        return f"error: {error}"
    if kind == "check":
        condition = as_text(inputs.get("condition"))
        verdict = outputs.get("result")
        found = _values_text(outputs.get("values"), outputs.get("series"))
        held = (
            ""
            if not isinstance(verdict, bool)
            else f"; condition {condition or '?'} {'held' if verdict else 'did not hold'}"
        )
        return found + held
    if kind == "ask":
        question, label = as_text(inputs.get("question")), as_text(outputs.get("label"))
        return " → ".join(x for x in (question, label) if x)
    if kind == "action":
        action = as_text(inputs.get("action")) or "action"
        params = as_mapping(inputs.get("params"))
        listed = ", ".join(f"{k}={v}" for k, v in params.items())
        done = ", ".join(f"{k}={v}" for k, v in outputs.items())
        return f"{action}({listed})" + (f": {done}" if done else "")
    if kind in ("note", "link"):
        return as_text(outputs.get("text")) or ""
    if kind == "conclude":
        cause, summary = as_text(outputs.get("cause")), as_text(outputs.get("summary"))
        return ": ".join(x for x in (cause, summary) if x)
    if outputs:
        return ", ".join(f"{k}={v}" for k, v in outputs.items())
    return ""


def _run_id(event: Event, data: Mapping[str, Any]) -> str:
    run = as_text(data.get("run"))
    if run:
        return run
    ref = event.ref if isinstance(event.ref, str) else ""
    if ref.startswith("runbook:"):
        return ref.removeprefix("runbook:").split("/", 1)[0]
    return "unknown"


def derive_triage(got: Collected, fired: float) -> list[TriageRun]:
    runs: dict[str, TriageRun] = {}

    def run_for(event: Event, data: Mapping[str, Any]) -> TriageRun:
        key = _run_id(event, data)
        run = runs.get(key)
        if run is None:
            run = runs[key] = {
                "run": key,
                "runbook": as_text(data.get("runbook")),
                "runbook_version": as_text(data.get("runbook_version")),
                "started_at": got.at(event),
                "path": [],
                "cause": None,
                "summary": None,
                "concluded_at": None,
            }
        if run["runbook"] is None:
            run["runbook"] = as_text(data.get("runbook"))
        if run["runbook_version"] is None:
            run["runbook_version"] = as_text(data.get("runbook_version"))
        return run

    for event in sorted([*got.steps, *got.concluded], key=lambda e: e.at):
        data = event_data(event)
        run = run_for(event, data)
        if event.kind == "runbook.concluded":
            run["cause"] = as_text(data.get("cause")) or run["cause"]
            run["summary"] = as_text(data.get("summary")) or run["summary"]
            run["concluded_at"] = got.at(event)
            continue
        inputs, outputs = as_mapping(data.get("inputs")), as_mapping(data.get("outputs"))
        kind = as_text(data.get("step_kind"))
        step = as_text(data.get("step")) or "?"
        if kind == "check":
            for earlier in run["path"]:
                if earlier["kind"] == "check" and earlier["step"] == step:
                    earlier["superseded"] = True
        if outputs.get("changed") is True:  # read again, it branched elsewhere
            run["cause"] = run["summary"] = run["concluded_at"] = None
        run["path"].append(
            {
                "at": got.at(event),
                "step": as_text(data.get("step")) or "?",
                "kind": kind,
                "decision": as_text(data.get("decision")),
                "evidence": _step_evidence(kind, inputs, outputs),
                "query": as_text(inputs.get("query")),
                "result": as_flag(outputs.get("result")),
                "error": as_text(outputs.get("error")),
                "inputs": inputs,
                "outputs": outputs,
                "ref": event.ref if isinstance(event.ref, str) else str(event.ref),
                "read_after_firing": round(float(event.at) - fired, 3),
                "recheck": outputs.get("recheck") is True,
                "superseded": False,
            }
        )
        if kind == "conclude" and run["cause"] is None:
            run["cause"] = as_text(outputs.get("cause"))
            run["summary"] = as_text(outputs.get("summary"))
    return list(runs.values())


def derive_root_cause(got: Collected, triage: list[TriageRun]) -> RootCause | None:
    standing = {run["run"] for run in triage if run["cause"]}  # not withdrawn by a re-check
    for event in reversed(got.concluded):
        data = event_data(event)
        cause = as_text(data.get("cause"))
        if cause and _run_id(event, data) in standing:
            return RootCause(
                cause=cause,
                summary=as_text(data.get("summary")),
                runbook=as_text(data.get("runbook")),
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
