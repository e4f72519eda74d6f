"""The console's configuration: typed models, and where to find the file.

The file is YAML, validated by the pydantic models below. Every field has a
docstring; ``config.example.yaml`` documents every key with an example. Loading
(with file:line:col error locations) lives in :mod:`console.config.loader`.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from adapters.settings import SourceSettings

# Re-exported (``as``): these names have always been importable from here.
from console.durations import DURATION_TEXT, parse_config_duration
from console.durations import SILENCE_RANGE as SILENCE_RANGE
from console.durations import format_duration as format_duration
from console.durations import parse_duration as parse_duration
from console.durations import parse_silence_duration as parse_silence_duration

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"

Duration = Annotated[float, BeforeValidator(parse_config_duration), Field(gt=0)]
"""A positive, finite length of time in seconds (``30``, ``"5m"``, ``"1h"``)."""
NonNegativeDuration = Annotated[float, BeforeValidator(parse_config_duration), Field(ge=0)]
"""Like :data:`Duration`, where 0 is allowed."""

_OBJECTIVE = re.compile(r"^\s*(<=|>=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True, slots=True)
class Objective:
    """An SLI's objective: the value is good while ``value OP threshold`` holds."""

    op: Literal["<", "<=", ">", ">="]
    threshold: float

    def met(self, value: float) -> bool:
        match self.op:
            case "<":
                return value < self.threshold
            case "<=":
                return value <= self.threshold
            case ">":
                return value > self.threshold
            case _:
                return value >= self.threshold

    @property
    def higher_is_better(self) -> bool:
        return self.op in (">", ">=")

    def __str__(self) -> str:
        return f"{self.op} {self.threshold:g}"


def parse_objective(raw: Any) -> Objective:
    if isinstance(raw, Objective):
        return raw
    if isinstance(raw, str) and (match := _OBJECTIVE.match(raw)):
        op, threshold = match.group(1), match.group(2)
        try:
            value = float(threshold)
        except ValueError:
            pass
        else:
            if not math.isfinite(value):
                raise ValueError(f"{raw!r}: an objective's threshold must be a finite number")
            return Objective(op, value)  # type: ignore[arg-type]
        if DURATION_TEXT.match(threshold):  # "< 15m" for a seconds SLI
            return Objective(op, parse_duration(threshold))  # type: ignore[arg-type]
    raise ValueError(f"{raw!r} is not an objective; write it like '< 0.2' or '>= 0.999'")


ObjectiveField = Annotated[Objective, BeforeValidator(parse_objective)]


class SourceConfig(SourceSettings):
    """One external system the console polls, and how often."""

    model_config = ConfigDict(extra="forbid", defer_build=True)  # built within Config

    type: str = Field(pattern=NAME_PATTERN)
    """Adapter type, as registered in the ``mlconsole.adapters`` entry-point group
    (built in: ``prometheus``, ``alertmanager``, ``mlflow``, ``http-switch``)."""
    interval: Duration = 5.0
    """Seconds between two refreshes of this source. Refreshes of one source never overlap."""
    stale_after: Duration | None = None
    """Show the source as stale when its last success is older than this
    (default: three intervals)."""
    enabled: bool = True
    """Set to false to keep an entry in the file without polling it."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Adapter-specific settings (e.g. an ``http-switch``'s requests), checked by the
    adapter's own settings model when the source is loaded."""

    @property
    def stale_seconds(self) -> float:
        return self.stale_after if self.stale_after is not None else 3 * self.interval


class SloConfig(BaseModel):
    """A service level objective over an SLI, for burn rates."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    target: float = Field(gt=0, lt=1)
    """Share of good events the SLO promises, e.g. ``0.99``; the error budget is ``1 - target``."""
    window: Duration = 30 * 86400.0
    """The SLO's compliance window, e.g. ``30d``. Shown with the burn rate."""
    error_ratio_query: str | None = None
    """PromQL returning the bad-event ratio per model over the burn-rate window. If
    omitted, a ``ratio`` SLI's own value is used (``1 - value`` when higher is better)."""


class SliConfig(BaseModel):
    """One service level indicator, read for every model with one PromQL query."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: str = Field(pattern=NAME_PATTERN)
    """Short unique id, e.g. ``error_ratio``."""
    title: str = ""
    """Column heading on the dashboard (defaults to the name)."""
    query: str = Field(min_length=1)
    """PromQL returning one series per model, e.g. ``... by (model)``."""
    objective: ObjectiveField
    """Good while ``value OP threshold`` holds, e.g. ``< 0.01`` or ``>= 0.999``."""
    unit: Literal["ratio", "percent", "seconds", "psi", "count", "score"] = "ratio"
    """How values are shown: ratio as %, seconds as ms/s, others as numbers."""
    slo: SloConfig | None = None
    """Optional SLO; with it the dashboard shows the burn rate."""
    source: str | None = None
    """Name of the metrics source to query (default: the only one configured)."""

    @property
    def label(self) -> str:
        return self.title or self.name


class UiConfig(BaseModel):
    """How the dashboard looks and behaves."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    history: Duration = 600.0
    """How far back the sparklines reach."""
    history_points: int = Field(default=30, ge=2, le=500)
    """Points kept per SLI and model for the sparklines."""
    theme: str = "textual-dark"
    """Textual theme name."""


def _file_not_directory(raw: Any) -> Any:
    """A path written as a directory (``state/``) is refused where a file is meant."""
    if isinstance(raw, str) and raw.endswith(("/", os.sep)):
        raise ValueError(
            f"{raw!r} names a directory; name the SQLite file in it, like {raw}FILE.db"
        )
    return raw


class StoreConfig(BaseModel):
    """Where incidents, runbook walks and their evidence are kept."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    path: Annotated[Path | None, BeforeValidator(_file_not_directory)] = None
    """SQLite file (default ``$XDG_STATE_HOME/mlconsole/store.db``). Point every
    responder's console at the same file to share walks. It names a file, never a
    directory (the audit log goes beside it, as ``audit.db``)."""


class RunbooksConfig(BaseModel):
    """Where runbooks are found."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    paths: list[Path] = Field(default_factory=list)
    """Directories of ``*.yaml`` runbooks, searched before the shipped ones; a runbook
    here replaces a shipped one with the same id."""
    shipped: bool = True
    """Also use the runbooks that ship with mlconsole."""
    recheck_after: Duration = 60.0
    """A walk opened when its newest check reading is older than this runs its checks
    again first (the earlier readings stay as evidence). Pre-triage reads the checks
    when the page arrives; a responder who opens the walk later sees fresh values."""


class VerifyConfig(BaseModel):
    """How a mitigation is judged after it is applied."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    sli: str = "error_ratio"
    """The SLI to watch. Its SLO's ``error_ratio_query`` (the short burn-rate window)
    is read when it has one, since it recovers fastest; otherwise its own query."""
    window: Duration = 300.0
    """How long to watch before reporting "not recovered"."""
    every: Duration = 2.0
    """Seconds between two reads of the SLI while watching."""
    consecutive: int = Field(default=2, ge=1, le=100)
    """Good reads in a row that count as recovered."""


class ActionsConfig(BaseModel):
    """Mitigations: which sources they act through, and how they are checked."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    read_only: bool = False
    """Remove every mutation: mitigation keys are hidden and the CLI refuses.
    ``--read-only`` on the command line sets it too."""
    registry: str | None = None
    """The ``registry`` source rollbacks go through (default: the only one configured)."""
    alias: str = "champion"
    """The registry alias that names the serving version."""
    fallback: str | None = None
    """The ``switch`` source that turns a model's rule-based fallback on and off."""
    pipeline: str | None = None
    """The ``switch`` source that pauses and resumes a model's retraining pipeline."""
    silences: str | None = None
    """The alerts source silences are created in (default: the only one configured)."""
    silence_duration: Annotated[float, BeforeValidator(parse_silence_duration)] = 3600.0
    """The silence length the console proposes (from 1m to 30d)."""
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    """How a mitigation's effect is checked."""
    audit_path: Annotated[Path | None, BeforeValidator(_file_not_directory)] = None
    """The audit log's SQLite file (default: ``audit.db`` beside the store)."""
    actor: str | None = None
    """Who the audit log names (default: ``$MLCONSOLE_ACTOR``, else ``user@host``)."""


class IncidentsConfig(BaseModel):
    """When incidents open, and where their exports go."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    auto_open: bool = True
    """Open an incident as soon as an alert group (model + alert name) fires. When
    false, incidents open only by key (``a`` or ``i``) or ``mlconsole incident open``."""
    severities: list[str] = Field(default_factory=list)
    """Only alerts with one of these ``severity`` labels open incidents by themselves
    (default: every severity)."""
    end_grace: NonNegativeDuration = 30.0
    """How long an alert must be missing from every alerts source before its end is
    recorded (at the first miss): a restarting Alertmanager, or a replica that has not
    heard of the alert yet, is not an alert that stopped."""
    auto_resolve_after: NonNegativeDuration | None = 3600.0
    """Resolve an open incident by itself once every one of its alerts has stopped
    firing for this long (``mlconsole`` resolves it, and its timeline says why).
    0 or null: never; incidents then wait for someone to resolve them."""
    breach_lookback: Duration = 3600.0
    """How far before an alert fired to look in Prometheus for its SLI's first breach."""
    export_dir: Path | None = None
    """Where ``e`` writes exports (default: the current directory)."""


class Config(BaseModel):
    """The whole configuration file."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    version: Literal[1] = 1
    """Schema version of this file."""
    sources: dict[Annotated[str, Field(pattern=NAME_PATTERN)], SourceConfig] = Field(min_length=1)
    """The systems to poll, by name."""
    model_label: str = Field(default="model", pattern=NAME_PATTERN)
    """The label that names the model in every SLI series and alert."""
    slis: list[SliConfig] = Field(default_factory=list)
    """The SLIs shown for every model."""
    ui: UiConfig = Field(default_factory=UiConfig)
    """Dashboard settings."""
    store: StoreConfig = Field(default_factory=StoreConfig)
    """The store for walks and evidence."""
    runbooks: RunbooksConfig = Field(default_factory=RunbooksConfig)
    """Runbook directories."""
    actions: ActionsConfig = Field(default_factory=ActionsConfig)
    """Mitigations and their audit log."""
    incidents: IncidentsConfig = Field(default_factory=IncidentsConfig)
    """Incidents: when they open, and where exports go."""

    def problems(self) -> list[tuple[tuple[str | int, ...], str, str]]:
        """Cross-field problems as ``(location, message, hint)``; the loader locates them."""
        found: list[tuple[tuple[str | int, ...], str, str]] = []
        seen: set[str] = set()
        metrics = [name for name, src in self.sources.items() if src.type == "prometheus"]
        for index, sli in enumerate(self.slis):
            if sli.name in seen:
                found.append(
                    (
                        (("slis", index, "name")),
                        f"SLI name {sli.name!r} is used twice",
                        "give each SLI a unique name",
                    )
                )
            seen.add(sli.name)
            if sli.source is not None and sli.source not in self.sources:
                found.append(
                    (
                        ("slis", index, "source"),
                        f"source {sli.source!r} is not in `sources`",
                        f"use one of: {', '.join(self.sources)}",
                    )
                )
            if sli.source is None and len(metrics) > 1:
                found.append(
                    (
                        ("slis", index),
                        "several metrics sources are configured",
                        "set `source:` on this SLI",
                    )
                )
        names = [sli.name for sli in self.slis]
        acting = self.actions.registry or self.actions.fallback
        if acting and names and self.actions.verify.sli not in names:
            found.append(
                (
                    ("actions", "verify", "sli"),
                    f"SLI {self.actions.verify.sli!r} is not among `slis`",
                    f"use one of: {', '.join(names)}",
                )
            )
        for loc, path, name in (
            (("store", "path"), self.store.path, "store.db"),
            (("actions", "audit_path"), self.actions.audit_path, "audit.db"),
        ):
            if path is not None and path.is_dir():
                found.append(
                    (
                        loc,
                        f"{str(path)!r} is a directory, not a SQLite file",
                        f"name the file in it, like {path / name}",
                    )
                )
        for key in ("registry", "fallback", "pipeline", "silences"):
            ref = getattr(self.actions, key)
            if ref is not None and ref not in self.sources:
                found.append(
                    (
                        ("actions", key),
                        f"source {ref!r} is not in `sources`",
                        f"use one of: {', '.join(self.sources)}",
                    )
                )
        return found

    def metrics_source_for(self, sli: SliConfig) -> str | None:
        """The name of the source that answers this SLI's query."""
        if sli.source is not None:
            return sli.source
        metrics = [name for name, src in self.sources.items() if src.type == "prometheus"]
        return metrics[0] if metrics else None
