"""One walk's state, kept in the store: where it stands, and each move with its evidence.

Every move is written to the store with its evidence (inputs such as the rendered
PromQL, outputs such as the values, the decision, who took it and when) in one
transaction, so a restart resumes exactly there. What each kind of step does is the
walk's own (:class:`console.triage.walk.Walk`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Self

from adapters.base import MetricsAdapter
from console.config.actor import default_actor
from console.triage.runbook import Runbook, Step, TemplateError, render
from console.triage.store import Evidence, RunRecord, Store


class WalkError(Exception):
    """A step cannot be taken: the message says which and why."""


class WalkState:
    """What a walk keeps in the store: its run of the runbook, where it stands, and
    the moves written with their evidence."""

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
    ) -> Self:
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
    ) -> Self:
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
