"""The immutable picture of the world that every screen and command renders.

A :class:`Snapshot` is built by the poller after each source refresh and
never changes afterwards: screens can keep it, compare it and render it from
any thread without locks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from adapters.records import AlertRecord
from console.config.models import SliConfig
from console.sources.sli import SliReading, SliStatus
from console.times import iso, seconds_of


class Health(StrEnum):
    """How a source is doing, as shown in the header."""

    PENDING = "pending"
    """Not answered yet since start."""
    OK = "ok"
    STALE = "stale"
    """Answered before, but not for longer than its ``stale_after``."""
    DOWN = "down"
    """The last attempt failed."""


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """One source's health: last success, last error, and the age of its data."""

    name: str
    type: str
    interval: float
    stale_after: float
    last_success: float | None = None
    last_attempt: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    warnings: tuple[str, ...] = ()
    """Partial-data warnings or per-query errors from the last refresh."""

    def state(self, now: float) -> Health:
        if self.last_error_at is not None and (
            self.last_success is None or self.last_error_at >= self.last_success
        ):
            return Health.DOWN
        if self.last_success is None:
            return Health.PENDING
        if now - self.last_success > self.stale_after:
            return Health.STALE
        return Health.OK

    def age(self, now: float) -> float | None:
        """Seconds since the data last came in, or None if it never did."""
        return None if self.last_success is None else max(0.0, now - self.last_success)

    def as_dict(self, now: float) -> dict[str, object]:
        return {
            "name": self.name,
            "type": self.type,
            "interval": self.interval,
            "stale_after": self.stale_after,
            "state": self.state(now).value,
            "age_seconds": self.age(now),
            "last_success": iso(self.last_success),
            "last_attempt": iso(self.last_attempt),
            "last_error": self.last_error,
            "last_error_at": iso(self.last_error_at),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where one model's alias points, since when, and where it pointed before."""

    model: str
    alias: str
    version: str | None
    since: float
    """When the console first saw the alias at this version (unix seconds)."""
    previous: str | None
    """The version the alias held before, if the console saw it."""
    first_seen: bool
    """True when the console has seen no change yet: ``since`` is only when it looked."""

    def as_dict(self) -> dict[str, object]:
        return {
            "alias": self.alias,
            "version": self.version,
            "since": iso(self.since),
            "previous": self.previous,
            "first_seen": self.first_seen,
        }


def is_firing(alert: AlertRecord) -> bool:
    """Active and not silenced or inhibited: the alerts that page someone."""
    return alert.state == "active"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the console knows at one moment."""

    taken_at: float
    slis: tuple[SliConfig, ...]
    models: tuple[str, ...]
    readings: Mapping[tuple[str, str], SliReading]
    """Keyed by ``(model, sli name)``."""
    alerts: tuple[AlertRecord, ...]
    sources: Mapping[str, SourceHealth]
    model_label: str = "model"
    deployments: Mapping[str, Deployment] = field(default_factory=dict)
    """Where each model's serving alias points, from the registry and the alias history."""
    switches: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)
    """Switch states by role (``fallback``, ``pipeline``), then by model: True is on."""
    _by_model: Mapping[str, tuple[AlertRecord, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        *,
        taken_at: float,
        slis: tuple[SliConfig, ...],
        readings: Mapping[tuple[str, str], SliReading],
        alerts: tuple[AlertRecord, ...],
        sources: Mapping[str, SourceHealth],
        model_label: str = "model",
        deployments: Mapping[str, Deployment] | None = None,
        switches: Mapping[str, Mapping[str, bool]] | None = None,
        known: Iterable[str] = (),
        reading_models: Set[str] | None = None,
        previous: Snapshot | None = None,
    ) -> Snapshot:
        """``known``: models seen before (an earlier session's registry reads), listed
        even while no source names them now.

        For a refresh that changed one source, two shortcuts keep the cost to what
        changed: ``reading_models``, the models ``readings`` name when the caller keeps
        them (saves a pass over every reading), and ``previous``, the snapshot before:
        when ``alerts`` is the very tuple it was built from, its alert index is kept."""
        # Every alert names its model by the configured label, whatever made it.
        if any(a.model_label != model_label for a in alerts):
            alerts = tuple(
                a if a.model_label == model_label else replace(a, model_label=model_label)
                for a in alerts
            )
        if (
            previous is not None
            and previous.alerts is alerts
            and previous.model_label == model_label
        ):
            by_model_index = previous._by_model
        else:
            by_model: dict[str, list[AlertRecord]] = {}
            for alert in sorted(alerts, key=lambda a: (a.labels.get(model_label, ""), a.name)):
                by_model.setdefault(alert.labels.get(model_label, ""), []).append(alert)
            by_model_index = MappingProxyType({m: tuple(a) for m, a in by_model.items()})
        if reading_models is None:
            reading_models = {model for model, _ in readings}
        # The registry's models too: while the metrics are down (or before they first
        # answer) a model stays on screen, its SLIs unknown, and the keys still act on it.
        names = set(reading_models).union(deployments or (), known)
        names.update(m for m in by_model_index if m)
        models = tuple(sorted(names))
        if previous is not None and previous.models == models:
            models = previous.models  # the same tuple: a screen can see nothing moved
        return cls(
            taken_at=taken_at,
            slis=slis,
            models=models,
            readings=MappingProxyType(dict(readings)),
            alerts=alerts,
            sources=MappingProxyType(dict(sources)),
            model_label=model_label,
            deployments=MappingProxyType(dict(deployments or {})),
            switches=MappingProxyType({k: dict(v) for k, v in (switches or {}).items()}),
            _by_model=by_model_index,
        )

    def reading(self, model: str, sli: str) -> SliReading | None:
        return self.readings.get((model, sli))

    def alerts_for(self, model: str) -> tuple[AlertRecord, ...]:
        return self._by_model.get(model, ())

    @property
    def alerts_by_model(self) -> Mapping[str, tuple[AlertRecord, ...]]:
        return self._by_model

    @property
    def firing(self) -> tuple[AlertRecord, ...]:
        return tuple(a for a in self.alerts if is_firing(a))

    def unreachable(self, now: float) -> list[SourceHealth]:
        return [s for s in self.sources.values() if s.state(now) is Health.DOWN]

    def as_dict(self, now: float) -> dict[str, object]:
        """A JSON-ready view, as ``mlconsole status --json`` prints it."""
        return {
            "taken_at": iso(self.taken_at),
            "sources": {name: h.as_dict(now) for name, h in self.sources.items()},
            "slis": [
                {
                    "name": s.name,
                    "title": s.label,
                    "objective": str(s.objective),
                    "unit": s.unit,
                    "slo_target": s.slo.target if s.slo else None,
                }
                for s in self.slis
            ],
            "models": {
                model: {
                    "slis": {
                        s.name: r.as_dict()
                        for s in self.slis
                        if (r := self.readings.get((model, s.name))) is not None
                    },
                    "alerts": [alert_dict(a) for a in self.alerts_for(model)],
                    "serving": (d.as_dict() if (d := self.deployments.get(model)) else None),
                    "switches": {
                        role: states[model]
                        for role, states in self.switches.items()
                        if model in states
                    },
                }
                for model in self.models
            },
            "alerts": [alert_dict(a) for a in self.alerts],
        }


def alert_dict(alert: AlertRecord) -> dict[str, object]:
    return {
        "fingerprint": alert.fingerprint,
        "name": alert.name,
        "state": alert.state,
        "firing": is_firing(alert),
        "severity": alert.severity,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "starts_at": iso(alert.starts_at),
        "ends_at": iso(alert.ends_at),
        "updated_at": iso(alert.updated_at),
        "generator_url": alert.generator_url,
        "silenced_by": list(alert.silenced_by),
        "inhibited_by": list(alert.inhibited_by),
    }


def _time(raw: object) -> datetime | None:
    seconds = seconds_of(raw)
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def snapshot_from_dict(
    data: Mapping[str, Any], slis: tuple[SliConfig, ...], model_label: str = "model"
) -> Snapshot:
    """Rebuild a snapshot from :meth:`Snapshot.as_dict`: replay through the live renderers."""
    sources = {
        name: SourceHealth(
            name=h["name"],
            type=h["type"],
            interval=h["interval"],
            stale_after=h["stale_after"],
            last_success=seconds_of(h.get("last_success")),
            last_attempt=seconds_of(h.get("last_attempt")),
            last_error=h.get("last_error"),
            last_error_at=seconds_of(h.get("last_error_at")),
            warnings=tuple(h.get("warnings") or ()),
        )
        for name, h in data["sources"].items()
    }
    readings = {
        (model, r["sli"]): SliReading(
            sli=r["sli"],
            model=model,
            value=r["value"],
            status=SliStatus(r["status"]),
            burn_rate=r.get("burn_rate"),
            history=tuple(r.get("history") or ()),
            error=r.get("error"),
        )
        for model, entry in data["models"].items()
        for r in entry["slis"].values()
    }
    alerts = tuple(
        AlertRecord(
            fingerprint=a["fingerprint"],
            labels=a["labels"],
            annotations=a["annotations"],
            starts_at=datetime.fromtimestamp(seconds_of(a["starts_at"]) or 0.0, UTC),
            ends_at=_time(a.get("ends_at")),
            updated_at=_time(a.get("updated_at")),
            state=a["state"],
            generator_url=a.get("generator_url", ""),
            silenced_by=tuple(a.get("silenced_by", ())),
            inhibited_by=tuple(a.get("inhibited_by", ())),
        )
        for a in data["alerts"]
    )
    deployments = {
        model: Deployment(
            model=model, **{**entry["serving"], "since": seconds_of(entry["serving"]["since"])}
        )
        for model, entry in data["models"].items()
        if entry.get("serving")
    }
    switches: dict[str, dict[str, bool]] = {}
    for model, entry in data["models"].items():
        for role, on in (entry.get("switches") or {}).items():
            switches.setdefault(role, {})[model] = bool(on)
    return Snapshot.build(
        taken_at=seconds_of(data["taken_at"]) or 0.0,
        slis=slis,
        readings=readings,
        alerts=alerts,
        sources=sources,
        model_label=model_label,
        deployments=deployments,
        switches=switches,
    )
