"""The runbook engine: walk a runbook's steps and keep the evidence of each.

No Textual here. The TUI, ``mlconsole runbook run`` and pre-triage all drive
the same :class:`Walk`. Every move is written to the store with its evidence
(inputs such as the rendered PromQL, outputs such as the values, the decision,
who took it and when) in one transaction, so a restart resumes exactly there.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters.base import AdapterError, MetricsAdapter
from adapters.records import AlertRecord
from console.config.actor import default_actor
from console.config.models import Config
from console.config.paths import store_path
from console.triage.catalog import Catalog, runbook_dirs
from console.triage.runbook import (
    ActionStep,
    AskStep,
    CheckStep,
    ConcludeStep,
    LinkStep,
    NoteStep,
    Runbook,
    Step,
    TemplateError,
    evaluate,
    render,
)
from console.triage.store import RUN_GRACE, Evidence, RunRecord, Store

if TYPE_CHECKING:
    from console.actions.origin import Origin


#: Who pre-triage's evidence names.
PRETRIAGE_ACTOR = "mlconsole (pre-triage)"


class WalkError(Exception):
    """A step cannot be taken: the message says which and why."""


@dataclass(frozen=True, slots=True)
class Pause:
    """Why a walk stopped moving on its own."""

    step: Step
    reason: str
    """``ask``, ``action``, ``concluded`` or ``error``."""
    error: str | None = None


class Walk:
    """One walk of one runbook for one alert, persisted in the store."""

    def __init__(
        self,
        runbook: Runbook,
        record: RunRecord,
        store: Store,
        metrics: MetricsAdapter | None,
        *,
        actor: str | None = None,
        clock: Any = time.time,
    ) -> None:
        if record.runbook_id != runbook.id:
            raise WalkError(f"run {record.id} belongs to runbook {record.runbook_id!r}")
        self.runbook = runbook
        self.record = record
        self.store = store
        self.metrics = metrics
        self.actor = actor or default_actor()
        self.clock = clock

    # -- creation ------------------------------------------------------------

    @classmethod
    def start(
        cls,
        runbook: Runbook,
        labels: Mapping[str, str],
        store: Store,
        metrics: MetricsAdapter | None,
        *,
        alert_fingerprint: str | None = None,
        actor: str | None = None,
        incident: int | None = None,
        firing_at: float | None = None,
        clock: Any = time.time,
    ) -> Walk:
        """A new walk; ``incident`` and ``firing_at`` say which firing it triages."""
        missing = sorted(name for name in runbook.labels if name not in labels)
        if missing:
            raise WalkError(
                f"runbook {runbook.id!r} needs alert labels {', '.join(missing)}; "
                "pass them with --labels NAME=VALUE"
            )
        record = store.create_run(
            runbook.id,
            runbook.version,
            labels,
            runbook.start,
            alert_fingerprint,
            incident=incident,
            firing_at=firing_at,
        )
        return cls(runbook, record, store, metrics, actor=actor, clock=clock)

    @classmethod
    def resume(
        cls,
        run_id: str,
        runbooks: Mapping[str, Runbook],
        store: Store,
        metrics: MetricsAdapter | None,
        *,
        actor: str | None = None,
    ) -> Walk:
        record = store.run(run_id)
        runbook = runbooks.get(record.runbook_id)
        if runbook is None:
            raise WalkError(f"run {run_id} uses runbook {record.runbook_id!r}, which is not loaded")
        return cls(runbook, record, store, metrics, actor=actor)

    # -- state ---------------------------------------------------------------

    @property
    def current(self) -> Step:
        return self.runbook.step(self.record.path[-1])

    def reload(self) -> None:
        """Re-read the run from the store: another walker (pre-triage) moved it."""
        self.record = self.store.run(self.record.id)

    @property
    def concluded(self) -> bool:
        return self.record.status == "concluded"

    @property
    def evidence(self) -> list[Evidence]:
        return self.store.evidence(self.record.id)

    def _move(
        self,
        step: Step,
        to: str | None,
        decision: str,
        inputs: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
        *,
        status: str = "active",
        cause: str | None = None,
        summary: str | None = None,
        actor: str | None = None,
    ) -> None:
        path = self.record.path if to is None else (*self.record.path, to)
        evidence = Evidence(
            step.id,
            step.kind,
            inputs or {},
            outputs or {},
            decision,
            actor or self.actor,
            self.clock(),
        )
        self.store.update_run(
            self.record.id,
            path=path,
            status=status,
            cause=cause,
            summary=summary,
            evidence=evidence,
        )
        self.record = self.store.run(self.record.id)

    def _render(self, text: str, *, promql: bool = False, url: bool = False) -> str:
        metrics = {} if self.metrics is None else {"url": self.metrics.settings.browser_url()}
        return render(
            text, self.record.labels, self.runbook.vars, promql=promql, url=url, metrics=metrics
        )

    def text(self, template: str) -> str:
        """A step's text for display, with the alert's labels and the vars filled in."""
        try:
            return self._render(template)
        except TemplateError:
            return template

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

    def _record(
        self,
        step: Step,
        path: tuple[str, ...],
        decision: str,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
        actor: str | None,
        *,
        keep: bool = False,
    ) -> None:
        """Keep evidence and set the path; ``keep`` leaves the walk's status as it is."""
        record = self.record
        self.store.update_run(
            record.id,
            path=path,
            status=record.status if keep else "active",
            cause=record.cause if keep else None,
            summary=record.summary if keep else None,
            evidence=Evidence(
                step.id, step.kind, inputs, outputs, decision, actor or self.actor, self.clock()
            ),
        )
        self.record = self.store.run(record.id)

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

    def back(self, *, actor: str | None = None) -> bool:
        """Go back one step (the evidence of both moves stays). False at the start."""
        if len(self.record.path) < 2:
            return False
        step = self.current
        path = self.record.path[:-1]
        evidence = Evidence(
            step.id, step.kind, {}, {"to": path[-1]}, "back", actor or self.actor, self.clock()
        )
        self.store.update_run(self.record.id, path=path, status="active", evidence=evidence)
        self.record = self.store.run(self.record.id)
        return True

    def as_dict(self) -> dict[str, Any]:
        step = self.current
        return {
            "run_id": self.record.id,
            "runbook": self.runbook.id,
            "labels": dict(self.record.labels),
            "status": self.record.status,
            "current_step": step.id,
            "path": list(self.record.path),
            "conclusion": (
                {"cause": self.record.cause, "summary": self.record.summary}
                if self.concluded
                else None
            ),
            "evidence": [e.as_dict() for e in self.evidence],
        }


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


class Triage:
    """Runbooks, the store and the metrics source, for the screens and pre-triage."""

    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        metrics: MetricsAdapter | None,
        *,
        actor: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.catalog = catalog
        self.clock = clock
        """Stamps evidence and tells its age (the app's clock)."""
        self.runbooks = catalog.runbooks
        self.store = store
        self.metrics = metrics
        self.actor = actor or default_actor()
        #: The firings pre-triage has started on (fingerprint, startsAt, runbook id).
        self._started: set[tuple[str, float, str]] = set()
        #: Walks pre-triage is advancing now, by run id: set when it is done.
        self._advancing: dict[str, asyncio.Event] = {}

    def existing_walk(
        self,
        runbook: Runbook,
        alert: AlertRecord,
        incident: int | None = None,
        *,
        store: Store | None = None,
    ) -> RunRecord | None:
        """The walk of ``runbook`` that triages this firing of ``alert``, if there is one.

        A walk belongs to one incident (one firing of the alert group): the walk filed
        under ``incident``, else the one started on this very firing (same fingerprint
        and ``startsAt``). A walk filed under another incident, or one of an earlier
        firing, is never resumed; nor is a concluded walk of an earlier firing of the
        same incident (the alert fired again after the walk ended).
        """
        store = self.store if store is None else store
        firing_at = alert.starts_at.timestamp()
        found = store.runs(alert_fingerprint=alert.fingerprint, runbook_id=runbook.id)
        if incident is not None:
            found += [
                r
                for r in store.incident_runs(incident, ())
                if r.runbook_id == runbook.id and r.alert_fingerprint != alert.fingerprint
            ]

        def ours(run: RunRecord) -> bool:
            if run.incident is not None and incident is not None:
                same = run.incident == incident
            elif run.firing_at is not None:
                same = run.belongs_to(firing_at)
            else:  # kept by a store from before walks knew their firing
                same = run.created_at >= firing_at - RUN_GRACE
            if not same or run.status != "concluded" or run.firing_at is None:
                return same
            return run.firing_at >= firing_at - 1e-3  # not ended with an earlier firing

        mine = [r for r in found if ours(r)]
        return max(mine, key=lambda r: r.created_at) if mine else None

    def firing_checks(
        self, alert: AlertRecord, incident: int | None = None
    ) -> list[tuple[str, list[Evidence]]]:
        """The checks each runbook's walk of this firing of ``alert`` has run, by runbook
        id. Read with a connection of its own, so a screen can ask from a worker
        thread while the event loop goes on using the triage's. Raises StoreError."""
        store = Store(self.store.path)
        try:
            found = []
            for runbook in self.catalog.for_alert(alert.labels, alert.annotations):
                run = self.existing_walk(runbook, alert, incident, store=store)
                if run is None:
                    continue
                checks = [e for e in store.evidence(run.id) if e.kind == "check"]
                if checks:
                    found.append((runbook.id, checks))
            return found
        finally:
            store.close()

    def walk_for(self, runbook: Runbook, alert: AlertRecord, incident: int | None = None) -> Walk:
        """This firing's walk of this runbook: resumed if it has one, else started.

        ``incident`` is the incident the alert is filed under, when known; a walk
        started before it was known is filed under it now.
        """
        record = self.existing_walk(runbook, alert, incident)
        if record is not None:
            if incident is not None and record.incident is None:
                self.store.link_run(record.id, incident)
                record = self.store.run(record.id)
            return Walk(
                runbook, record, self.store, self.metrics, actor=self.actor, clock=self.clock
            )
        return Walk.start(
            runbook,
            alert.labels,
            self.store,
            self.metrics,
            alert_fingerprint=alert.fingerprint,
            actor=self.actor,
            incident=incident,
            firing_at=alert.starts_at.timestamp(),
            clock=self.clock,
        )

    async def pretriage(
        self, alert: AlertRecord, runbook: Runbook, incident: int | None = None
    ) -> Walk | None:
        """When a page arrives: run its runbook's checks up to the first question.

        Runs once per firing and runbook, and never for a firing that already has a
        walk (a restart does not re-run it). Returns the walk it advanced, if any.
        """
        key = (alert.fingerprint, alert.starts_at.timestamp(), runbook.id)
        if key in self._started:
            return None
        self._started.add(key)
        if self.existing_walk(runbook, alert, incident) is not None:
            return None
        try:
            walk = Walk.start(
                runbook,
                alert.labels,
                self.store,
                self.metrics,
                alert_fingerprint=alert.fingerprint,
                actor=PRETRIAGE_ACTOR,
                incident=incident,
                firing_at=alert.starts_at.timestamp(),
                clock=self.clock,
            )
        except WalkError:
            return None
        done = self._advancing[walk.record.id] = asyncio.Event()
        try:
            await walk.advance(actor=PRETRIAGE_ACTOR)
        finally:
            del self._advancing[walk.record.id]
            done.set()
        return walk

    def forget_firings_but(self, firing: set[tuple[str, float]]) -> None:
        """Keep pre-triage's record of the ``firing`` firings (fingerprint, startsAt)
        alone: what it holds follows the alerts firing now, not every page since the
        start. A forgotten firing seen again finds its walk in the store and starts
        none."""
        self._started = {key for key in self._started if key[:2] in firing}

    async def settled(self, walk: Walk) -> bool:
        """Wait until pre-triage is done with ``walk``'s run, if it is advancing it now,
        and re-read the run: a responder who opens the walk meanwhile (``t`` on a page
        that has just arrived) takes it from where pre-triage left it, instead of
        running the same checks a second time. True when it waited."""
        pending = self._advancing.get(walk.record.id)
        if pending is None:
            return False
        await pending.wait()
        walk.reload()
        return True


def open_triage(
    config: Config,
    metrics: MetricsAdapter | None,
    *,
    clock: Callable[[], float] = time.time,
    actor: str | None = None,
) -> Triage:
    """Load the runbooks and open the store the config names. Raises StoreError.

    The walks' evidence names the console's actor (``actor``, else the config's and
    the environment's, see :func:`console.config.actor.resolve_actor`), as the audit does.
    """
    from console.config.actor import resolve_actor

    catalog = Catalog.load(runbook_dirs(config))
    store = Store(store_path(config))
    return Triage(catalog, store, metrics, clock=clock, actor=resolve_actor(config, actor))
