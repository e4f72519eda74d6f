"""Everything an action needs, opened together: sources, audit log, alias history.

The dashboard opens one at start-up (in a worker thread, off the first paint);
each CLI action command opens its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from adapters.base import Adapter
from console.actions.contracts import Action, ActionContext
from console.actions.executor import Executor, Report
from console.actions.locks import LockError, SqliteTargetLock, TargetLock, UnavailableLock
from console.actions.origin import Origin
from console.actions.verify import (
    ProgressCallback,
    Recovery,
    WatchTarget,
    watch_recovery,
    watch_target,
)
from console.audit.chain import AuditError
from console.audit.log import AuditLog
from console.config.actor import resolve_actor
from console.config.models import Config
from console.config.paths import audit_path, store_path
from console.incidents.book import IncidentBook
from console.incidents.filing import NO_INCIDENT, Filing, decide_filing
from console.incidents.model import IncidentError
from console.sources.alias_history import AliasHistory, HistoryError


@dataclass
class Workspace:
    ctx: ActionContext
    audit: AuditLog
    history: AliasHistory | None
    owns_adapters: bool = True
    warnings: list[str] = field(default_factory=list)
    incidents: IncidentBook | None = None
    """Where actions are filed (see :meth:`filing`)."""
    owns_incidents: bool = True
    """False when the caller's (the dashboard's) book was lent: it closes it."""

    def filing(self, model: str, origin: Origin) -> Filing:
        """The incident an action on ``model`` taken from ``origin`` is filed under
        (:func:`console.incidents.filing.decide_filing`). Raises IncidentError when
        ``origin.incident`` names no incident, or one of another model."""
        book = self.incidents
        wanted = origin.incident
        if wanted and wanted.strip().lower() not in NO_INCIDENT:
            if book is None:
                raise IncidentError(f"cannot file under {wanted}: the store is not open")
            named = book.find(wanted)
            return decide_filing(
                (), model, origin, model_label=self.ctx.config.model_label, named=named
            )
        try:
            open_now = book.open_incidents() if book is not None else ()
        except IncidentError as exc:
            return Filing(None, f"the incidents cannot be read ({exc})")
        return decide_filing(open_now, model, origin, model_label=self.ctx.config.model_label)

    def watch_target(self, filing: Filing, origin: Origin) -> WatchTarget:
        """The SLI a mitigation filed as ``filing`` is judged on: the one that paged,
        else the runbook step's, else ``actions.verify.sli``."""
        return watch_target(self.ctx.config, paged_sli=filing.paged_sli, step_sli=origin.step_sli)

    async def verify(
        self,
        executor: Executor,
        action: Action,
        report: Report,
        incident: str | None,
        target: WatchTarget,
        on_read: ProgressCallback | None = None,
    ) -> tuple[Recovery, str | None]:
        """Watch ``target`` after an applied action, audit the verdict and keep a
        recovery in the incident's timeline. Returns the verdict and, if the verdict
        could not be audited, why."""
        recovery = await watch_recovery(self.ctx, report.plan.model, target, on_read=on_read)
        warning = None
        try:
            # In a thread: the write may wait for another console's.
            await asyncio.to_thread(executor.record_verification, action, report, recovery)
        except AuditError as exc:
            warning = f"the verdict could not be audited: {exc}"
        self.verified(incident, recovery)
        return recovery, warning

    async def action_done(self, incident: str | None, report: Report) -> None:
        """An action ran under ``incident``: an applied mitigation moves it to
        mitigated, with the SLI read at that moment."""
        from console.incidents.live import after_action

        if self.incidents is not None:
            await after_action(
                self.incidents,
                incident,
                report,
                self.ctx.config,
                dict(self.ctx.adapters),
                actor=self.ctx.actor,
                at=time.time(),
            )

    def verified(self, incident: str | None, recovery: Recovery) -> None:
        """Verification ended: a recovery is kept in the incident's timeline."""
        from console.incidents.live import record_recovery

        if self.incidents is not None:
            record_recovery(self.incidents, incident, recovery, self.ctx.config, at=time.time())

    async def close(self) -> None:
        if self.owns_adapters:
            for adapter in self.ctx.adapters.values():
                with contextlib.suppress(Exception):
                    await adapter.aclose()
        self.audit.close()
        if self.ctx.locks is not None:
            self.ctx.locks.close()
        if self.history is not None:
            self.history.close()
        if self.incidents is not None and self.owns_incidents:
            self.incidents.close()


def open_workspace_sync(
    config: Config,
    *,
    actor: str | None = None,
    read_only: bool = False,
    adapters: Mapping[str, Adapter] | None = None,
    load_errors: Mapping[str, str] | None = None,
    incidents: IncidentBook | None = None,
) -> Workspace:
    """Open the audit log (AuditError if it cannot be: nothing may run) and the rest.
    ``adapters`` and ``incidents``, when given, are the caller's, used and not closed."""
    owns = adapters is None
    if adapters is None:
        from console.sources.build import build_adapters

        adapters, load_errors = build_adapters(config)
    audit = AuditLog(audit_path(config))
    warnings: list[str] = []
    try:
        history: AliasHistory | None = AliasHistory(store_path(config))
    except HistoryError as exc:
        history = None
        warnings.append(f"{exc}; rollbacks fall back to the next lower version")
    lent = incidents is not None
    if incidents is None:
        try:
            incidents = IncidentBook(store_path(config))
        except IncidentError as exc:
            warnings.append(f"{exc}; actions are not filed under incidents")
    locks: TargetLock
    try:
        locks = SqliteTargetLock(store_path(config))
    except LockError as exc:
        # Acting unlocked could apply one plan twice: every action is refused instead.
        locks = UnavailableLock(f"{exc}; no mitigation can run until the store opens")
        warnings.append(str(exc))
    ctx = ActionContext(
        config=config,
        adapters=adapters,
        history=history,
        actor=resolve_actor(config, actor),
        read_only=read_only or config.actions.read_only,
        load_errors=load_errors or {},
        locks=locks,
    )
    return Workspace(
        ctx,
        audit,
        history,
        owns_adapters=owns,
        warnings=warnings,
        incidents=incidents,
        owns_incidents=not lent,
    )


async def open_workspace(config: Config, *, actor: str | None = None) -> Workspace:
    return await asyncio.to_thread(open_workspace_sync, config, actor=actor)


__all__ = ["AuditError", "Workspace", "open_workspace", "open_workspace_sync"]
