"""The incident's mitigations: each plan, its outcome and its verification, and the
versions served before and after."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from console.export.collect import Collected
from console.export.readers import (
    as_flag,
    as_int,
    as_mapping,
    as_number,
    as_strings,
    as_text,
    event_data,
)
from console.export.schema import ROLLBACK, MitigationRecord, PlanChange, Verification, Versions
from console.incidents.timeline import MITIGATIONS, Event


def _changes(plan: Mapping[str, Any]) -> list[PlanChange]:
    raw = plan.get("changes")
    if not isinstance(raw, list):
        return []
    changes: list[PlanChange] = []
    for item in raw:
        change = as_mapping(item)
        if change:
            changes.append(
                {
                    "target": as_text(change.get("target")) or "",
                    "before": as_text(change.get("before")) or "",
                    "after": as_text(change.get("after")) or "",
                    "details": as_strings(change.get("details")),
                }
            )
    return changes


def _verification(result: Mapping[str, Any]) -> Verification:
    return {
        "recovered": as_flag(result.get("recovered")),
        "sli": as_text(result.get("sli")),
        "origin": as_text(result.get("origin")),
        "watched": as_flag(result.get("watched")),
        "query": as_text(result.get("query")),
        "threshold": as_text(result.get("threshold")),
        "value": as_number(result.get("value")),
        "elapsed": as_number(result.get("elapsed")),
        "reads": as_int(result.get("reads")),
        "error": as_text(result.get("error")),
    }


def _new_mitigation(event: Event, data: Mapping[str, Any], at: str) -> MitigationRecord:
    return {
        "action": as_text(data.get("action")) or "unknown",
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


def is_mitigation(record: MitigationRecord) -> bool:
    """Whether an action changes what serves traffic for the better: a rollback, the
    fallback turned on, a pipeline paused (not a silence, not an undo)."""
    if record["action"] not in MITIGATIONS:
        return False
    return record["action"] == "rollback" or record["after"].get("on") is True


def derive_mitigations(got: Collected) -> list[MitigationRecord]:
    """One record per action: its intent and the entries that name that intent."""
    records: dict[str, MitigationRecord] = {}
    seen_seqs: set[int] = set()
    for index, event in enumerate(got.actions):
        data = event_data(event)
        seq, intent_seq = as_int(data.get("seq")), as_int(data.get("intent_seq"))
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
            {"kind": kind, "seq": seq, "hash": as_text(data.get("hash")), "at": got.at(event)}
        )
        plan = as_mapping(data.get("plan"))
        if plan and not record["summary"]:
            record["model"] = as_text(plan.get("model"))
            record["summary"] = as_text(plan.get("summary")) or ""
            record["changes"] = _changes(plan)
            record["before"] = as_mapping(plan.get("before"))
            record["after"] = as_mapping(plan.get("after"))
            record["notes"] = as_strings(plan.get("notes"))
        if record["model"] is None:
            record["model"] = as_text(as_mapping(data.get("params")).get("model"))
        if record["action"] == "unknown":
            record["action"] = as_text(data.get("action")) or "unknown"
        result, error = as_mapping(data.get("result")), as_text(data.get("error"))
        if kind == "refusal":
            record["applied"], record["outcome"], record["error"] = False, "refused", error
        elif kind == "result":
            applied = as_flag(result.get("applied"))
            if applied is None:
                applied = error is None
            outcome = "failed" if error else ("applied" if applied else "not applied")
            record["applied"], record["outcome"], record["error"] = applied, outcome, error
            record["confirmed"] = as_flag(result.get("confirmed"))
        elif kind == "reconcile":
            verdict = as_text(result.get("verdict")) or "unknown"
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
        data = event_data(event)
        audit_seq = as_int(data.get("audit_seq"))
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
    version = as_text(record[side].get("version"))
    if version is None and record["changes"]:
        version = record["changes"][0][side] or None
    return version.removeprefix("v") if version else None


def derive_versions(mitigation: list[MitigationRecord]) -> Versions | None:
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
