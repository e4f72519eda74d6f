"""The runbook engine: walk a runbook's steps and keep the evidence of each.

No Textual here. The TUI, ``mlconsole runbook run`` and pre-triage all drive the
same :class:`Walk`. Every move is written to the store with its evidence, so a
restart resumes exactly there (:mod:`console.triage.walk_state`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters.base import AdapterError
from console.triage.runbook import (
    ActionStep,
    AskStep,
    CheckStep,
    ConcludeStep,
    LinkStep,
    NoteStep,
    Step,
    TemplateError,
    evaluate,
)
from console.triage.walk_state import WalkError, WalkState

if TYPE_CHECKING:
    from console.actions.origin import Origin


@dataclass(frozen=True, slots=True)
class Pause:
    """Why a walk stopped moving on its own."""

    step: Step
    reason: str
    """``ask``, ``action``, ``concluded`` or ``error``."""
    error: str | None = None


class Walk(WalkState):
    """One walk of one runbook for one alert, persisted in the store."""

    # -- moving --------------------------------------------------------------

    async def advance(self, *, actor: str | None = None) -> Pause:
        """Take every step that needs no human: checks, notes, links, conclusions.

        Stops at an ``ask`` or ``action`` step (a human decides), at a conclusion,
        or at a check that cannot run (the error is recorded as evidence).
        """
        for _ in range(10 * len(self.runbook.steps) + 10):  # validation forbids ask-less loops
            step = self.current
            if self.concluded:
                return Pause(step, "concluded")
            match step:
                case CheckStep():
                    error = await self._check(step, actor)
                    if error is not None:
                        return Pause(step, "error", error)
                case NoteStep() | LinkStep():
                    raw = step.text if isinstance(step, NoteStep) else step.url
                    try:
                        text = self._render(raw, url=isinstance(step, LinkStep))
                        shown: dict[str, Any] = {"text": text}
                    except TemplateError as exc:  # e.g. a link on a metrics source not set
                        shown = {"text": raw, "error": str(exc)}
                    self._move(step, step.next, "shown", outputs=shown, actor=actor)
                case ConcludeStep():
                    summary = self._render(step.summary)
                    self._move(
                        step,
                        None,
                        f"concluded: {step.cause}",
                        outputs={"cause": step.cause, "summary": summary},
                        status="concluded",
                        cause=step.cause,
                        summary=summary,
                        actor=actor,
                    )
                    return Pause(step, "concluded")
                case AskStep():
                    return Pause(step, "ask")
                case ActionStep():
                    return Pause(step, "action")
        raise WalkError(f"runbook {self.runbook.id!r} loops without asking anyone")

    async def _measure(self, step: CheckStep) -> tuple[dict[str, Any], dict[str, Any], bool | None]:
        """Run a check's query: its inputs, outputs, and whether the condition holds
        (None when it could not run; the outputs then hold the error)."""
        try:
            query = self._render(step.query, promql=True)
        except TemplateError as exc:
            return {"query": step.query}, {"error": str(exc)}, None
        inputs = {"query": query, "condition": step.condition}
        if self.metrics is None:
            return inputs, {"error": "no metrics source configured"}, None
        try:
            result = await self.metrics.query(query)
        except AdapterError as exc:
            return inputs, {"error": exc.summary()}, None
        values = [s.value for s in result.samples if not math.isnan(s.value)]
        holds = evaluate(step.condition, values)
        outputs = {
            "values": [{"labels": dict(s.labels), "value": s.value} for s in result.samples[:50]],
            "series": len(result.samples),
            "result": holds,
            "warnings": list(result.warnings),
        }
        return inputs, outputs, holds

    async def _check(self, step: CheckStep, actor: str | None) -> str | None:
        inputs, outputs, holds = await self._measure(step)
        if holds is None:
            self._move(step, None, "error", inputs, outputs, actor=actor)
            return str(outputs["error"])
        target = step.on_true if holds else step.on_false
        self._move(step, target, "true" if holds else "false", inputs, outputs, actor=actor)
        return None

    def checks_read_at(self) -> float | None:
        """When the walk's newest check reading was taken (a failed read is none);
        None if it has none."""
        readings = (e.at for e in self.evidence if e.kind == "check" and e.decision != "error")
        return max(readings, default=None)

    async def recheck(self, *, actor: str | None = None) -> Pause:
        """Run the checks of the current path again, first to last.

        The earlier values stay as evidence; each new reading is added with
        ``recheck: true``. Where a check now decides the other way, the path is cut
        there (``changed: true``; a conclusion reached past it is withdrawn) and the
        walk goes on from the new branch. A check that cannot run stops here, with
        the path as it was.
        """
        for index, step_id in enumerate(self.record.path):
            step = self.runbook.step(step_id)
            if not isinstance(step, CheckStep):
                continue
            inputs, outputs, holds = await self._measure(step)
            outputs["recheck"] = True
            path = self.record.path
            if holds is None:
                self._record(step, path, "error", inputs, outputs, actor, keep=True)
                return Pause(step, "error", str(outputs["error"]))
            target = step.on_true if holds else step.on_false
            followed = path[index + 1] if index + 1 < len(path) else None
            changed = followed is not None and target != followed
            outputs["changed"] = changed
            decision = "true" if holds else "false"
            if changed or followed is None:
                self._record(step, (*path[: index + 1], target), decision, inputs, outputs, actor)
                break
            self._record(step, path, decision, inputs, outputs, actor, keep=True)
        return await self.advance(actor=actor)

    def answer(self, choice: int | str, *, actor: str | None = None) -> None:
        """Answer the current ``ask`` step with a choice number (1-based) or label."""
        step = self.current
        if not isinstance(step, AskStep):
            raise WalkError(f"step {step.id!r} is a {step.kind} step, not a question")
        index = _choice_index(step, choice)
        picked = step.choices[index]
        self._move(
            step,
            picked.next,
            f"{index + 1}: {picked.label}",
            inputs={"question": self._render(step.question)},
            outputs={"choice": index + 1, "label": picked.label},
            actor=actor,
        )

    def decide_action(
        self, confirmed: bool, *, actor: str | None = None, outcome: Mapping[str, Any] | None = None
    ) -> None:
        """Record that the responder confirmed or skipped the current ``action`` step."""
        step = self.current
        if not isinstance(step, ActionStep):
            raise WalkError(f"step {step.id!r} is a {step.kind} step, not an action")
        params = {k: self._render(v) for k, v in step.params.items()}
        self._move(
            step,
            step.next,
            "confirmed" if confirmed else "skipped",
            inputs={"action": step.action, "params": params},
            outputs=dict(outcome or {}),
            actor=actor,
        )

    def action_request(self) -> tuple[str, dict[str, Any]]:
        """The current ``action`` step's mitigation: an action name and its params, with
        the alert's labels filled in (the screen and ``runbook run`` both ask here)."""
        from console.actions.kinds import from_runbook

        step = self.current
        if not isinstance(step, ActionStep):
            raise WalkError(f"step {step.id!r} is a {step.kind} step, not an action")
        params = {k: self.text(v) for k, v in step.params.items()}
        return from_runbook(step.action, params, runbook=self.runbook.id)

    def action_origin(self) -> Origin:
        """Where the current ``action`` step's mitigation is taken from: the alert this
        walk triages (so it is filed under that alert's incident) and the SLI the step
        declares (what verification watches when the alert names none)."""
        from console.actions.origin import Origin

        step = self.current
        if not isinstance(step, ActionStep):
            raise WalkError(f"step {step.id!r} is a {step.kind} step, not an action")
        return Origin(
            labels=dict(self.record.labels),
            fingerprint=self.record.alert_fingerprint,
            step_sli=step.sli,
        )

    def record_action(self, report: Mapping[str, Any], *, actor: str | None = None) -> bool:
        """The current ``action`` step's mitigation ran (``report``: a
        :class:`console.actions.executor.Report` as a dict, plus the incident and recovery when
        known): its outcome becomes the step's evidence.

        Applied, the step is confirmed and the walk moves on (True). Refused, failed or
        in conflict, the walk stays at the step to retry or skip it (False).
        """
        step = self.current
        if not isinstance(step, ActionStep):
            raise WalkError(f"step {step.id!r} is a {step.kind} step, not an action")
        plan = report.get("plan") or {}
        outcome: dict[str, Any] = {
            "outcome": str(report.get("outcome")),
            "summary": plan.get("summary", ""),
            "message": report.get("message", ""),
            "audit_intent": report.get("intent_seq"),
            "audit_result": report.get("result_seq"),
        }
        for key in ("incident", "error", "recovery", "exit"):
            if report.get(key) is not None:
                outcome[key] = report[key]
        if outcome["outcome"] == "applied":
            self.decide_action(True, actor=actor, outcome=outcome)
            return True
        params = {k: self._render(v) for k, v in step.params.items()}
        self._move(
            step,
            None,
            f"not applied: {outcome['outcome']}",
            inputs={"action": step.action, "params": params},
            outputs=outcome,
            actor=actor,
        )
        return False


def _choice_index(step: AskStep, choice: int | str) -> int:
    if isinstance(choice, int) or (isinstance(choice, str) and choice.strip().isdigit()):
        index = int(choice) - 1
        if 0 <= index < len(step.choices):
            return index
    else:
        for index, option in enumerate(step.choices):
            if option.label.lower() == str(choice).strip().lower():
                return index
    options = "; ".join(f"{i + 1}={c.label}" for i, c in enumerate(step.choices))
    raise WalkError(f"{choice!r} is not a choice of step {step.id!r} ({options})")
