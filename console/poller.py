"""Poll every source on its own schedule and publish immutable snapshots.

One asyncio task per source. Each task refreshes, publishes, then sleeps its
interval, so a source's refreshes never overlap, and a slow source (a
Prometheus timing out) never delays a fast one (Alertmanager). Sync clients
run in threads inside the adapters; nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from adapters import registry
from adapters.base import (
    Adapter,
    AdapterError,
    AlertRecord,
    AlertsAdapter,
    MetricsAdapter,
    QueryResult,
    RegistryAdapter,
    SwitchAdapter,
)
from adapters.redaction import Redactor
from console.alias_history import AliasHistory, Deployment, HistoryError
from console.config import Config, SliConfig, SourceConfig
from console.snapshot import SliReading, Snapshot, SourceHealth, burn_rate, judge

SnapshotCallback = Callable[[Snapshot], None]
#: Switch states are read one request per model; this many at once per source.
SWITCH_READS_AT_ONCE = 8


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
    """

    points: int
    step: float
    series: dict[tuple[str, str], deque[tuple[float, float]]] = field(default_factory=dict)

    def add(self, key: tuple[str, str], at: float, value: float) -> tuple[float, ...]:
        buf = self.series.get(key)
        if buf is None:
            buf = self.series[key] = deque(maxlen=self.points)
        if buf and at - buf[-1][0] < self.step:
            buf[-1] = (buf[-1][0], value)
        else:
            buf.append((at, value))
        return tuple(v for _, v in buf)

    def seed(self, key: tuple[str, str], points: list[tuple[float, float]]) -> None:
        self.series[key] = deque(points[-self.points :], maxlen=self.points)


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
        self.clock = clock
        self._slis = tuple(config.slis)
        self._readings: dict[tuple[str, str], SliReading] = {}
        #: By alerts source: each refresh replaces its own source's alerts only.
        self._alerts: dict[str, tuple[AlertRecord, ...]] = {}
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
        self.snapshot = self._build()

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

    def remember(self, models: Iterable[str]) -> None:
        """Models seen in an earlier session (the alias history): listed from now on,
        so they stay on screen, and the keys act on them, while no source answers."""
        self._known.update(models)
        self.snapshot = self._build()
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
            await self.refresh(name)
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=interval)

    # -- one refresh -------------------------------------------------------

    def _source(self, name: str) -> SourceConfig:
        return self.config.sources[name]

    async def refresh(self, name: str) -> None:
        """Refresh one source, then publish a new snapshot. Never raises AdapterError."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:  # refresh_once and the loop must not overlap either
            adapter = self.adapters[name]
            started = self.clock()
            health = replace(self._health[name], last_attempt=started)
            try:
                if isinstance(adapter, MetricsAdapter):
                    warnings = await self._refresh_metrics(name, adapter)
                elif isinstance(adapter, AlertsAdapter):
                    self._alerts[name] = await adapter.alerts()
                    warnings = ()
                elif isinstance(adapter, RegistryAdapter):
                    await self._refresh_registry(adapter)
                    warnings = ()
                elif isinstance(adapter, SwitchAdapter):
                    read = await self._refresh_switch(name, adapter)
                    if read is None:  # no model known yet: nothing asked, nothing learnt
                        self._health[name] = health
                        return
                    warnings = read
                else:
                    warnings = ()
            except AdapterError as exc:
                health = replace(health, last_error=exc.summary(), last_error_at=self.clock())
            except Exception as exc:  # an adapter bug must not kill the loop
                health = replace(
                    health,
                    last_error=f"{name}: unexpected {exc.__class__.__name__}: {exc}",
                    last_error_at=self.clock(),
                )
            else:
                health = replace(health, last_success=self.clock(), warnings=warnings)
            self._health[name] = health
            known = bool(self.snapshot.models)
            self.snapshot = self._build()
            if not known and self.snapshot.models:
                self._wake_switches()  # they had no model to ask until now
        if self.on_snapshot is not None:
            self.on_snapshot(self.snapshot)

    def _wake_switches(self) -> None:
        for name, adapter in self.adapters.items():
            if isinstance(adapter, SwitchAdapter) and name in self._wake:
                self._wake[name].set()

    async def _refresh_metrics(self, name: str, adapter: MetricsAdapter) -> tuple[str, ...]:
        slis = [s for s in self._slis if self.config.metrics_source_for(s) == name]
        if name not in self._seeded:
            await self._seed_history(adapter, slis)
            self._seeded.add(name)
        queries = sli_queries(slis)
        # One query per SLI across all models, all at once.
        results = await asyncio.gather(*(adapter.query(q) for q in queries), return_exceptions=True)
        by_query = dict(zip(queries, results, strict=True))
        _raise_if_all_failed(name, results)
        warnings: list[str] = []
        label = self.config.model_label
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
                if isinstance(bad_result, QueryResult):
                    bad = {s.labels.get(label, ""): s.value for s in bad_result.samples}
            seen: set[str] = set()
            for sample in result.samples:
                model = sample.labels.get(label)
                if model is None:
                    continue
                seen.add(model)
                key = (model, sli.name)
                value = sample.value
                self._readings[key] = SliReading(
                    sli=sli.name,
                    model=model,
                    value=value,
                    status=judge(sli, value),
                    burn_rate=burn_rate(sli, value, bad.get(model) if bad else None),
                    history=self._history.add(key, sample.timestamp, value),
                )
            for key in [k for k in self._readings if k[1] == sli.name and k[0] not in seen]:
                # The series vanished: keep the model visible, say there is no data.
                old = self._readings[key]
                self._readings[key] = replace(
                    old, value=None, status=judge(sli, None), burn_rate=None
                )
        return tuple(warnings)

    async def _refresh_registry(self, adapter: RegistryAdapter) -> None:
        models = await adapter.models()
        alias = self.config.actions.alias
        if self.history is None:
            now = self.clock()
            self._deployments = {
                m.name: Deployment(m.name, alias, m.aliases.get(alias), now, None, True)
                for m in models
            }
            return
        try:
            self._deployments = await asyncio.to_thread(self.history.observe, models, alias)
        except HistoryError as exc:
            raise AdapterError(adapter.name, str(exc)) from exc

    async def _refresh_switch(self, name: str, adapter: SwitchAdapter) -> tuple[str, ...] | None:
        """Read the switch of every model shown (a few at a time); None when no model
        is known yet, so the switch source was not asked and stays as it was."""
        models = self.snapshot.models
        if not models:
            return None
        gate = asyncio.Semaphore(SWITCH_READS_AT_ONCE)

        async def read(model: str) -> bool:
            async with gate:
                return await adapter.state(model)

        results = await asyncio.gather(*(read(m) for m in models), return_exceptions=True)
        errors = _raise_if_all_failed(name, results)
        role = self._roles.get(name, name)
        self._switches[role] = {
            m: r for m, r in zip(models, results, strict=True) if isinstance(r, bool)
        }
        return tuple(f"{m}: {r}" for m, r in zip(models, results, strict=True) if r in errors)

    def _mark_sli_error(self, sli: SliConfig, message: str) -> None:
        for key, old in list(self._readings.items()):
            if key[1] == sli.name:
                self._readings[key] = replace(old, error=message)

    async def _seed_history(self, adapter: MetricsAdapter, slis: list[SliConfig]) -> None:
        """Fill the sparklines from a range query, so they are not empty at start."""
        end = self.clock()
        span = self.config.ui.history
        step = max(1.0, self._history.step)
        results = await asyncio.gather(
            *(adapter.query_range(s.query, end - span, end, step) for s in slis),
            return_exceptions=True,
        )
        label = self.config.model_label
        for sli, result in zip(slis, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, AdapterError):
                    raise result
                continue
            for series in result.series:
                model = series.labels.get(label)
                if model is not None:
                    self._history.seed((model, sli.name), list(series.points))

    def _build(self) -> Snapshot:
        return Snapshot.build(
            taken_at=self.clock(),
            slis=self._slis,
            readings=self._readings,
            alerts=tuple(a for alerts in self._alerts.values() for a in alerts),
            sources=self._health,
            model_label=self.config.model_label,
            deployments=self._deployments,
            switches=self._switches,
            known=self._known,
        )
