"""Running an action exactly once: lock, audited intent, compare, apply, read back,
audited result."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from adapters.base import (
    AdapterError,
)
from console.actions.contracts import (
    Action,
    ActionContext,
    ActionError,
    ConflictError,
    Plan,
    ReadOnlyError,
)
from console.actions.lease import action_lease, this_process
from console.actions.locks import LockBusy, LockError
from console.actions.verify import Recovery
from console.audit.chain import AuditEntry, AuditError
from console.audit.log import AuditLog


class Outcome(StrEnum):
    DRY_RUN = "dry-run"
    APPLIED = "applied"
    REFUSED = "refused"
    CONFLICT = "conflict"
    """Applied, but the state read back is another writer's: not a success."""
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Report:
    """What happened to one action, for the screen, the CLI and the timeline."""

    outcome: Outcome
    plan: Plan
    message: str
    intent_seq: int | None = None
    result_seq: int | None = None
    result: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    confirmed: bool | None = None
    """Whether the state read back after apply is the planned one."""
    audit_warning: str | None = None
    """Set when the result could not be written: the action will show as in doubt."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": str(self.outcome),
            "message": self.message,
            "plan": self.plan.as_dict(),
            "intent_seq": self.intent_seq,
            "result_seq": self.result_seq,
            "result": dict(self.result),
            "error": self.error,
            "confirmed": self.confirmed,
            "audit_warning": self.audit_warning,
        }


class Executor:
    """Runs actions the one audited way."""

    def __init__(
        self, ctx: ActionContext, audit: AuditLog | None, *, incident: str | None = None
    ) -> None:
        self.ctx = ctx
        self.audit = audit
        self.incident = incident

    async def _write(self, kind: str, action: Action, plan: Plan, **fields: Any) -> AuditEntry:
        """:meth:`_append` in a thread: a durable write (synced to disk) that may wait
        for another console's (SQLite's busy timeout), never on the event loop."""
        return await asyncio.to_thread(self._append, kind, action, plan, **fields)

    def _append(self, kind: str, action: Action, plan: Plan, **fields: Any) -> AuditEntry:
        if self.audit is None:
            raise AuditError("no audit log is open")
        return self.audit.append(
            kind,
            actor=self.ctx.actor,
            action=action.name,
            params=plan.params,
            incident=self.incident,
            plan=plan.as_dict(),
            **fields,
        )

    async def run(
        self,
        action: Action,
        plan: Plan,
        *,
        dry_run: bool = False,
        on_wait: Callable[[str], None] | None = None,
        unattended: bool = False,
    ) -> Report:
        """Run a planned action. Raises ReadOnlyError, and AuditError when the intent
        (or a refusal for want of the lock) cannot be written (then nothing ran).

        The target's lock is held from the check through the read-back, so two
        consoles never both apply one plan; ``on_wait`` hears who holds it, if
        someone does, while this waits for it (up to the action lease). An
        ``unattended`` run (no person read the plan) refuses a plan with a caution."""
        if self.ctx.read_only:
            raise ReadOnlyError(f"read-only mode: {plan.summary()} was not applied")
        if dry_run:
            return Report(Outcome.DRY_RUN, plan, f"dry run: {plan.summary()} (nothing changed)")
        if unattended and plan.caution:
            message = self.ctx.redact(
                f"refused: {plan.summary()}: {plan.caution}. An unattended run does not roll "
                "back further: name the version (--to VERSION) or confirm the plan on a "
                "terminal; nothing was changed"
            )
            seq = self._append("refusal", action, plan, error=message).seq
            return Report(Outcome.REFUSED, plan, message, None, seq, error=message)
        locks = self.ctx.locks
        if locks is None:
            return await self._run_locked(action, plan)
        target = action.lock_target(plan)
        lease = action_lease(self.ctx.config)
        try:
            held = await locks.acquire(
                target,
                f"{self.ctx.actor} (pid {os.getpid()} on {socket.gethostname()})",
                lease,
                wait=lease,
                on_wait=None
                if on_wait is None
                else lambda busy: on_wait(f"waiting for the lock: {busy.describe()}"),
            )
        except (LockBusy, LockError) as exc:
            why = "busy" if isinstance(exc, LockBusy) else "cannot be taken"
            message = self.ctx.redact(
                f"refused: {plan.summary()}: the lock on {target} {why}: {exc}; nothing was changed"
            )
            seq = (await self._write("refusal", action, plan, error=message)).seq
            return Report(Outcome.REFUSED, plan, message, None, seq, error=message)
        try:
            return await self._run_locked(action, plan)
        finally:
            with contextlib.suppress(LockError):  # a lease left behind runs out by itself
                await asyncio.to_thread(locks.release, held)  # the store may make it wait

    async def _run_locked(self, action: Action, plan: Plan) -> Report:
        # The intent names the process, so a second console never reconciles an action
        # that is still running (see reconcile_in_doubt).
        intent = await self._write("intent", action, plan, process=this_process())
        try:
            await action.check(plan)
        except ConflictError as exc:
            message = self.ctx.redact(str(exc))
            seq = await self._closing("refusal", action, plan, intent, error=message)
            return Report(Outcome.REFUSED, plan, message, intent.seq, seq, error=message)
        except (AdapterError, ActionError) as exc:
            message = self.ctx.redact(f"not applied: cannot check the current state: {exc}")
            seq = await self._closing(
                "result", action, plan, intent, result={"applied": False}, error=message
            )
            return Report(Outcome.FAILED, plan, message, intent.seq, seq, error=message)
        try:
            result = await action.apply(plan, intent)
        except (AdapterError, ActionError) as exc:
            return await self._failed_apply(action, plan, intent, exc)
        try:
            confirmed, observed = await action.read_back(plan, result)
        except (AdapterError, ActionError) as exc:
            confirmed, observed = False, {"error": self.ctx.redact(str(exc))}
        record = {**result, "applied": True, "read_back": observed, "confirmed": confirmed}
        outcome = Outcome.APPLIED
        message = f"applied: {plan.summary()}" + (
            "" if confirmed else f" (but the state read back is {observed})"
        )
        if not confirmed and "error" not in observed:
            # Under the lock no console moves it: a writer outside the console did.
            outcome = Outcome.CONFLICT
            record["conflict"] = True
            message = self.ctx.redact(
                f"CONFLICT: {plan.summary()} was applied, but the state read back is "
                f"{observed}, not the planned {dict(plan.after)}: something outside the "
                "console changed it between apply and read-back. Look before acting again"
            )
        warning = None
        seq = None
        try:
            seq = (
                await self._write("result", action, plan, result=record, intent_seq=intent.seq)
            ).seq
        except AuditError as exc:
            warning = (
                f"the result could not be written to the audit log ({exc}); "
                "it will show as in doubt and be reconciled at the next start"
            )
        return Report(
            outcome,
            plan,
            message,
            intent.seq,
            seq,
            result=record,
            confirmed=confirmed,
            audit_warning=warning,
        )

    async def _failed_apply(
        self, action: Action, plan: Plan, intent: AuditEntry, exc: Exception
    ) -> Report:
        """Apply raised: find out whether the change happened anyway, and record it."""
        error = self.ctx.redact(str(exc))
        try:
            verdict, observed = await action.reconcile(plan.as_dict(), intent)
        except (AdapterError, ActionError) as read_exc:
            verdict, observed = "unknown", {"error": self.ctx.redact(str(read_exc))}
        record = {"applied": verdict == "applied", "state": verdict, "read_back": observed}
        message = f"failed: {error}; afterwards the change is {verdict}"
        if verdict == "applied":
            message += " (it took effect: watch the model, and undo it if needed)"
        warning = None
        seq = None
        try:
            written = await self._write(
                "result", action, plan, result=record, error=error, intent_seq=intent.seq
            )
            seq = written.seq
        except AuditError as audit_exc:
            warning = f"the failure could not be written to the audit log ({audit_exc})"
        return Report(
            Outcome.FAILED,
            plan,
            message,
            intent.seq,
            seq,
            result=record,
            error=error,
            audit_warning=warning,
        )

    async def _closing(
        self, kind: str, action: Action, plan: Plan, intent: AuditEntry, **fields: Any
    ) -> int | None:
        try:
            return (await self._write(kind, action, plan, intent_seq=intent.seq, **fields)).seq
        except AuditError:
            return None

    def record_verification(self, action: Action, report: Report, recovery: Recovery) -> None:
        """Audit what the SLI did after the action (raises AuditError)."""
        self._append(
            "verify",
            action,
            report.plan,
            result=recovery.as_dict(),
            intent_seq=report.intent_seq,
        )
