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
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from adapters.base import (
    Adapter,
    AdapterError,
    AlertsAdapter,
    MetricsAdapter,
    RegistryAdapter,
    SwitchAdapter,
)
from adapters.records import LabelValues
from console.config.models import Config, SliConfig, SourceConfig
from console.sources.snapshot import Deployment, Snapshot
from console.sources.state import Change, PollerState, SnapshotCallback

if TYPE_CHECKING:  # the history is imported where one is kept (sqlite3, its store)
    from console.sources.alias_history import AliasHistory


def _nothing() -> tuple[str, ...]:
    return ()


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


class Poller(PollerState):
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
        super().__init__(config, load_errors=load_errors, on_snapshot=on_snapshot, clock=clock)
        self.adapters = adapters
        self.history = history
        self._roles = {
            source: role
            for role, source in (
                ("fallback", config.actions.fallback),
                ("pipeline", config.actions.pipeline),
            )
            if source is not None
        }
        self._seeded: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: dict[str, asyncio.Event] = {}
        self._locks: dict[str, asyncio.Lock] = {}

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
            change: Change | None = None
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

    def _wake_switches(self) -> None:
        for name, adapter in self.adapters.items():
            if isinstance(adapter, SwitchAdapter) and name in self._wake:
                self._wake[name].set()

    async def _fetch(self, name: str, adapter: Adapter) -> Change | None:
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

    async def _fetch_metrics(self, name: str, adapter: MetricsAdapter) -> Change:
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

    async def _fetch_switch(self, name: str, adapter: SwitchAdapter) -> Change | None:
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
