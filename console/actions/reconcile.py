"""Actions in doubt: an intent with no result (a console that died mid-action), found
and settled by whoever comes next."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.base import (
    AdapterError,
)
from console.actions.contracts import ActionContext, ActionError
from console.actions.kinds import ACTIONS
from console.actions.lease import action_lease, process_alive
from console.audit.chain import TIME_FORMAT as AUDIT_TIME_FORMAT
from console.audit.chain import AuditEntry, AuditError
from console.audit.log import AuditLog


@dataclass(frozen=True, slots=True)
class Reconciliation:
    intent_seq: int
    action: str
    summary: str
    verdict: str
    observed: Any = None
    error: str | None = None

    def line(self) -> str:
        if self.error:
            return f"#{self.intent_seq} {self.summary}: still in doubt ({self.error})"
        return f"#{self.intent_seq} {self.summary}: {self.verdict} (read: {self.observed})"


def _age(entry: AuditEntry, now: float) -> float:
    try:
        at = datetime.strptime(str(entry.body.get("at")), AUDIT_TIME_FORMAT)
    except ValueError:
        return math.inf
    return now - at.replace(tzinfo=UTC).timestamp()


async def reconcile_in_doubt(
    ctx: ActionContext,
    audit: AuditLog,
    *,
    now: float | None = None,
    doubtful: list[AuditEntry] | None = None,
) -> list[Reconciliation]:
    """Settle every intent that has no result by reading the real state, and audit it.

    An intent whose process still runs on this host, or (when that cannot be told)
    that is younger than the action lease (:func:`action_lease`), belongs to an action
    in progress and is left alone. Reconciling only reads; it is allowed in read-only
    mode. A reconcile entry that cannot be written leaves its intent in doubt, said so.
    """
    now = time.time() if now is None else now
    lease = action_lease(ctx.config)
    out: list[Reconciliation] = []
    try:
        doubtful = audit.in_doubt() if doubtful is None else doubtful
    except AuditError as exc:
        return [Reconciliation(0, "?", "the audit log", "in doubt", error=str(exc))]
    for entry in doubtful:
        body = entry.body
        alive = process_alive(body.get("process"))
        if alive or (alive is None and _age(entry, now) < lease):
            continue  # may still be running: its own process writes the result
        plan = body.get("plan") or {}
        summary = str(plan.get("summary") or body.get("action"))
        cls = ACTIONS.get(str(body.get("action")))
        if cls is None:
            out.append(
                Reconciliation(
                    entry.seq,
                    str(body.get("action")),
                    summary,
                    "in doubt",
                    error="unknown action",
                )
            )
            continue
        action = cls(ctx, body.get("params") or {})
        try:
            verdict, observed = await action.reconcile(plan, entry)
        except (AdapterError, ActionError, KeyError, ValueError, TypeError) as exc:
            out.append(
                Reconciliation(
                    entry.seq, action.name, summary, "in doubt", error=ctx.redact(str(exc))
                )
            )
            continue
        try:
            audit.append(
                "reconcile",
                actor=ctx.actor,
                action=action.name,
                params=body.get("params") or {},
                incident=body.get("incident"),
                plan=plan,
                result={"verdict": verdict, "observed": observed},
                intent_seq=entry.seq,
            )
        except AuditError as exc:
            out.append(
                Reconciliation(
                    entry.seq,
                    action.name,
                    summary,
                    verdict,
                    observed,
                    error=f"read {verdict}, but the verdict could not be written: {exc}",
                )
            )
            continue
        out.append(Reconciliation(entry.seq, action.name, summary, verdict, observed))
    return out
