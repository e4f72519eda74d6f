"""The plain data types adapters return: query answers, alerts and silences,
registered models and their versions, and a sweep of a switch's states.

They hold no behaviour beyond reading their own fields. The contract classes in
:mod:`adapters.base` return them, and they stay importable from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Sample:
    """One series of an instant vector: its labels and its value.

    NaN and ±Inf arrive from Prometheus as strings and are kept as floats.
    """

    labels: Mapping[str, str]
    value: float
    timestamp: float


@dataclass(frozen=True, slots=True)
class QueryResult:
    """The answer to an instant query. ``warnings`` non-empty means partial data."""

    query: str
    samples: tuple[Sample, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelValues:
    """An instant query's answer read by one label: each series' value under the value
    of that label (``{"fraud-detector": 0.031, ...}`` for ``model``).

    The bulk form of :class:`QueryResult`, for the refresh that reads one series per
    model from every SLI query: no object per series. Series without the label are
    left out (``unlabelled`` counts them); when two series share a label value, the
    later one in the answer wins. NaN and ±Inf are kept as floats.
    """

    query: str
    label: str
    values: Mapping[str, float]
    timestamp: float
    """When the values were evaluated: an instant vector's samples all carry the
    evaluation time (the newest sample's timestamp when they differ; 0 when empty)."""
    warnings: tuple[str, ...] = ()
    unlabelled: int = 0


@dataclass(frozen=True, slots=True)
class RangeSeries:
    """One series of a range query: labels and ``(timestamp, value)`` points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class RangeResult:
    """The answer to a range query. ``warnings`` non-empty means partial data."""

    query: str
    series: tuple[RangeSeries, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert as Alertmanager reports it (API v2)."""

    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None
    updated_at: datetime | None
    state: str
    """``active``, ``suppressed`` or ``unprocessed``."""
    generator_url: str = ""
    silenced_by: tuple[str, ...] = ()
    inhibited_by: tuple[str, ...] = ()
    receivers: tuple[str, ...] = field(default=())
    model_label: str = "model"
    """The label that names the model (the config's ``model_label``)."""

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def model(self) -> str:
        return self.labels.get(self.model_label, "")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def summary(self) -> str:
        return self.annotations.get("summary") or self.annotations.get("description", "")


@dataclass(frozen=True, slots=True)
class SilenceRecord:
    """One silence as Alertmanager reports it (API v2)."""

    id: str
    matchers: tuple[Mapping[str, object], ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    state: str
    """``active``, ``pending`` or ``expired``."""


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """One registered model and where its aliases point (``{"champion": "7"}``)."""

    name: str
    aliases: Mapping[str, str]
    tags: Mapping[str, str] = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One version of a registered model."""

    model: str
    version: str
    created_at: datetime | None
    tags: Mapping[str, str] = field(default_factory=dict)
    status: str = ""
    """The registry's own status, e.g. ``READY``."""
    source: str = ""
    run_id: str = ""

    @property
    def number(self) -> int:
        """The version as an int for ordering (-1 when it is not a number)."""
        return int(self.version) if self.version.isdigit() else -1


@dataclass(frozen=True, slots=True)
class SwitchStates:
    """A sweep's read of a switch: on or off per target, and why a target could not
    be read (its message, for the source's warnings)."""

    on: Mapping[str, bool]
    errors: Mapping[str, str] = field(default_factory=dict)
