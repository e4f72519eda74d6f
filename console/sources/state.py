"""The poller's state: what each source last answered, the readings judged from it,
and the snapshots built from them.

Every change to it, and every snapshot, is made in the poller's one state thread
under one lock (:class:`console.sources.poller.Poller` asks the sources).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from adapters.records import AlertRecord, LabelValues
from adapters.threads import DaemonPool
from console.config.models import Config, SliConfig
from console.keys_first import in_pieces, no_key
from console.memory import HeapTrimmer, can_trim
from console.sources.sli import Judge, SliReading, SliStatus
from console.sources.snapshot import Deployment, Snapshot, SourceHealth

SnapshotCallback = Callable[[Snapshot], None]
#: One source's answer as the change it makes to the poller's state; returns the
#: source's warnings. Applied in the state thread.
Change = Callable[[], tuple[str, ...]]


def pending_health(config: Config) -> dict[str, SourceHealth]:
    """Every enabled source, not yet asked."""
    return {
        name: SourceHealth(name, source.type, source.interval, source.stale_seconds)
        for name, source in config.sources.items()
        if source.enabled
    }


def initial_snapshot(config: Config) -> Snapshot:
    """What the screens show before the first refresh: every source pending."""
    return Snapshot.build(
        taken_at=0.0,
        slis=tuple(config.slis),
        readings={},
        alerts=(),
        sources=pending_health(config),
        model_label=config.model_label,
    )


@dataclass
class _History:
    """Recent values per (model, sli), one point per ``step`` seconds, bounded.

    Points are kept ``step`` apart whatever the refresh interval, so a sparkline
    always spans the configured history window; between two steps the newest
    point is overwritten, so the last point is always the current value.

    Each key keeps ``[time of its newest point, its values, the same as a tuple]``:
    the tuple is what a reading shows, so a value that did not change (within a step)
    costs no new tuple, and the reading that holds it can stay as it was. A changed
    value costs one tuple, copied from the list (a third of the cost of slicing one).
    """

    points: int
    step: float
    series: dict[tuple[str, str], list[Any]] = field(default_factory=dict)

    def add(self, key: tuple[str, str], at: float, value: float) -> tuple[float, ...]:
        entry = self.series.get(key)
        if entry is None:
            first = (value,)
            self.series[key] = [at, [value], first]
            return first
        values: list[float] = entry[1]
        if at - entry[0] < self.step:
            last = values[-1]
            if last == value or (last != last and value != value):  # equal, or both NaN
                return entry[2]  # type: ignore[no-any-return]
            values[-1] = value
        else:
            entry[0] = at
            values.append(value)
            if len(values) > self.points:
                del values[0]
        shown = entry[2] = tuple(values)
        return shown

    def seed(self, key: tuple[str, str], points: list[tuple[float, float]]) -> None:
        kept = [v for _, v in points[-self.points :]]
        if kept:
            self.series[key] = [points[-1][0], kept, tuple(kept)]


class PollerState:
    """What the sources answered, as readings, alerts, deployments, switches and
    health, and the latest snapshot built from them."""

    def __init__(
        self,
        config: Config,
        *,
        load_errors: dict[str, str] | None = None,
        on_snapshot: SnapshotCallback | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.load_errors = dict(load_errors or {})
        self._deployments: dict[str, Deployment] = {}
        self._switches: dict[str, dict[str, bool]] = {}
        self._known: set[str] = set()
        self.on_snapshot = on_snapshot
        #: Called in the state thread with each snapshot built there, before it is
        #: published: work a screen would otherwise do on the UI loop.
        self.on_built: SnapshotCallback | None = None
        #: Called in the state thread between pieces of its work: a UI waits there
        #: while it answers a key (:class:`console.keys_first.KeysFirst`).
        self.give_way: Callable[[], None] = no_key
        self.clock = clock
        self._slis = tuple(config.slis)
        self._judges = {sli.name: Judge(sli) for sli in self._slis}
        self._readings: dict[tuple[str, str], SliReading] = {}
        #: Per SLI, each model it has a reading for, and that reading's key.
        self._keys: dict[str, dict[str, tuple[str, str]]] = {}
        #: The models the readings name.
        self._reading_models: set[str] = set()
        #: Series no longer answered, by key: when they were first missed.
        self._vanished: dict[tuple[str, str], float] = {}
        self._forgotten = False
        #: By alerts source: each refresh replaces its own source's alerts only.
        self._alerts: dict[str, tuple[AlertRecord, ...]] = {}
        #: Every source's alerts in one tuple, rebuilt only when an alerts source answers.
        self._all_alerts: tuple[AlertRecord, ...] = ()
        self._history = _History(
            config.ui.history_points, config.ui.history / config.ui.history_points
        )
        self._health = pending_health(config)
        for name, error in (load_errors or {}).items():
            now = clock()
            self._health[name] = replace(
                self._health[name], last_error=error, last_error_at=now, last_attempt=now
            )
        #: Held while the poller's state changes and a snapshot is built from it.
        self._state_lock = threading.Lock()
        self._state: DaemonPool | None = None
        #: Gives the heap malloc keeps free back to the system, in the state thread,
        #: after the snapshot it follows (None where the C library cannot).
        self.trimmer: HeapTrimmer | None = HeapTrimmer() if can_trim() else None
        self.snapshot = self._build(None)

    def remember(self, models: Iterable[str]) -> None:
        """Models seen in an earlier session (the alias history): listed from now on,
        so they stay on screen, and the keys act on them, while no source answers."""
        with self._state_lock:
            self._known.update(models)
            self.snapshot = self._build(self.snapshot)
        if self.on_snapshot is not None:
            self.on_snapshot(self.snapshot)

    def _failed(self, name: str, error: str) -> None:
        """A refresh of ``name`` that failed past its adapter: the source is shown down
        with ``error`` until a refresh succeeds."""
        with self._state_lock:
            now = self.clock()
            self._health[name] = replace(self._health[name], last_error=error, last_error_at=now)
            self.snapshot = self._build(self.snapshot)
        if self.on_snapshot is not None:
            self.on_snapshot(self.snapshot)

    # -- the state thread --------------------------------------------------

    def _state_thread(self) -> DaemonPool:
        if self._state is None:
            self._state = DaemonPool(1, "poller-state")
        return self._state

    def _apply(
        self, name: str, started: float, change: Change | None, error: str | None
    ) -> bool | None:
        """In the state thread: apply one source's answer (``change``) or its failure
        (``error``), record the source's health and build the new snapshot.

        None when the source was not asked (``change`` and ``error`` both None), else
        whether the first models just appeared."""
        with self._state_lock:
            health = replace(self._health[name], last_attempt=started)
            if change is None and error is None:
                self._health[name] = health
                return None
            warnings: tuple[str, ...] = ()
            if change is not None:
                try:
                    warnings = change()
                except Exception as exc:  # a bug in reading an answer: shown, not raised
                    error = f"{name}: unexpected {exc.__class__.__name__}: {exc}"
            if error is not None:
                health = replace(health, last_error=error, last_error_at=self.clock())
            else:
                health = replace(health, last_success=self.clock(), warnings=warnings)
            self._health[name] = health
            known = bool(self.snapshot.models)
            self.snapshot = self._build(self.snapshot)
            if self.on_built is not None:
                self.on_built(self.snapshot)
            trimmer, pool = self.trimmer, self._state
            if trimmer is not None and pool is not None and trimmer.due(len(self._all_alerts)):
                # Queued behind this change, so the snapshot is published first; the
                # trim runs without the interpreter's lock (a ctypes call).
                with contextlib.suppress(RuntimeError):  # the poller stopped meanwhile
                    pool.submit(trimmer.run)
            return not known and bool(self.snapshot.models)

    def _take_alerts(self, name: str, alerts: tuple[AlertRecord, ...]) -> tuple[str, ...]:
        if alerts == self._alerts.get(name):
            # The same alerts as last time: the snapshot keeps the very tuple it has,
            # and with it its alert index, and the screens see by identity that no
            # alert changed (compared here, in the state thread, not on the UI's).
            return ()
        self._alerts[name] = alerts
        self._all_alerts = tuple(a for kept in self._alerts.values() for a in kept)
        return ()

    def _take_deployments(self, deployments: dict[str, Deployment]) -> tuple[str, ...]:
        self._deployments = deployments
        return ()

    def _read_sli(
        self, sli: SliConfig, result: LabelValues, bad: Mapping[str, float] | None
    ) -> None:
        """One SLI's answer into the readings: a new reading only where the value, its
        status, burn rate or history moved; the same object where nothing did.

        The refresh's hot loop, once per model per SLI: names are bound locally."""
        name = sli.name
        readings = self._readings
        keys = self._keys.setdefault(name, {})
        judge = self._judges[name]
        status, burn_rate = judge.status, judge.burn_rate
        add = self._history.add
        at = result.timestamp
        values = result.values
        for piece in in_pieces(values.items(), self.give_way):
            for model, value in piece:
                key = keys.get(model)
                if key is None:
                    key = keys[model] = (model, name)
                    self._reading_models.add(model)
                history = add(key, at, value)
                burn = burn_rate(value, bad.get(model) if bad is not None else None)
                old = readings.get(key)
                if (
                    old is not None
                    and old.history is history  # so the value is the same too
                    and old.value is not None
                    and old.burn_rate == burn
                    and old.error is None
                ):
                    continue
                readings[key] = SliReading(name, model, value, status(value), burn, history)
        vanished = self._vanished
        if vanished:  # back again: no longer on its way out
            for key in [k for k in vanished if k[1] == name and k[0] in values]:
                del vanished[key]
        gone = keys.keys() - values.keys()
        if not gone:
            return
        now = self.clock()
        forget_after = self.config.ui.history
        for model in gone:
            # The series vanished: keep the model visible, say there is no data, for
            # as long as its sparkline reaches back; then forget it, so what is held
            # follows the series there are now, not every series there ever was.
            key = keys[model]
            if now - vanished.setdefault(key, now) > forget_after:
                del keys[model], readings[key], vanished[key]
                self._history.series.pop(key, None)
                self._forgotten = True
                continue
            old = readings[key]
            if old.value is not None or old.burn_rate is not None or old.error is not None:
                readings[key] = replace(
                    old, value=None, status=SliStatus.NODATA, burn_rate=None, error=None
                )

    def _mark_sli_error(self, sli: SliConfig, message: str) -> None:
        for key in self._keys.get(sli.name, {}).values():
            old = self._readings[key]
            if old.error != message:
                self._readings[key] = replace(old, error=message)

    def _build(self, previous: Snapshot | None) -> Snapshot:
        if self._forgotten:  # a model is listed only while one of its series is kept
            self._forgotten = False
            self._reading_models = {m for keys in self._keys.values() for m in keys}
        return Snapshot.build(
            taken_at=self.clock(),
            slis=self._slis,
            readings=self._readings,
            alerts=self._all_alerts,
            sources=self._health,
            model_label=self.config.model_label,
            deployments=self._deployments,
            switches=self._switches,
            known=self._known,
            reading_models=self._reading_models,
            previous=previous,
        )
