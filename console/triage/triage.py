"""Triage: the runbooks, the walk store and the metrics source, for the screens and
pre-triage.

Finds the walk that belongs to a firing (resumed, or started), and runs pre-triage:
when a page arrives, its runbook's checks up to the first question, once per firing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from adapters.base import MetricsAdapter
from adapters.records import AlertRecord
from console.config.actor import default_actor
from console.config.models import Config
from console.config.paths import store_path
from console.triage.catalog import Catalog, runbook_dirs
from console.triage.runbook import Runbook
from console.triage.store import RUN_GRACE, Evidence, RunRecord, Store
from console.triage.walk import Walk
from console.triage.walk_state import WalkError

#: Who pre-triage's evidence names.
PRETRIAGE_ACTOR = "mlconsole (pre-triage)"


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
    store: Store | None = None,
) -> Triage:
    """Load the runbooks and open the store the config names (or use ``store``, a
    session's, lent: its owner closes it). Raises StoreError.

    The walks' evidence names the console's actor (``actor``, else the config's and
    the environment's, see :func:`console.config.actor.resolve_actor`), as the audit does.
    """
    from console.config.actor import resolve_actor

    catalog = Catalog.load(runbook_dirs(config))
    if store is None:
        store = Store(store_path(config))
    return Triage(catalog, store, metrics, clock=clock, actor=resolve_actor(config, actor))
