"""Adapter contracts: what the console asks of each external system.

An adapter speaks to one external system (Prometheus, Alertmanager, a model
registry, ...). It knows nothing of the UI and little of the console: it takes
its own settings (:class:`SourceSettings`, from :mod:`adapters.settings`) and
returns the plain data types of :mod:`adapters.records`. Both are importable from
here too, with the contracts, for adapters written against this module. The console
core turns those into a :class:`console.sources.snapshot.Snapshot`.

Adapters are found through the ``mlconsole.adapters`` entry-point group, the
same way third-party adapters are, so the built-in ones are not special. Only
the adapters a config names are imported (see :mod:`adapters.registry`).
"""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from adapters.records import (
    AlertRecord,
    LabelValues,
    ModelVersion,
    QueryResult,
    RangeResult,
    RangeSeries,
    RegisteredModel,
    Sample,
    SilenceRecord,
    SwitchStates,
)
from adapters.redaction import Redactor, settings_secrets
from adapters.settings import BasicAuth, SourceSettings, TlsSettings

# The adapter contract: the classes an adapter subclasses and raises, and the settings
# and data types they take and return, as a third-party adapter imports them.
__all__ = [
    "CONTRACT_METHODS",
    "SWITCH_READS_AT_ONCE",
    "Adapter",
    "AdapterError",
    "AlertRecord",
    "AlertsAdapter",
    "BasicAuth",
    "LabelValues",
    "MetricsAdapter",
    "ModelVersion",
    "QueryResult",
    "RangeResult",
    "RangeSeries",
    "RegisteredModel",
    "RegistryAdapter",
    "Sample",
    "SilenceRecord",
    "SourceSettings",
    "SwitchAdapter",
    "SwitchStates",
    "TlsSettings",
]


class AdapterError(Exception):
    """A source failed: what failed, where, and what to do next.

    ``str(error)`` is a single line fit for a status bar.
    """

    def __init__(self, source: str, message: str, *, url: str = "", hint: str = "") -> None:
        self.source = source
        self.message = message
        self.url = url
        self.hint = hint
        super().__init__(self.summary())

    def redacted(self, redact: Callable[[str], str]) -> AdapterError:
        """This error with ``redact`` applied to its message, URL and hint (in place)."""
        self.message, self.url, self.hint = (
            redact(self.message),
            redact(self.url),
            redact(self.hint),
        )
        self.args = (self.summary(),)
        return self

    def summary(self) -> str:
        where = f" ({self.url})" if self.url else ""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{self.source}: {self.message}{where}{hint}"


#: The contract methods whose errors pass through the source's redaction.
CONTRACT_METHODS = frozenset(
    {
        "query",
        "query_by_label",
        "query_range",
        "alerts",
        "groups",
        "silences",
        "create_silence",
        "expire_silence",
        "models",
        "versions",
        "version",
        "alias",
        "set_alias",
        "state",
        "states",
        "set_state",
    }
)


def _redacting(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``method`` with every error it raises passed through the adapter's redaction:
    an AdapterError is redacted in place (its type and fields kept); any other
    exception becomes an AdapterError that names its type, redacted too."""

    @functools.wraps(method)
    async def redacting(self: Adapter, *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(self, *args, **kwargs)
        except AdapterError as exc:
            raise exc.redacted(self.redact) from None
        except Exception as exc:  # an adapter bug: its text may quote a credential
            raise AdapterError(
                self.name, self.redact(f"unexpected {exc.__class__.__name__}: {exc}")
            ) from None

    redacting.__redacting__ = True  # type: ignore[attr-defined]
    return redacting


def _go_on() -> None:
    """:attr:`Adapter.give_way` when nothing waits on the adapter's threads."""


class Adapter(ABC):
    """Base of every adapter.

    Subclasses set :attr:`kind` and implement the matching contract below.
    ``name`` is the source's name in the config (``prometheus``, ``prod-am``).

    **Errors are redacted here, for every adapter.** Each contract method a
    subclass defines (built-in or third-party) is wrapped when the class is
    created, so whatever it raises reaches the console only after
    :attr:`redact` (the source's :class:`~adapters.redaction.Redactor`) has
    masked every credential of its settings, in every form, and every
    ``user:password@``. Nothing an adapter raises can carry a secret into the
    snapshot, the store, the audit log, the screen or an export.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in CONTRACT_METHODS & set(vars(cls)):
            method = vars(cls)[name]
            if (
                inspect.iscoroutinefunction(method)
                and not getattr(method, "__isabstractmethod__", False)
                and not getattr(method, "__redacting__", False)
            ):
                setattr(cls, name, _redacting(method))

    kind: ClassVar[str]
    """What it provides: ``metrics``, ``alerts``, ``registry`` or ``switch``."""

    settings_model: ClassVar[type[SourceSettings]] = SourceSettings
    """The settings class the adapter accepts; adapters with extra options subclass it."""

    def __init__(self, name: str, settings: SourceSettings) -> None:
        self.name = name
        self.settings = settings
        #: Called by the adapter's worker threads between receiving an answer and
        #: parsing it. The console sets it to wait there while its UI answers a key:
        #: Python runs one thread at a time, and a parse would slow the key down.
        self.give_way: Callable[[], None] = _go_on

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release connections. Called once, when the console stops."""

    @functools.cached_property
    def redact(self) -> Redactor:
        """Masks this source's credentials (see :mod:`adapters.redaction`)."""
        return Redactor(settings_secrets(self.settings))

    def error(self, message: str, *, url: str = "", hint: str = "") -> AdapterError:
        return AdapterError(self.name, message, url=url, hint=hint).redacted(self.redact)


class MetricsAdapter(Adapter):
    """A source of PromQL answers (Prometheus, Thanos, Mimir, VictoriaMetrics...)."""

    kind = "metrics"

    @abstractmethod
    async def query(self, promql: str, at: float | None = None) -> QueryResult:
        """Evaluate an instant query. Raises :class:`AdapterError` on any failure."""

    async def query_by_label(self, promql: str, label: str) -> LabelValues:
        """Evaluate an instant query and read each series' value by its ``label``.

        The refresh asks this, once per SLI for every model. The default reads
        :meth:`query`; an adapter that can skip building a :class:`Sample` per series
        overrides it. Raises :class:`AdapterError` on any failure."""
        result = await self.query(promql)
        values: dict[str, float] = {}
        timestamp = 0.0
        unlabelled = 0
        for sample in result.samples:
            key = sample.labels.get(label)
            if key is None:
                unlabelled += 1
                continue
            values[key] = sample.value
            timestamp = max(timestamp, sample.timestamp)
        return LabelValues(promql, label, values, timestamp, result.warnings, unlabelled)

    @abstractmethod
    async def query_range(self, promql: str, start: float, end: float, step: float) -> RangeResult:
        """Evaluate a range query. Raises :class:`AdapterError` on any failure."""

    async def parse_error(self, promql: str) -> str | None:
        """Parse ``promql`` without evaluating it: the server's parse error, or None
        when it parses. Raises :class:`AdapterError` when the server cannot be asked,
        and NotImplementedError when the adapter has no parser to offer (the default)."""
        raise NotImplementedError(f"{self.name} cannot parse PromQL on its own")


class AlertsAdapter(Adapter):
    """A source of firing alerts and silences (Alertmanager)."""

    kind = "alerts"
    model_label = "model"
    """The label that names the model; the console sets it from its config, and the
    adapter gives it to each :class:`AlertRecord` it makes."""

    @abstractmethod
    async def alerts(self) -> tuple[AlertRecord, ...]:
        """Every alert the source knows, active, silenced and inhibited alike."""

    @abstractmethod
    async def groups(self) -> tuple[tuple[Mapping[str, str], tuple[AlertRecord, ...]], ...]:
        """Alerts as the source groups them: ``(group labels, alerts)`` pairs."""

    @abstractmethod
    async def silences(self) -> tuple[SilenceRecord, ...]:
        """Every silence the source holds, expired ones included."""

    @abstractmethod
    async def create_silence(
        self,
        matchers: tuple[Mapping[str, object], ...],
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
    ) -> str:
        """Create a silence; returns its ID. ``matchers`` use the API v2 shape
        ``{"name", "value", "isRegex", "isEqual"}``."""

    @abstractmethod
    async def expire_silence(self, silence_id: str) -> None:
        """Expire (end now) the silence with this ID."""


class RegistryAdapter(Adapter):
    """A model registry (MLflow): models, versions and the aliases that pick what serves."""

    kind = "registry"

    @abstractmethod
    async def models(self) -> tuple[RegisteredModel, ...]:
        """Every registered model with its aliases. Raises :class:`AdapterError`."""

    @abstractmethod
    async def versions(self, model: str) -> tuple[ModelVersion, ...]:
        """Every version of ``model``, newest first."""

    @abstractmethod
    async def version(self, model: str, version: str) -> ModelVersion | None:
        """One version, or None if the registry has no such version."""

    @abstractmethod
    async def alias(self, model: str, alias: str) -> str | None:
        """The version ``alias`` points at now (read fresh, never cached), or None."""

    @abstractmethod
    async def set_alias(self, model: str, alias: str, version: str) -> None:
        """Point ``alias`` at ``version``. Registries have no compare-and-set: callers
        read the alias first and read it back after."""


#: The default :meth:`SwitchAdapter.states` reads one target per request; this many at once.
SWITCH_READS_AT_ONCE = 8


class SwitchAdapter(Adapter):
    """An on/off control per target: a serving fallback, a pipeline's pause.

    ``target`` is usually a model name; what "on" means is the switch's to say
    (fallback serving on, pipeline paused).
    """

    kind = "switch"

    @abstractmethod
    async def state(self, target: str) -> bool:
        """Whether the switch is on for ``target`` now, read from the system."""

    async def states(self, targets: Sequence[str]) -> SwitchStates:
        """Every target's state in one sweep, as the console's refresh reads them.

        The default asks :meth:`state` per target, :data:`SWITCH_READS_AT_ONCE` at a
        time; an adapter whose system answers for every target at once overrides it
        with one request. A target that could not be read is in ``errors``; when none
        could be, the first failure is raised as an :class:`AdapterError` (the source
        is down, not merely partial)."""
        import asyncio  # here: the commands that only parse a config never load it

        gate = asyncio.Semaphore(SWITCH_READS_AT_ONCE)

        async def read(target: str) -> bool:
            async with gate:
                return await self.state(target)

        results = await asyncio.gather(*(read(t) for t in targets), return_exceptions=True)
        on = {t: r for t, r in zip(targets, results, strict=True) if isinstance(r, bool)}
        failed = [(t, r) for t, r in zip(targets, results, strict=True) if not isinstance(r, bool)]
        if failed and not on:
            first = failed[0][1]
            if isinstance(first, AdapterError):
                raise first
            raise AdapterError(self.name, f"{first.__class__.__name__}: {first}")
        return SwitchStates(on, {t: str(r) for t, r in failed})

    @abstractmethod
    async def set_state(self, target: str, on: bool) -> None:
        """Turn the switch on or off for ``target``."""
