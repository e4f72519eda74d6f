"""Poll every source on its own schedule and publish immutable snapshots.

One asyncio task per source. Each task refreshes, publishes, then sleeps its
interval, so a source's refreshes never overlap, and a slow source (a
Prometheus timing out) never delays a fast one (Alertmanager). Sync clients
run in threads inside the adapters; nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from adapters import registry
from adapters.base import (
    Adapter,
    AdapterError,
    AlertsAdapter,
    MetricsAdapter,
    RegistryAdapter,
    SwitchAdapter,
)
from adapters.records import AlertRecord, LabelValues
from adapters.redaction import Redactor
from adapters.threads import DaemonPool
from console.config.models import Config, SliConfig, SourceConfig
from console.keys_first import in_pieces, no_key
from console.memory import HeapTrimmer, can_trim
from console.sources.sli import Judge, SliReading, SliStatus
from console.sources.snapshot import Deployment, Snapshot, SourceHealth

if TYPE_CHECKING:  # the history is imported where one is kept (sqlite3, its store)
    from console.sources.alias_history import AliasHistory

SnapshotCallback = Callable[[Snapshot], None]
#: One source's answer as the change it makes to the poller's state; returns the
#: source's warnings. Applied in the state thread.
_Change = Callable[[], tuple[str, ...]]


def _nothing() -> tuple[str, ...]:
    return ()


def build_adapters(config: Config) -> tuple[dict[str, Adapter], dict[str, str]]:
    """Instantiate the enabled sources. Returns (adapters, load errors by source name).

    A source whose adapter fails to import or construct is reported, not raised:
    the console runs on with what it has and shows that source as down.
    """
    adapters: dict[str, Adapter] = {}
    failures: dict[str, str] = {}
    for name, source in config.sources.items():
        if not source.enabled:
            continue
        try:
            cls = registry.load(source.type)
            settings = cls.settings_model.model_validate(
                {
                    **source.model_dump(include=set(cls.settings_model.model_fields)),
                    **source.options,
                }
            )
            adapter = cls(name, settings)
            if isinstance(adapter, AlertsAdapter):  # alerts name their model by this label
                adapter.model_label = config.model_label
            adapters[name] = adapter
        except Exception as exc:  # a broken plug-in is shown as a down source
            # Its message may quote the settings it refused: mask their credentials.
            failures[name] = Redactor.for_settings(source)(f"{name}: {exc}")
    return adapters, failures


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


def sli_queries(slis: Iterable[SliConfig]) -> list[str]:
    """Every PromQL a refresh asks: each SLI's query and its SLO's error-ratio query,
    each once."""
    queries: list[str] = []
    for sli in slis:
        queries.append(sli.query)
        if sli.slo is not None and sli.slo.error_ratio_query:
            queries.append(sli.slo.error_ratio_query)
    return list(dict.fromkeys(queries))


def _raise_if_all_failed(name: str, results: list[Any]) -> list[BaseException]:
    """The failures among ``gather(..., return_exceptions=True)`` results; when every
    one failed, the source is down: raise the first as an AdapterError."""
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors and len(errors) == len(results):
        first = errors[0]
        if isinstance(first, AdapterError):
            raise first
        raise AdapterError(name, f"{first.__class__.__name__}: {first}")
    return errors


class Poller:
    """Runs the refresh loops and holds the latest snapshot."""

    def __init__(
        self,
        config: Config,
        adapters: dict[str, Adapter],
        *,
        load_errors: dict[str, str] | None = None,
        on_snapshot: SnapshotCallback | None = None,
        clock: Callable[[], float] = time.time,
        history: AliasHistory | None = None,
    ) -> None:
        self.config = config
        self.adapters = adapters
        self.history = history
        self.load_errors = dict(load_errors or {})
        self._deployments: dict[str, Deployment] = {}
        self._switches: dict[str, dict[str, bool]] = {}
        self._known: set[str] = set()
        self._roles = {
            source: role
            for role, source in (
                ("fallback", config.actions.fallback),
                ("pipeline", config.actions.pipeline),
            )
            if source is not None
        }
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
        self._seeded: set[str] = set()
        self._health = pending_health(config)
        for name, error in (load_errors or {}).items():
            now = clock()
            self._health[name] = replace(
                self._health[name], last_error=error, last_error_at=now, last_attempt=now
            )
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: dict[str, asyncio.Event] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        #: Held while the poller's state changes and a snapshot is built from it.
        self._state_lock = threading.Lock()
        self._state: DaemonPool | None = None
        #: Gives the heap malloc keeps free back to the system, in the state thread,
        #: after the snapshot it follows (None where the C library cannot).
        self.trimmer: HeapTrimmer | None = HeapTrimmer() if can_trim() else None
        self.snapshot = self._build(None)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Start one refresh loop per source (inside a running event loop)."""
        for name in self.adapters:
            self._wake[name] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._loop(name), name=f"poll:{name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for adapter in self.adapters.values():
            with contextlib.suppress(Exception):
                await adapter.aclose()
        if self._state is not None:
            self._state.shutdown(wait=False)
            self._state = None

    def remember(self, models: Iterable[str]) -> None:
        """Models seen in an earlier session (the alias history): listed from now on,
        so they stay on screen, and the keys act on them, while no source answers."""
        with self._state_lock:
            self._known.update(models)
            self.snapshot = self._build(self.snapshot)
        if self.on_snapshot is not None:
            self.on_snapshot(self.snapshot)

    def refresh_now(self) -> None:
        """Wake every loop for an immediate refresh (the ``R`` key)."""
        for event in self._wake.values():
            event.set()

    async def refresh_once(self) -> Snapshot:
        """Refresh every source once, concurrently; for non-interactive commands.

        Switches are read per model, so they go last, once the metrics, alerts and
        registry have said which models there are."""
        switches = {n for n, a in self.adapters.items() if isinstance(a, SwitchAdapter)}
        await asyncio.gather(*(self.refresh(n) for n in self.adapters if n not in switches))
        await asyncio.gather(*(self.refresh(n) for n in switches))
        return self.snapshot

    async def _loop(self, name: str) -> None:
        interval = self._source(name).interval
        wake = self._wake[name]
        while True:
            try:
                await self.refresh(name)
            except Exception as exc:  # a bug past the adapter: shown, and polling goes on
                self._failed(name, f"{name}: unexpected {exc.__class__.__name__}: {exc}")
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=interval)

    def _failed(self, name: str, error: str) -> None:
        """A refresh of ``name`` that failed past its adapter: the source is shown down
        with ``error`` until a refresh succeeds."""
        with self._state_lock:
            now = self.clock()
            self._health[name] = replace(self._health[name], last_error=error, last_error_at=now)
            self.snapshot = self._build(self.snapshot)
        if self.on_snapshot is not None:
            self.on_snapshot(self.snapshot)

    # -- one refresh -------------------------------------------------------

    def _source(self, name: str) -> SourceConfig:
        return self.config.sources[name]

    async def refresh(self, name: str) -> None:
        """Refresh one source, then publish a new snapshot. Never raises AdapterError.

        What the source answers is awaited here, on the loop (the adapters' requests
        run in their own threads). What the answer changes, and the new snapshot, are
        worked out in the poller's one state thread (:meth:`_apply`): at a thousand
        models that is thousands of readings, and the keys must not wait for them."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:  # refresh_once and the loop must not overlap either
            adapter = self.adapters[name]
            started = self.clock()
            change: _Change | None = None
            error: str | None = None
            try:
                change = await self._fetch(name, adapter)
            except AdapterError as exc:
                error = exc.summary()
            except Exception as exc:  # an adapter bug must not kill the loop
                error = f"{name}: unexpected {exc.__class__.__name__}: {exc}"
            loop = asyncio.get_running_loop()
            applied = await loop.run_in_executor(
                self._state_thread(), self._apply, name, started, change, error
            )
            if applied is None:  # nothing was asked, nothing learnt: nothing to tell
                return
            if applied:
                self._wake_switches()  # they had no model to ask until now
        if self.on_snapshot is not None:
            self.on_snapshot(self.snapshot)

    def _state_thread(self) -> DaemonPool:
        if self._state is None:
            self._state = DaemonPool(1, "poller-state")
        return self._state

    def _apply(
        self, name: str, started: float, change: _Change | None, error: str | None
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

    def _wake_switches(self) -> None:
        for name, adapter in self.adapters.items():
            if isinstance(adapter, SwitchAdapter) and name in self._wake:
                self._wake[name].set()

    async def _fetch(self, name: str, adapter: Adapter) -> _Change | None:
        """Ask one source; what it answered, as the change it makes (applied later,
        in the state thread). None when the source was not asked."""
        if isinstance(adapter, MetricsAdapter):
            return await self._fetch_metrics(name, adapter)
        if isinstance(adapter, AlertsAdapter):
            alerts = await adapter.alerts()
            return functools.partial(self._take_alerts, name, alerts)
        if isinstance(adapter, RegistryAdapter):
            deployments = await self._fetch_registry(adapter)
            return functools.partial(self._take_deployments, deployments)
        if isinstance(adapter, SwitchAdapter):
            return await self._fetch_switch(name, adapter)
        return _nothing

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

    async def _fetch_metrics(self, name: str, adapter: MetricsAdapter) -> _Change:
        slis = [s for s in self._slis if self.config.metrics_source_for(s) == name]
        seeds = None
        if name not in self._seeded:
            seeds = await self._fetch_seeds(adapter, slis)
        queries = sli_queries(slis)
        label = self.config.model_label
        # One query per SLI across all models, all at once, read by the model label.
        results = await asyncio.gather(
            *(adapter.query_by_label(q, label) for q in queries), return_exceptions=True
        )
        by_query = dict(zip(queries, results, strict=True))
        _raise_if_all_failed(name, results)

        def change() -> tuple[str, ...]:
            if seeds is not None:
                for key, points in seeds:
                    self._history.seed(key, points)
                self._seeded.add(name)
            warnings: list[str] = []
            for sli in slis:
                result = by_query[sli.query]
                if isinstance(result, BaseException):
                    warnings.append(f"{sli.name}: {result}")
                    self._mark_sli_error(sli, str(result))
                    continue
                warnings.extend(f"{sli.name}: {w}" for w in result.warnings)
                bad = None
                if sli.slo is not None and sli.slo.error_ratio_query:
                    bad_result = by_query[sli.slo.error_ratio_query]
                    if isinstance(bad_result, LabelValues):
                        bad = bad_result.values
                self._read_sli(sli, result, bad)
            return tuple(warnings)

        return change

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

    async def _fetch_registry(self, adapter: RegistryAdapter) -> dict[str, Deployment]:
        models = await adapter.models()
        alias = self.config.actions.alias
        if self.history is None:
            now = self.clock()
            return {
                m.name: Deployment(m.name, alias, m.aliases.get(alias), now, None, True)
                for m in models
            }
        from console.sources.alias_history import HistoryError  # kept only with a store

        try:
            return await asyncio.to_thread(self.history.observe, models, alias)
        except HistoryError as exc:
            raise AdapterError(adapter.name, str(exc)) from exc

    async def _fetch_switch(self, name: str, adapter: SwitchAdapter) -> _Change | None:
        """Read the switch of every model shown, in one sweep (one request where the
        adapter reads them in bulk); None when no model is known yet, so the switch
        source was not asked and stays as it was."""
        models = self.snapshot.models
        if not models:
            return None
        read = await adapter.states(models)
        role = self._roles.get(name, name)

        def change() -> tuple[str, ...]:
            self._switches[role] = {m: read.on[m] for m in models if m in read.on}
            return tuple(f"{m}: {read.errors[m]}" for m in models if m in read.errors)

        return change

    def _mark_sli_error(self, sli: SliConfig, message: str) -> None:
        for key in self._keys.get(sli.name, {}).values():
            old = self._readings[key]
            if old.error != message:
                self._readings[key] = replace(old, error=message)

    async def _fetch_seeds(
        self, adapter: MetricsAdapter, slis: list[SliConfig]
    ) -> list[tuple[tuple[str, str], list[tuple[float, float]]]]:
        """What fills the sparklines at start, from a range query, so they are not
        empty: each series' key and points."""
        end = self.clock()
        span = self.config.ui.history
        step = max(1.0, self._history.step)
        results = await asyncio.gather(
            *(adapter.query_range(s.query, end - span, end, step) for s in slis),
            return_exceptions=True,
        )
        label = self.config.model_label
        seeds = []
        for sli, result in zip(slis, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, AdapterError):
                    raise result
                continue
            for series in result.series:
                model = series.labels.get(label)
                if model is not None:
                    seeds.append(((model, sli.name), list(series.points)))
        return seeds

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
