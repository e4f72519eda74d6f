"""The one flow every mitigation takes, whoever starts it: the dashboard's keys, a
runbook's action step, or an action command.

    settle()   actions left in doubt by a console that died, settled first (a
               command; the dashboard settles them when it opens its audit log)
    propose()  plan (a rollback records the alias it reads in the alias history
               first), decide the incident it is filed under and the SLI that judges it
    (the front end shows the proposal and asks)
    apply()    the executor's lock, audited intent, compare, apply, read back and
               audited result; filed under the incident. Applied but not read back
               as planned is not a success: nothing is watched, and it says so.
    watch()    the SLI that paged, watched for the window; the verdict audited and
               kept in the incident's timeline; the undo planned when it did not
               recover.

A front end only shows what each step returns and asks what it must: a fix made
here holds for every front end. Every failure that stops the flow is a
:class:`MitigationStopped` with a :class:`Stop` saying which kind it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import AdapterError
from console.actions.contracts import Action, ActionError, Plan, ReadOnlyError
from console.actions.executor import Executor, Outcome, Report
from console.actions.kinds import build_action
from console.actions.origin import Origin
from console.actions.reconcile import Reconciliation, reconcile_in_doubt
from console.actions.verify import ProgressCallback, Recovery, WatchTarget
from console.audit.chain import AuditError
from console.incidents.filing import Filing
from console.incidents.model import IncidentError
from console.session import Session


class Stop(enum.Enum):
    """Why a mitigation stopped before it was applied (or could not be audited)."""

    REFUSED = "refused"
    """Read-only mode."""
    CANNOT_PLAN = "cannot plan"
    """The action, its parameters or the incident named are wrong."""
    UNREACHABLE = "unreachable"
    """A source failed while planning."""
    AUDIT = "audit"
    """The audit log cannot be written: nothing was run."""


class MitigationStopped(Exception):
    """The flow stopped: ``stop`` says how, the message says why (redacted)."""

    def __init__(self, stop: Stop, message: str) -> None:
        super().__init__(message)
        self.stop = stop


@dataclass(frozen=True)
class Proposal:
    """What the responder confirms: the plan, where it is filed, what judges it."""

    action: Action
    plan: Plan
    origin: Origin
    filing: Filing
    target: WatchTarget
    watches: bool
    """Whether the SLI is watched after it applies (the plan asks, and not
    ``--no-verify``)."""


async def settle(space: Session) -> list[Reconciliation]:
    """Settle the actions left in doubt (an intent with no result: a console died
    mid-action) by reading the world, each verdict audited; what was settled. Before a
    command plans, so what it says of them is said even if the plan then fails."""
    try:
        return await reconcile_in_doubt(space.ctx, space.audit_log())
    except AuditError as exc:
        raise MitigationStopped(Stop.AUDIT, f"nothing was run: {exc}") from exc


async def propose(
    space: Session,
    name: str,
    params: Mapping[str, Any],
    origin: Origin | None = None,
    *,
    verify: bool = True,
) -> Proposal:
    """Plan ``name`` with ``params`` and decide its filing and its SLI."""
    ctx = space.ctx
    if ctx.read_only:
        raise MitigationStopped(Stop.REFUSED, "read-only mode: mitigations are disabled")
    try:
        action = build_action(ctx, name, params)
        plan = await action.plan()
        origin = origin or Origin()
        filing = await asyncio.to_thread(space.filing, plan.model, origin)
    except ReadOnlyError as exc:
        raise MitigationStopped(Stop.REFUSED, str(exc)) from exc
    except (ActionError, IncidentError) as exc:
        raise MitigationStopped(Stop.CANNOT_PLAN, str(exc)) from exc
    except AdapterError as exc:
        raise MitigationStopped(Stop.UNREACHABLE, ctx.redact(f"cannot plan: {exc}")) from exc
    except AuditError as exc:
        raise MitigationStopped(Stop.AUDIT, f"nothing was run: {exc}") from exc
    return Proposal(
        action,
        plan,
        origin,
        filing,
        space.watch_target(filing, origin),
        watches=plan.watch_sli and verify,
    )


class Result(enum.Enum):
    """How an applied (or not applied) mitigation ended, before any SLI is watched."""

    APPLIED = "applied"
    """Applied, and the state read back is the planned one."""
    UNCONFIRMED = "unconfirmed"
    """Applied, but the state could not be read back: look before acting again."""
    REFUSED = "refused"
    CONFLICT = "conflict"
    FAILED = "failed"
    DRY_RUN = "dry run"


UNCONFIRMED = "the state read back is not the planned one: look before acting again"


@dataclass(frozen=True)
class Applied:
    """An executor's report, judged the same way for every front end."""

    proposal: Proposal
    report: Report
    executor: Executor

    @property
    def result(self) -> Result:
        outcome = self.report.outcome
        if outcome is Outcome.APPLIED:
            return Result.APPLIED if self.report.confirmed else Result.UNCONFIRMED
        return {
            Outcome.REFUSED: Result.REFUSED,
            Outcome.CONFLICT: Result.CONFLICT,
            Outcome.DRY_RUN: Result.DRY_RUN,
        }.get(outcome, Result.FAILED)

    @property
    def watches(self) -> bool:
        """The SLI is watched only after a change applied and read back as planned."""
        return self.result is Result.APPLIED and self.proposal.watches


async def apply(
    space: Session,
    proposal: Proposal,
    *,
    on_wait: Callable[[str], None] | None = None,
    unattended: bool = False,
    dry_run: bool = False,
) -> Applied:
    """Run the proposal once (the executor's lock makes it once across consoles) and
    file it under its incident. An ``unattended`` run (``--yes``: no person read the
    plan) refuses a plan with a caution."""
    incident = proposal.filing.incident
    try:
        executor = Executor(space.ctx, space.audit_log(), incident=incident)
        report = await executor.run(
            proposal.action, proposal.plan, dry_run=dry_run, on_wait=on_wait, unattended=unattended
        )
    except ReadOnlyError as exc:
        raise MitigationStopped(Stop.REFUSED, str(exc)) from exc
    except AuditError as exc:
        raise MitigationStopped(Stop.AUDIT, f"nothing was run: {exc}") from exc
    if not dry_run:
        await space.action_done(incident, report)
    return Applied(proposal, report, executor)


@dataclass(frozen=True)
class Verdict:
    """Whether the SLI that paged came back, and the undo when it did not."""

    recovery: Recovery
    warning: str | None
    """Why the verdict could not be audited, if it could not."""
    undo: tuple[Action, Plan] | None


async def watch(
    space: Session, applied: Applied, on_read: ProgressCallback | None = None
) -> Verdict:
    """Watch the proposal's SLI, audit the verdict and keep it in the incident's
    timeline; plan the undo when it did not recover."""
    proposal = applied.proposal
    recovery, warning = await space.verify(
        applied.executor,
        proposal.action,
        applied.report,
        proposal.filing.incident,
        proposal.target,
        on_read=on_read,
    )
    undo = None if recovery.recovered else await undo_of(applied)
    return Verdict(recovery, warning, undo)


async def undo_of(applied: Applied) -> tuple[Action, Plan] | None:
    """The action that puts back what ``applied`` changed, planned now; None when it
    changed nothing, when what it changed could not be read back (an undo planned on
    a state nobody knows could be the wrong one), or when its undo cannot be planned."""
    if applied.result is not Result.APPLIED:
        return None
    undo = applied.proposal.action.undo(applied.proposal.plan, applied.report.result)
    if undo is None:
        return None
    with contextlib.suppress(ActionError, AdapterError):
        return undo, await undo.plan()
    return None
