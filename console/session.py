"""What a front end opens once and closes once: the sources, the store's parts
(incidents, runbook walks, alias history, target locks) and the audit log.

Every front end holds one :class:`Session`: the dashboard opens its own in a worker
thread, after the first paint; each command opens one for its run. The session owns
what it opens and closes each part once; what it was lent (the dashboard's adapters,
which its poller closes) it uses and leaves open.

Two ways to open one:

* :func:`open_session_sync` (and :func:`open_session`) for a front end that acts: the
  audit log is created if it is missing, because nothing may run unaudited;
* :func:`open_reading` for one that only reads (``mlconsole incident``, the export):
  the audit log is read if it exists and never created.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

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

if TYPE_CHECKING:
    from collections.abc import Callable

    from console.incidents.model import Incident
    from console.incidents.timeline import Event
    from console.triage.store import Store

#: How a session opens the audit log: ``create`` it if missing (a front end that
#: acts), or read it ``if_present`` (one that only reads; never created).
AuditMode = Literal["create", "if_present"]


@dataclass(eq=False)
class Session:
    """The stores and sources one front end works with, opened once, closed once."""

    ctx: ActionContext
    audit: AuditLog | None
    """None when it could not be opened (:attr:`audit_problem` says why), or, for a
    reading session, when there is none yet."""
    history: AliasHistory | None
    owns_adapters: bool = True
    warnings: list[str] = field(default_factory=list)
    incidents: IncidentBook | None = None
    """Where actions are filed (see :meth:`filing`), and every incident read."""
    walks: Store | None = None
    """The runbook walks and their evidence (the timeline's ``runbook.*`` events)."""
    audit_problem: str | None = None
    """Why the audit log is not open although it exists or was needed: no mitigation
    runs, and the timeline leaves the actions out (the front end says so)."""
    audit_mode: AuditMode = "create"
    _closed: bool = False
    _audit_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def config(self) -> Config:
        return self.ctx.config

    @property
    def book(self) -> IncidentBook:
        """The incidents, for a front end that must have them (a reading session
        always does). Raises IncidentError when the store could not be opened."""
        if self.incidents is None:
            raise IncidentError("the incidents cannot be read: the store is not open")
        return self.incidents

    def audit_log(self) -> AuditLog:
        """The audit log, for what must be audited. Raises AuditError when it is not
        open: nothing may run unaudited."""
        if self.audit is None:
            raise AuditError(
                self.audit_problem or f"the audit log {audit_path(self.config)} is not open"
            )
        return self.audit

    def read_audit(self) -> AuditLog | None:
        """The audit log to read actions from: a reading session opens it once another
        console has created it."""
        if self.audit is None and self.audit_mode == "if_present" and not self._closed:
            with self._audit_lock:
                if self.audit is None and self.audit_problem is None:
                    self.audit, self.audit_problem = _audit_if_present(self.config)
        return self.audit

    def timeline(self, incident: Incident) -> list[Event]:
        """Everything that happened in ``incident``, ordered: its events, its runbook
        walks' evidence and its actions in the audit log."""
        from console.incidents.assembly import timeline

        return timeline(incident, self.book, store=self.walks, audit=self.read_audit())

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
        """Close what the session opened, each part once (a second call does nothing);
        lent adapters stay open for their owner."""
        if self._closed:
            return
        self._closed = True
        if self.owns_adapters:
            for adapter in self.ctx.adapters.values():
                with contextlib.suppress(Exception):
                    await adapter.aclose()
        self.close_stores()

    def close_stores(self) -> None:
        """Close the store's parts and the audit log (the adapters are :meth:`close`'s)."""
        self._closed = True
        parts: list[object] = [self.audit, self.ctx.locks, self.history, self.incidents, self.walks]
        self.audit = None
        for part in parts:
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()  # type: ignore[attr-defined]


def open_session_sync(
    config: Config,
    *,
    actor: str | None = None,
    read_only: bool = False,
    adapters: Mapping[str, Adapter] | None = None,
    load_errors: Mapping[str, str] | None = None,
    clock: Callable[[], float] | None = None,
    audit_required: bool = True,
) -> Session:
    """A session for a front end that acts. The audit log is created if it is missing;
    if it cannot be opened, AuditError is raised when ``audit_required`` (nothing may
    run), else the session opens without it and :attr:`Session.audit_problem` says why
    (the dashboard still shows and files incidents). ``adapters``, when given, are the
    caller's: used, never closed. The store's other parts are each opened if they can
    be; what could not be is said in :attr:`Session.warnings`."""
    audit: AuditLog | None = None
    problem: str | None = None
    try:
        audit = AuditLog(audit_path(config))
    except AuditError as exc:
        if audit_required:
            raise
        problem = str(exc)
    owns = adapters is None
    if adapters is None:
        from console.sources.build import build_adapters

        adapters, load_errors = build_adapters(config)
    warnings: list[str] = []
    try:
        history: AliasHistory | None = AliasHistory(store_path(config))
    except HistoryError as exc:
        history = None
        warnings.append(f"{exc}; rollbacks fall back to the next lower version")
    incidents: IncidentBook | None = None
    try:
        incidents = _book(config, clock)
    except IncidentError as exc:
        warnings.append(f"{exc}; actions are not filed under incidents")
    walks = _walks(config, warnings)
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
    return Session(
        ctx,
        audit,
        history,
        owns_adapters=owns,
        warnings=warnings,
        incidents=incidents,
        walks=walks,
        audit_problem=problem,
    )


async def open_session(config: Config, *, actor: str | None = None) -> Session:
    """:func:`open_session_sync` in a thread (its files never hold the event loop)."""
    return await asyncio.to_thread(open_session_sync, config, actor=actor)


def open_reading(
    config: Config,
    *,
    actor: str | None = None,
    adapters: Mapping[str, Adapter] | None = None,
    clock: Callable[[], float] | None = None,
) -> Session:
    """A session for a front end that reads incidents and writes only to them (ack,
    note, resolve, export): the incidents and the walks must open (IncidentError or
    StoreError says why not); the audit log is read if it exists, never created; no
    source is built unless ``adapters`` are lent."""
    book = _book(config, clock)
    try:
        from console.triage.store import Store

        walks = Store(store_path(config))
    except BaseException:
        book.close()
        raise
    audit, problem = _audit_if_present(config)
    ctx = ActionContext(
        config=config,
        adapters=adapters or {},
        actor=resolve_actor(config, actor),
        read_only=True,
    )
    return Session(
        ctx,
        audit,
        None,
        owns_adapters=False,
        incidents=book,
        walks=walks,
        audit_problem=problem,
        audit_mode="if_present",
    )


def _book(config: Config, clock: Callable[[], float] | None) -> IncidentBook:
    path = store_path(config)
    return IncidentBook(path) if clock is None else IncidentBook(path, clock=clock)


def _walks(config: Config, warnings: list[str]) -> Store | None:
    from console.triage.store import Store, StoreError

    try:
        return Store(store_path(config))
    except StoreError as exc:
        warnings.append(f"{exc}; runbook walks are left out of timelines")
        return None


def _audit_if_present(config: Config) -> tuple[AuditLog | None, str | None]:
    """The audit log if the file exists, or why it cannot be read (its actions are
    then left out of timelines)."""
    path = audit_path(config)
    if not path.exists():
        return None, None
    try:
        return AuditLog(path), None
    except AuditError as exc:
        return None, f"{exc}; actions are left out"


__all__ = ["AuditError", "Session", "open_reading", "open_session", "open_session_sync"]
