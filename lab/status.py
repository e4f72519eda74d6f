"""The lab as seen right now: each component's pid, liveness, readiness and URL,
and what the model service reports (``mlconsole lab status``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import procs, readiness, scale, state
from lab.paths import resolve_state_dir


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """One component of the lab as seen right now."""

    name: str
    pid: int | None
    alive: bool
    ready: bool
    url: str
    log: str | None


@dataclass(slots=True)
class LabStatus:
    """The lab as seen right now."""

    state_dir: Path
    #: Whether a lab is recorded in the state dir (it may still be dead or degraded).
    recorded: bool
    components: list[ComponentStatus] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    #: Active faults as the service reports them (None if it cannot be asked).
    faults: list[dict[str, Any]] | None = None
    config_path: Path | None = None
    #: MLflow's URL, or None if the lab runs without a registry.
    mlflow_url: str | None = None
    #: Per model, what the service serves: version, label, fallback, paused (None if
    #: the service cannot be asked).
    serving: dict[str, dict[str, Any]] | None = None
    #: Why the service last failed to read the registry (None: it did not fail).
    registry_error: str | None = None
    #: ``simulation``, or ``scale`` for the VictoriaMetrics lab of synthetic series.
    mode: str = "simulation"
    #: The scale lab's feeder record (models, breaching, series, samples imported,
    #: import seconds, last append, alerts); None in the simulation or before it wrote.
    scale: dict[str, Any] | None = None

    @property
    def healthy(self) -> bool:
        """Recorded, and every component alive and ready."""
        return self.recorded and all(c.alive and c.ready for c in self.components)

    def to_json(self, iso: Callable[[float], str | None]) -> dict[str, Any]:
        """A JSON-ready dict; a fault's ``since`` written by ``iso`` (the command line
        passes the one way every ``--json`` writes a time)."""
        return {
            "state_dir": str(self.state_dir),
            "up": self.recorded,
            "healthy": self.healthy,
            "mode": self.mode,
            "scale": self.scale,
            "config": None if self.config_path is None else str(self.config_path),
            "mlflow_url": self.mlflow_url,
            "models": self.models,
            "faults": (
                None
                if self.faults is None
                else [
                    {**f, "since": iso(f["since"])}
                    if isinstance(f.get("since"), int | float)
                    else f
                    for f in self.faults
                ]
            ),
            "serving": self.serving,
            "registry_error": self.registry_error,
            "components": {
                c.name: {
                    "pid": c.pid,
                    "alive": c.alive,
                    "ready": c.ready,
                    "url": c.url,
                    "log": c.log,
                }
                for c in self.components
            },
        }


def status(state_dir: Path | str | None = None) -> LabStatus:
    """Each component's pid, liveness, readiness and URL, plus the active faults."""
    root = resolve_state_dir(state_dir)
    info = state.load(root)
    if info is None:
        return LabStatus(state_dir=root, recorded=False)
    components = []
    for name in info.components:
        record = info.processes.get(name)
        alive = record is not None and procs.is_alive(record)
        components.append(
            ComponentStatus(
                name=name,
                pid=None if record is None else record.pid,
                alive=alive,
                ready=alive and readiness.answers(info, name),
                url=info.urls.get(name, f"{info.victoria_url}/api/v1/import"),
                log=None if record is None else record.log,
            )
        )
    config = info.config_path if info.config_path.exists() else None
    if info.scale:
        return LabStatus(
            root,
            True,
            components,
            info.models,
            config_path=config,
            mode=info.mode,
            scale=scale.read_state(root),
        )
    answer = readiness.service_state(info) or {}
    return LabStatus(
        root,
        True,
        components,
        info.models,
        answer.get("faults"),
        config,
        mlflow_url=info.mlflow_url,
        serving=answer.get("serving"),
        registry_error=(answer.get("registry") or {}).get("error"),
    )
