"""The Textual app and the factory shared by the CLI, the TUI and the tests.

This is the one module of ``console/`` that imports Textual. It wires the
poller to the screens: the poller runs as asyncio tasks in the app's loop,
and each new snapshot reaches the screens as a :class:`SnapshotUpdated`
message. Screens render snapshots; they never wait on the network.
"""

from __future__ import annotations

import functools
import gc
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

if TYPE_CHECKING:
    # The runbook engine and the action path load in the start-up thread, after
    # the first paint.
    from textual.driver import Driver
    from textual.notifications import SeverityLevel

    from console.actions.executor import Report
    from console.actions.reconcile import Reconciliation
    from console.audit.chain import AuditEntry
    from console.incidents.book import IncidentBook
    from console.incidents.model import Incident
    from console.session import Session
    from console.triage.triage import Triage

from adapters.base import Adapter, AlertsAdapter, MetricsAdapter
from adapters.records import AlertRecord
from console import __version__
from console.config.models import Config
from console.keys_first import KeysFirst
from console.render import fitting
from console.sources.build import build_adapters
from console.sources.poller import Poller
from console.sources.snapshot import Health, Snapshot
from console.sources.state import initial_snapshot
from console.text import inert
from screens.front import ActionFinished, Front, IncidentsOpened, IncidentsRead
from screens.work import SaysWorkFailures, WorkFailed

#: First breaches read between two redraws of the screens that show incidents.
BREACHES_PER_REDRAW = 25
#: The collector's first threshold while the console runs (Python's is 700). A refresh
#: at a thousand models makes tens of thousands of objects that live a refresh or two:
#: at 700 they were promoted, and a full collection, which holds every thread for as
#: long as it scans every object (0.2-0.5 s there), ran every second. At 10,000 most
#: die young, and a young collection stays short.
GC_YOUNG_THRESHOLD = 10_000
#: How long a thread holds the interpreter before another may take it, while the
#: console runs (Python's is 5 ms). The poller's state thread applies and surveys
#: thousands of readings; each time the UI loop wakes (a key, a frame, a socket) it
#: waits for the interpreter, up to this long, several times per key.
SWITCH_INTERVAL = 0.001
#: Incidents opened by one sync that each get a toast; more are told in one.
TOASTS_AT_ONCE = 3


def _open_now(book: IncidentBook, before: tuple[Incident, ...]) -> tuple[Incident, ...]:
    """In a thread: the open incidents as the store has them now, or ``before`` itself
    when they are the same. A screen then sees by identity that nothing changed, and
    does not look through hundreds of incidents on every snapshot to find out."""
    now = book.open_incidents()  # the same tuple while the store is unchanged
    return before if now is before or now == before else now


class SnapshotUpdated(Message):
    """A new snapshot is out. Only the newest matters, so a queued one is replaced."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotUpdated)


def watch_keys(keys_first: KeysFirst, driver: Driver) -> None:
    """Tell ``keys_first`` of each key as ``driver`` (Textual's, reading the terminal in
    a thread of its own) sends it to the app, before the app's loop gets to it: a key
    queued behind a frame must not also wait behind a parse."""
    send = driver.send_message

    def announce(message: Message) -> None:
        if isinstance(message, events.Key):
            keys_first.key_in()
        send(message)

    driver.send_message = announce  # type: ignore[method-assign]


REPEAT_QUIET = 30.0
"""Seconds in which the same background failure is said once."""


class MLConsoleApp(SaysWorkFailures, App[int]):
    """mlconsole's terminal UI."""

    TITLE = "mlconsole"
    SUB_TITLE = __version__
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("R", "refresh", "Refresh", show=False),
        # k9s's habit, on every screen; a text box takes ':' as text first.
        Binding("colon", "palette", "Palette", show=False),
    ]

    def __init__(
        self,
        config: Config,
        poller: Poller | Callable[[], Poller] | None,
        *,
        clock: Callable[[], float] | None = None,
        triage: Triage | None = None,
        read_only: bool = False,
        actor: str | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.triage = triage
        #: Whether the triage's store is the app's to close (not the session's, lent).
        self._owns_triage = False
        self.read_only = read_only or config.actions.read_only
        self.actor = actor
        #: What this front end opened once (the sources lent by the poller, the store's
        #: parts, the audit log) and closes once; None until opened, in a thread.
        self.session: Session | None = None
        #: Why no mitigation can run (the audit log could not be opened), if so.
        self.actions_error: str | None = None
        #: Actions applied in this session, newest last.
        self.reports: list[Report] = []
        #: Intents found in doubt at start, and what reconciling them found.
        self.reconciled: list[Reconciliation] = []
        #: The open incidents as last read from the store, for every screen to show.
        self.open_incidents: tuple[Incident, ...] = ()
        self._syncing = False
        #: Incidents opened whose first breach is still to be read, oldest first.
        self._breaches_due: deque[Incident] = deque()
        self._measuring_breaches = False
        self._gc_thresholds = gc.get_threshold()
        self._switch_interval = sys.getswitchinterval()
        #: Actions being applied or verified right now; quitting then asks twice.
        self.applying = 0
        #: Background work that failed (when, what and why), newest last.
        self.work_failures: deque[tuple[float, str]] = deque(maxlen=100)
        #: Each failure said, when it was last said and how often it came since.
        self._failures_said: dict[str, tuple[float, int]] = {}
        self._quit_asked_at = -1e9
        self._pretriaged: set[tuple[str, float]] = set()
        #: What the last snapshot pre-triage looked through held: its alerts, the
        #: triage, whether the alerts were complete.
        self._pretriage_seen: tuple[object, object, bool] | None = None
        #: Each reading's widths in the models table, measured where it is made.
        self.widths = fitting.WidthBook()
        #: When the last key came in (time.monotonic): screens put input first.
        self.last_key_at = -math.inf
        #: The poller's state thread steps aside while a key is answered.
        self.keys_first = KeysFirst()
        self._key_heard: events.Key | None = None
        # A factory defers building the adapters (and importing their HTTP
        # clients, ~0.1 s) to a thread after the first paint.
        self._poller_factory = None if isinstance(poller, Poller) else poller
        self.poller = poller if isinstance(poller, Poller) else None
        self.snapshot = self.poller.snapshot if self.poller else initial_snapshot(config)
        self.clock = time.time if clock is None else clock  # tests freeze time
        self.started_at = time.perf_counter()
        self.first_paint: float | None = None
        self.theme = config.ui.theme

    @property
    def incidents(self) -> IncidentBook | None:
        """Incidents in the shared store (None until opened, or if it cannot be)."""
        return self.session.incidents if self.session is not None else None

    @property
    def acting(self) -> Session | None:
        """The session when mitigations can run through it: it was opened to act and
        its audit log is open."""
        space = self.session
        if space is None or space.audit is None or space.audit_mode != "create":
            return None
        return space

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.last_key_at = time.monotonic()
            # Textual hands the app a key twice: as it comes in, and as it bubbles up
            # from the focused widget.
            if event is not self._key_heard:
                self._key_heard = event
                if self.keys_first.idle:  # not heard from the driver (a Pilot's key)
                    self.keys_first.key_in()
                self.call_after_refresh(self.keys_first.key_shown)
        await super().on_event(event)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every toast, whatever its text holds: messages quote model names, alert
        text and source errors, so they are made inert and never read as markup."""
        super().notify(
            inert(message, multiline=True),
            title=inert(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    def on_work_failed(self, message: WorkFailed) -> None:
        """A worker failed, the app's or a screen's (:mod:`screens.work`): kept in
        :attr:`work_failures`, never dropped, and said on screen. The same failure again
        within :data:`REPEAT_QUIET` seconds is kept and counted, not said again: a store
        that fails fails every worker that touches it (500 of them in a page of 500
        alerts), and one toast says it."""
        error = f"{message.name}: {message.error}"
        now = time.monotonic()
        self.work_failures.append((time.time(), error))
        self.log.error(f"worker failed: {error}")
        said_at, repeats = self._failures_said.get(error, (-math.inf, 0))
        if now - said_at < REPEAT_QUIET:
            self._failures_said[error] = (said_at, repeats + 1)
            return
        if len(self._failures_said) > 1000:
            self._failures_said.clear()
        self._failures_said[error] = (now, 0)
        if repeats:
            error += f" (again; {repeats} more since it was last said)"
        self.notify(error, title="Background work failed", severity="error", timeout=15)

    def on_mount(self) -> None:
        from screens.dashboard import DashboardScreen

        self._gc_thresholds = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *self._gc_thresholds[1:])
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        if self._driver is not None:
            watch_keys(self.keys_first, self._driver)
        self.push_screen(DashboardScreen())
        if self.poller is not None:  # given ready-made: poll from the start
            self._start_poller(self.poller)

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

    async def action_quit(self) -> None:
        """Quit; while an action is applied or verified, only when asked twice."""
        now = time.monotonic()
        if self.applying and now - self._quit_asked_at > 5:
            self._quit_asked_at = now
            self.notify(
                "An action is being applied or verified. Press q again to quit anyway: "
                "an unfinished action stays in the audit log and is reconciled at the next "
                "start.",
                severity="warning",
                timeout=5,
            )
            return
        self.exit()

    def on_action_finished(self, message: ActionFinished) -> None:
        """An action ran: keep its report and show its effect as soon as possible."""
        self.reports.append(message.report)
        if self.poller is not None:
            self.poller.refresh_now()

    def _start_poller(self, poller: Poller) -> None:
        self.poller = poller
        poller.on_snapshot = self._publish
        poller.on_built = self.widths.measure  # measured before the dashboard asks
        poller.give_way = self.widths.give_way = self.keys_first.give_way
        for adapter in poller.adapters.values():
            adapter.give_way = self.keys_first.give_way
        poller.start()

    def _pretriage(self, snapshot: Snapshot) -> None:
        """A page arrived: gather its runbook's evidence up to the first question."""
        triage = self.triage
        if triage is None:
            return
        complete = self._alerts_complete(snapshot)
        # The same alerts (the poller keeps their tuple while they do not change) with
        # the same completeness: nothing new fired, nothing to forget. A page of 500
        # alerts is otherwise looked through again on every snapshot, on the UI thread.
        seen = (snapshot.alerts, triage, complete)
        last = self._pretriage_seen
        if last is not None and all(a is b for a, b in zip(seen, last, strict=True)):
            return
        self._pretriage_seen = seen
        now_firing = set()
        for alert in snapshot.firing:
            firing = (alert.fingerprint, alert.starts_at.timestamp())
            now_firing.add(firing)
            if firing in self._pretriaged:  # a repeated page is a new firing: new walk
                continue
            self._pretriaged.add(firing)
            matched = triage.catalog.for_alert(alert.labels, alert.annotations)
            if len(matched) == 1:  # several matches wait for the responder's pick
                # Filed by its firing alone: the incidents read here may predate this
                # page (another console resolved the last one); `t` files it for good.
                self.run_worker(
                    triage.pretriage(alert, matched[0]),
                    group="pretriage",
                    exit_on_error=False,
                    name="pretriage",
                    description="pre-triage a new page",
                )
        if complete:
            # Only the firings of now: the set follows the alerts, not their history. A
            # firing seen again after this (never, unless it flapped) finds its walk
            # in the store and starts none.
            self._pretriaged &= now_firing
            triage.forget_firings_but(now_firing)

    def on_ready(self) -> None:
        self.first_paint = time.perf_counter() - self.started_at
        self.log.info(f"first paint after {self.first_paint:.3f}s")
        self._connect()

    async def on_unmount(self) -> None:
        gc.set_threshold(*self._gc_thresholds)
        sys.setswitchinterval(self._switch_interval)
        if self.poller is not None:
            await self.poller.stop()
        if self.session is not None:
            self.session.owns_adapters = False  # the poller closed them
            await self.session.close()
        if self.triage is not None and self._owns_triage:
            # Closed, not left to the collector: the process's exit skips collecting
            # what the app held (console.cli.main), so an open connection would keep its
            # write-ahead log uncheckpointed until the next start.
            self.triage.store.close()

    # -- incidents -------------------------------------------------------------

    def _alerts_complete(self, snapshot: Snapshot) -> bool:
        """Whether the snapshot holds every alert: each alerts source answered last time.
        (An unreachable Alertmanager is not "every alert resolved".) A configured
        ``alertmanager`` source whose adapter could not even be built has no health
        OK, so it counts as not answering."""
        names = [n for n, s in self.config.sources.items() if s.type == "alertmanager"]
        if self.poller is not None:
            names += [n for n, a in self.poller.adapters.items() if isinstance(a, AlertsAdapter)]
        now = self.now()
        return bool(names) and all(
            name in snapshot.sources and snapshot.sources[name].state(now) is Health.OK
            for name in set(names)
        )

    def _sync_incidents(self, snapshot: Snapshot) -> None:
        if self.incidents is None or self._syncing:
            return
        self._syncing = True
        # Callables, not coroutines: one the worker never starts (the app is closing)
        # is then never created, rather than left unawaited.
        if self._alerts_complete(snapshot):
            self.run_worker(
                # The alerts only: a sync runs for seconds at hundreds of alerts, and the
                # snapshot would keep a generation of readings alive meanwhile.
                functools.partial(self._sync, snapshot.alerts),  # type: ignore[arg-type]
                group="incidents",
                exit_on_error=False,
                name="incidents",
                # Textual describes a worker by repr(work) unless told: here the
                # repr of every alert, megabytes at a thousand models.
                description="incidents: sync with the alerts",
            )
        else:  # no alerts to trust, but other responders' acks and notes still show
            self.run_worker(
                self._reread,  # type: ignore[arg-type]
                group="incidents",
                exit_on_error=False,
                name="incidents",
                description="read the incidents",
            )

    async def _reread(self) -> None:
        import asyncio

        from console.incidents.model import IncidentError

        assert self.incidents is not None
        before = self.open_incidents
        try:
            self.open_incidents = await asyncio.to_thread(_open_now, self.incidents, before)
        except IncidentError:
            return
        finally:
            self._syncing = False
        if self.open_incidents is not before:
            self.incidents_changed()

    async def _sync(self, alerts: tuple[AlertRecord, ...]) -> None:
        import asyncio

        from console.incidents.live import sync_alerts
        from console.incidents.model import IncidentError

        book = self.incidents
        assert book is not None
        try:
            result = await asyncio.to_thread(sync_alerts, book, self.config, alerts, now=self.now())
            before = self.open_incidents
            self.open_incidents = await asyncio.to_thread(_open_now, book, before)
        except IncidentError as exc:
            self.notify(f"Incidents not updated: {exc}", severity="error", timeout=10)
            return
        finally:
            self._syncing = False
        self._announce(result.opened)
        if result.changed or self.open_incidents is not before:  # here, or another console
            self.incidents_changed()
        self.measure_first_breaches(result.opened)

    def measure_first_breaches(self, opened: Sequence[Incident]) -> None:
        """Queue the first breach of each incident opened (by the sync or by a key),
        read by one worker, in a thread, one at a time."""
        if not opened:
            return
        self._breaches_due.extend(opened)
        if not self._measuring_breaches:
            self._measuring_breaches = True
            self.run_worker(
                self._first_breaches,  # type: ignore[arg-type]
                group="first-breach",
                exit_on_error=False,
                name="first-breach",
                description="incidents: first breaches",
            )

    @property
    def first_breaches_pending(self) -> bool:
        """Whether an opened incident still waits for its first breach to be read, or
        one is being read: False once every read is done."""
        return self._measuring_breaches or bool(self._breaches_due)

    def _announce(self, opened: Sequence[Incident]) -> None:
        """A toast for each incident opened, or one for them all when there are more
        than a screen's corner holds: a page of 500 alerts is one toast, not 500 (each
        a widget to lay out while the keys wait)."""
        if len(opened) <= TOASTS_AT_ONCE:
            for incident in opened:
                self.notify(
                    f"{incident.id} opened: {incident.alertname} on {incident.model}. "
                    "a acknowledges, i shows its timeline",
                    title="Incident",
                    severity="warning",
                    timeout=10,
                )
            return
        shown = ", ".join(
            f"{i.id} {i.alertname} on {i.model}" for i in opened[: TOASTS_AT_ONCE - 1]
        )
        self.notify(
            f"{len(opened)} incidents opened: {shown} and {len(opened) - TOASTS_AT_ONCE + 1} "
            "more. I lists them all",
            title="Incidents",
            severity="warning",
            timeout=15,
        )

    async def _first_breaches(self) -> None:
        """The first breach of each incident opened, one range query at a time, however
        many open at once: the syncs go on meanwhile, and what is held is the queue.
        Each is read, parsed and kept in a thread, never on the UI's loop."""
        import asyncio

        from console.incidents.live import record_first_breach_here

        book = self.incidents
        assert book is not None
        adapters = dict(self.poller.adapters) if self.poller is not None else {}
        try:
            while self._breaches_due:
                found = False
                for _ in range(min(len(self._breaches_due), BREACHES_PER_REDRAW)):
                    incident = self._breaches_due.popleft()
                    # In a thread: a page of 500 alerts is 500 reads, parses and writes.
                    found |= await asyncio.to_thread(
                        record_first_breach_here,
                        book,
                        incident,
                        self.config,
                        adapters,
                        give_way=self.keys_first.give_way,
                    )
                if found:
                    self.incidents_changed()
        finally:
            self._measuring_breaches = False

    def incidents_changed(self) -> None:
        """The store's incidents changed: every screen that shows them redraws."""
        for screen in self.screen_stack:
            if hasattr(screen, "show_incidents"):
                screen.show_incidents()

    def on_incidents_read(self, message: IncidentsRead) -> None:
        """The open incidents, read again in a thread after a change: show them."""
        self.open_incidents = message.open_now
        self.incidents_changed()

    def on_incidents_opened(self, message: IncidentsOpened) -> None:
        """Incidents opened by a key: their first breaches are read (when there are
        sources to read them from)."""
        if self.poller is not None:
            self.measure_first_breaches(message.opened)

    def reload_incidents(self) -> None:
        """After a responder changed an incident: read the open ones again, redraw."""
        from console.incidents.model import IncidentError

        if self.incidents is not None:
            try:
                self.open_incidents = self.incidents.open_incidents()
            except IncidentError as exc:
                self.notify(f"Incidents not read: {exc}", severity="error", timeout=10)
        self.incidents_changed()

    def incident_for_alert(self, alert: AlertRecord) -> Incident | None:
        model = alert.labels.get(self.config.model_label, "")
        return next(
            (i for i in self.open_incidents if i.model == model and i.alertname == alert.name),
            None,
        )

    def _publish(self, snapshot: Snapshot) -> None:
        self.post_message(SnapshotUpdated(snapshot))

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Show ``snapshot`` now (the poller's path, and the tests')."""
        self.snapshot = snapshot
        self._pretriage(snapshot)
        self._sync_incidents(snapshot)
        for screen in self.screen_stack:
            # A screen pushed but not mounted yet shows the app's snapshot when it mounts.
            if hasattr(screen, "show_snapshot") and screen.is_mounted:
                screen.show_snapshot(snapshot)

    def on_snapshot_updated(self, message: SnapshotUpdated) -> None:
        self.apply_snapshot(message.snapshot)

    def now(self) -> float:
        return self.clock()

    def action_refresh(self) -> None:
        if self.poller is not None:
            self.poller.refresh_now()
            self.notify("Refreshing every source", timeout=2)

    def action_palette(self) -> None:
        """``:``: the command palette (a name of its own, so the footer's ``^p palette``
        hint, which follows the ``command_palette`` action, stays as it is)."""
        self.action_command_palette()

    def action_help(self) -> None:
        from screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Refresh now", "Refresh every source immediately (R)", self.action_refresh
        )
        yield SystemCommand("Help", "Show keys and what the colours mean (?)", self.action_help)
        # The screen's own actions, as its keys would run them (on what is selected);
        # what check_action refuses (mutations when read-only) is not offered.
        for action, title, text in getattr(screen, "PALETTE", ()):
            if screen.check_action(action, ()) is not False:
                yield SystemCommand(title, text, getattr(screen, f"action_{action}"))


def _satisfies_front(app: MLConsoleApp) -> Front:
    """Never called: mypy checks here that the app is the :class:`Front` every screen
    reads."""
    return app


def create_app(
    config: Config,
    *,
    adapters: dict[str, Adapter] | None = None,
    poll: bool = True,
    clock: Callable[[], float] | None = None,
    triage: Triage | None = None,
    read_only: bool = False,
    actor: str | None = None,
) -> MLConsoleApp:
    """Build the app as the CLI does. ``poll=False`` leaves snapshots to the caller."""
    options = {"clock": clock, "triage": triage, "read_only": read_only, "actor": actor}
    if not poll:
        return MLConsoleApp(config, None, **options)  # type: ignore[arg-type]
    if adapters is not None:
        return MLConsoleApp(config, Poller(config, adapters), **options)  # type: ignore[arg-type]

    def connect() -> Poller:
        built, failures = build_adapters(config)
        return Poller(config, built, load_errors=failures)

    return MLConsoleApp(config, connect, **options)  # type: ignore[arg-type]
