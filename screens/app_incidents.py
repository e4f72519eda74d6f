"""The app's incidents desk: pages seen in the snapshots pre-triaged, the store's
incidents kept in step with the alerts, their first breaches read, and every screen
that shows incidents told when they change. :class:`screens.app.MLConsoleApp` builds
on it."""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from textual.app import App

from adapters.base import AlertsAdapter
from adapters.records import AlertRecord
from console.config.models import Config
from console.keys_first import KeysFirst
from console.sources.poller import Poller
from console.sources.snapshot import Health, Snapshot
from screens.front import IncidentsOpened, IncidentsRead

if TYPE_CHECKING:
    from console.incidents.book import IncidentBook
    from console.incidents.model import Incident
    from console.session import Session
    from console.triage.triage import Triage

#: First breaches read between two redraws of the screens that show incidents.
BREACHES_PER_REDRAW = 25
#: Incidents opened by one sync that each get a toast; more are told in one.
TOASTS_AT_ONCE = 3


def _open_now(book: IncidentBook, before: tuple[Incident, ...]) -> tuple[Incident, ...]:
    """In a thread: the open incidents as the store has them now, or ``before`` itself
    when they are the same. A screen then sees by identity that nothing changed, and
    does not look through hundreds of incidents on every snapshot to find out."""
    now = book.open_incidents()  # the same tuple while the store is unchanged
    return before if now is before or now == before else now


class IncidentsDesk(App[int]):
    """The incidents of the app: what it reads, keeps and announces of them."""

    # Set by the app (screens.app.MLConsoleApp.__init__) and its connecting.
    config: Config
    poller: Poller | None
    session: Session | None
    triage: Triage | None
    keys_first: KeysFirst
    clock: Callable[[], float]

    def __init__(self) -> None:
        super().__init__()
        #: The open incidents as last read from the store, for every screen to show.
        self.open_incidents: tuple[Incident, ...] = ()
        self._syncing = False
        #: Incidents opened whose first breach is still to be read, oldest first.
        self._breaches_due: deque[Incident] = deque()
        self._measuring_breaches = False
        self._pretriaged: set[tuple[str, float]] = set()
        #: What the last snapshot pre-triage looked through held: its alerts, the
        #: triage, whether the alerts were complete.
        self._pretriage_seen: tuple[object, object, bool] | None = None

    @property
    def incidents(self) -> IncidentBook | None:
        """Incidents in the shared store (None until opened, or if it cannot be)."""
        return self.session.incidents if self.session is not None else None

    def now(self) -> float:
        return self.clock()

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
