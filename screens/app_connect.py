"""How the app connects, after its first paint: the sources, the session (the store's
parts and the audit log) and the runbooks opened in a thread, actions left in doubt
reconciled, and the poller started, its snapshots posted to the app."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.message import Message

from adapters.base import MetricsAdapter
from console.render import fitting
from console.sources.poller import Poller
from console.sources.snapshot import Snapshot
from screens.app_incidents import IncidentsDesk

if TYPE_CHECKING:
    from console.actions.reconcile import Reconciliation
    from console.audit.chain import AuditEntry
    from console.session import Session


class SnapshotUpdated(Message):
    """A new snapshot is out. Only the newest matters, so a queued one is replaced."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotUpdated)


class Connecting(IncidentsDesk):
    """Opening what the app reads and acts through, once, off the UI's loop."""

    # Set by the app (screens.app.MLConsoleApp.__init__).
    actor: str | None
    read_only: bool
    actions_error: str | None
    reconciled: list[Reconciliation]
    widths: fitting.WidthBook
    _owns_triage: bool
    _poller_factory: Callable[[], Poller] | None

    def _connect(self) -> None:
        """After the first paint: open the sources, the store and the audit log in a
        thread, so their imports and files never hold the first frame back."""
        work: Callable[[], None]
        if self.poller is not None:
            poller = self.poller
            work = functools.partial(self._open_session, poller)
        elif self._poller_factory is not None:
            work = self._build_poller
        else:  # snapshots come from the caller; incidents still live in the store
            work = self._open_incidents
        self.run_worker(
            work,
            thread=True,
            group="connect",
            exit_on_error=False,
            name="connect",
            description="open the sources, the store and the audit log",
        )

    def _build_poller(self) -> None:
        """In a thread: import and construct the adapters, then start polling."""
        assert self._poller_factory is not None
        poller = self._poller_factory()
        try:
            self._open_session(poller)
        finally:  # the dashboard must come alive whatever the audit log did
            if self.triage is None:
                self._open_triage(poller)
            self.call_from_thread(self._start_poller, poller)

    def _open_triage(self, poller: Poller) -> None:
        """In a thread: the runbooks, walking on the session's store (one connection
        for the front end); without a session, on a store of the triage's own."""
        from console.triage.store import StoreError
        from console.triage.triage import open_triage

        metrics = next((a for a in poller.adapters.values() if isinstance(a, MetricsAdapter)), None)
        walks = self.session.walks if self.session is not None else None
        try:
            self.triage = open_triage(
                self.config, metrics, clock=self.clock, actor=self.actor, store=walks
            )
            self._owns_triage = walks is None
        except StoreError as exc:
            self.call_from_thread(
                self.notify, f"Runbooks unavailable: {exc}", severity="error", timeout=30
            )

    def _open_incidents(self) -> None:
        """In a thread, when snapshots come from the caller: a session that reads and
        files incidents (the store's incidents and walks, the audit log if any)."""
        from console.incidents.model import IncidentError
        from console.session import open_reading
        from console.triage.store import StoreError

        if self.session is not None:
            return
        try:
            space = open_reading(self.config, actor=self.actor, clock=self.clock)
        except (IncidentError, StoreError) as exc:
            self.call_from_thread(
                self.notify, f"Incidents unavailable: {exc}", severity="error", timeout=30
            )
            return
        self._opened(space)

    def _opened(self, space: Session) -> None:
        """In a thread: keep the session just opened (unless one was given meanwhile)
        and read its open incidents."""
        from console.incidents.model import IncidentError

        if self.session is not None:  # a test gave one meanwhile: it is kept
            space.close_stores()
            return
        self.session = space
        for warning in space.warnings:
            self.call_from_thread(self.notify, warning, severity="warning", timeout=15)
        book = space.incidents
        if book is None:
            return
        try:
            self.open_incidents = book.open_incidents()
        except IncidentError as exc:
            self.call_from_thread(
                self.notify, f"Incidents unavailable: {exc}", severity="error", timeout=30
            )
            return
        self.call_from_thread(self.incidents_changed)  # the dashboard may have painted already

    def _open_session(self, poller: Poller) -> None:
        """In a thread: open the session on the poller's sources; settle in-doubt
        actions."""
        from console.audit.chain import AuditError
        from console.session import open_session_sync
        from console.sources.alias_history import HistoryError

        space = open_session_sync(
            self.config,
            actor=self.actor,
            read_only=self.read_only,
            adapters=poller.adapters,
            load_errors=poller.load_errors,
            clock=self.clock,
            audit_required=False,
        )
        if space.audit is None:
            self.actions_error = f"mitigations disabled: {space.audit_problem}"
            if not self.read_only:
                self.call_from_thread(self.notify, self.actions_error, severity="error", timeout=30)
        poller.history = space.history
        if space.history is not None:
            try:  # the models of earlier sessions stay listed while no source answers
                seen = space.history.models(self.config.actions.alias)
            except HistoryError as exc:
                self.call_from_thread(self.notify, str(exc), severity="warning", timeout=15)
            else:
                self.call_from_thread(poller.remember, seen)
        self._opened(space)
        if space.audit is None or self.session is not space:
            return
        try:
            doubtful = space.audit.in_doubt()
        except AuditError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error", timeout=30)
            return
        if doubtful:
            self.call_from_thread(
                self.run_worker,
                self._reconcile(space, doubtful),
                group="reconcile",
                exit_on_error=False,
                name="reconcile",
                description="reconcile actions in doubt",
            )

    async def _reconcile(self, space: Session, doubtful: list[AuditEntry]) -> None:
        from console.actions.reconcile import reconcile_in_doubt

        self.notify("Actions in doubt from an earlier session: reconciling…", timeout=5)
        self.reconciled = await reconcile_in_doubt(space.ctx, space.audit_log(), doubtful=doubtful)
        for item in self.reconciled:
            self.notify(
                item.line(),
                title="Action was in doubt",
                severity="warning" if item.error or item.verdict == "unknown" else "information",
                timeout=60,
            )

    def _start_poller(self, poller: Poller) -> None:
        self.poller = poller
        poller.on_snapshot = self._publish
        poller.on_built = self.widths.measure  # measured before the dashboard asks
        poller.give_way = self.widths.give_way = self.keys_first.give_way
        for adapter in poller.adapters.values():
            adapter.give_way = self.keys_first.give_way
        poller.start()

    def _publish(self, snapshot: Snapshot) -> None:
        self.post_message(SnapshotUpdated(snapshot))
