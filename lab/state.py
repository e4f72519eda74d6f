"""The lab's record of what it started (``lab.json``), and the lock around changing it."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.configs import Ports
from lab.procs import ProcessRecord

RECORD_NAME = "lab.json"
CONFIG_NAME = "mlconsole.yaml"
#: Components in start order: MLflow first since it takes longest to get ready, then
#: the service, so Prometheus' first scrape finds it.
COMPONENTS: tuple[str, ...] = ("mlflow", "service", "alertmanager", "prometheus")
#: The component a lab started with ``registry=False`` goes without.
REGISTRY_COMPONENT = "mlflow"
#: Components of the scale lab in start order: VictoriaMetrics and Alertmanager, then
#: the feeder that imports the synthetic series into one and posts alerts to the other.
SCALE_COMPONENTS: tuple[str, ...] = ("victoria", "alertmanager", "feeder")
_FORMAT = 1


def components(registry: bool, scale: bool = False) -> tuple[str, ...]:
    """The components of a lab with or without the model registry, or of the scale
    lab, in start order."""
    if scale:
        return SCALE_COMPONENTS
    return COMPONENTS if registry else tuple(c for c in COMPONENTS if c != REGISTRY_COMPONENT)


@dataclass(slots=True)
class LabInfo:
    """A running (or starting) lab: where it lives, what it runs, where to reach it."""

    state_dir: Path
    models: list[str]
    ports: Ports
    started_at: float
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    #: Whether ``up`` saw every component ready.
    ready: bool = False
    #: True when ``up`` found the lab already running and started nothing.
    already_running: bool = False
    #: Whether the lab runs MLflow, whose champion aliases say what the service serves.
    registry: bool = False
    #: Whether this is the scale lab: synthetic series in VictoriaMetrics, no service.
    scale: bool = False

    @property
    def components(self) -> tuple[str, ...]:
        """The lab's components, in start order."""
        return components(self.registry, self.scale)

    @property
    def mode(self) -> str:
        """``scale`` (VictoriaMetrics, synthetic series) or ``simulation``."""
        return "scale" if self.scale else "simulation"

    @property
    def config_path(self) -> Path:
        """The mlconsole configuration written for this lab."""
        return self.state_dir / CONFIG_NAME

    @property
    def prometheus_url(self) -> str:
        """Prometheus base URL."""
        return self.ports.url("prometheus")

    @property
    def victoria_url(self) -> str:
        """VictoriaMetrics base URL (the scale lab's metrics store)."""
        return self.ports.url("victoria")

    @property
    def metrics_url(self) -> str:
        """Where the console reads metrics: VictoriaMetrics in the scale lab, else Prometheus."""
        return self.victoria_url if self.scale else self.prometheus_url

    @property
    def alertmanager_url(self) -> str:
        """Alertmanager base URL."""
        return self.ports.url("alertmanager")

    @property
    def service_url(self) -> str:
        """Model service base URL."""
        return self.ports.url("service")

    @property
    def mlflow_url(self) -> str | None:
        """MLflow base URL, or None if the lab runs without a registry."""
        return self.ports.url("mlflow") if self.registry else None

    @property
    def urls(self) -> dict[str, str]:
        """Base URL of every component that listens on a port."""
        return {c: self.ports.url(c) for c in self.components if Ports.has(c)}

    @property
    def pids(self) -> dict[str, int]:
        """Process id of every started component."""
        return {name: rec.pid for name, rec in self.processes.items()}

    def to_json(self) -> dict[str, Any]:
        """The ``lab.json`` document."""
        return {
            "format": _FORMAT,
            "state_dir": str(self.state_dir),
            "started_at": self.started_at,
            "ready": self.ready,
            "registry": self.registry,
            "mode": self.mode,
            "models": self.models,
            "ports": {c: getattr(self.ports, c) for c in self.components if Ports.has(c)},
            "urls": self.urls,
            "config": str(self.config_path),
            "processes": {name: rec.to_json() for name, rec in self.processes.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabInfo:
        """Parse a ``lab.json`` document."""
        ports = data["ports"]
        processes = data.get("processes", {})
        registry = data.get("registry")
        return cls(
            state_dir=Path(data["state_dir"]),
            models=[str(m) for m in data["models"]],
            ports=Ports(**{c: int(port) for c, port in ports.items() if Ports.has(c)}),
            started_at=float(data["started_at"]),
            processes={name: ProcessRecord.from_json(rec) for name, rec in processes.items()},
            ready=bool(data.get("ready", False)),
            registry=REGISTRY_COMPONENT in processes if registry is None else bool(registry),
            scale=data.get("mode") == "scale",
        )


def record_path(state_dir: Path) -> Path:
    """Path of ``lab.json`` in ``state_dir``."""
    return state_dir / RECORD_NAME


def load(state_dir: Path) -> LabInfo | None:
    """The recorded lab in ``state_dir``, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads(record_path(state_dir).read_text(encoding="utf-8"))
        return LabInfo.from_json(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        # A torn or hand-edited record cannot be trusted to name our processes.
        return None


def save(info: LabInfo) -> None:
    """Write ``lab.json`` atomically (readers never see half a record)."""
    path = record_path(info.state_dir)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def remove(state_dir: Path) -> None:
    """Delete ``lab.json`` if present."""
    record_path(state_dir).unlink(missing_ok=True)


@contextlib.contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """Hold the state directory's lock, so two ``up``/``down`` never interleave."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
