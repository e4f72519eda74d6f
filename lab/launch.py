"""What each of the lab's components runs: its server found on PATH (MLflow in the
repository's venv), its config written into the state dir, and its command line and
environment; and the process that seeds MLflow when ``up`` does not wait.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from lab import configs, procs, scale
from lab.catalog import HOST, SCALE_HISTORY, SCALE_STEP
from lab.errors import LabError
from lab.state import LabInfo

#: Debian names Alertmanager's binary prometheus-alertmanager; upstream calls it alertmanager.
_BINARIES: dict[str, tuple[str, ...]] = {
    "prometheus": ("prometheus",),
    "alertmanager": ("prometheus-alertmanager", "alertmanager"),
    "victoria": ("victoria-metrics",),
}
#: The Debian package of each server.
_PACKAGES = {
    "prometheus": "prometheus",
    "alertmanager": "prometheus-alertmanager",
    "victoria": "victoria-metrics",
}
#: Overrides where the MLflow executable is; by default the repository's .venv-mlflow.
MLFLOW_ENV = "MLCONSOLE_MLFLOW"
DEFAULT_MLFLOW = configs.PACKAGE_DIR.parent / ".venv-mlflow" / "bin" / "mlflow"


def find_binaries(registry: bool = True) -> dict[str, str]:
    found = find_servers(("prometheus", "alertmanager"))
    if registry:
        found["mlflow"] = mlflow_binary()
    return found


def find_servers(servers: Sequence[str]) -> dict[str, str]:
    """Each of ``servers`` (components) on PATH, or a LabError naming the packages."""
    found: dict[str, str] = {}
    for component, names in _BINARIES.items():
        if component not in servers:
            continue
        path = next((p for p in map(shutil.which, names) if p), None)
        if path is None:
            packages = " ".join(_PACKAGES[c] for c in servers)
            raise LabError(
                f"{' or '.join(names)} not found on PATH "
                f"(on Debian/Ubuntu: apt-get install {packages}, or bash scripts/setup.sh)"
            )
        found[component] = path
    return found


def mlflow_binary() -> str:
    """The MLflow executable: ``$MLCONSOLE_MLFLOW``, else the repository's .venv-mlflow."""
    configured = os.environ.get(MLFLOW_ENV)
    candidate = configured or str(DEFAULT_MLFLOW)
    path = shutil.which(candidate)
    if path is None:
        where = f"${MLFLOW_ENV}={configured}" if configured else str(DEFAULT_MLFLOW)
        raise LabError(
            f"MLflow not found ({where} is not an executable); run `bash scripts/setup.sh` "
            f"to install it, or start the lab without it: mlconsole lab up --no-registry"
        )
    return path


def prepare(
    info: LabInfo, binaries: dict[str, str]
) -> dict[str, tuple[list[str], dict[str, str] | None]]:
    """Render configs into the state dir; return each component's argv and environment."""
    root, ports = info.state_dir, info.ports
    data = root / "data"
    # Old series and alert states from a previous run would confuse the new one; they
    # were kept after `down` for inspection and are dropped now.
    for sub in ("prometheus", "alertmanager", "mlflow"):
        shutil.rmtree(data / sub, ignore_errors=True)
        (data / sub).mkdir(parents=True)
    rules = configs.install_rules(root / "rules")
    (root / "prometheus.yml").write_text(configs.prometheus_config(ports, rules), encoding="utf-8")

    env = _lab_env()
    env["PYTHONUNBUFFERED"] = "1"
    service = [
        sys.executable, "-m", "lab.service",
        "--host", HOST,
        "--port", str(ports.service),
        "--models", str(len(info.models)),
        "--state-dir", str(root),
    ]  # fmt: skip
    if info.registry:
        service += ["--registry", ports.url("mlflow")]
    prometheus = [
        binaries["prometheus"],
        f"--config.file={root / 'prometheus.yml'}",
        f"--storage.tsdb.path={data / 'prometheus'}",
        f"--web.listen-address={HOST}:{ports.prometheus}",
        f"--web.external-url={ports.url('prometheus')}/",
        "--storage.tsdb.retention.time=1h",
    ]
    commands: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "service": (service, env),
        "alertmanager": (_alertmanager_command(info, binaries["alertmanager"]), None),
        "prometheus": (prometheus, None),
    }
    if info.registry:
        commands["mlflow"] = _mlflow_command(info, binaries["mlflow"], data / "mlflow")
    return commands


def _alertmanager_command(info: LabInfo, binary: str) -> list[str]:
    """Alertmanager on loopback, its config written into the state dir."""
    root, ports = info.state_dir, info.ports
    (root / "alertmanager.yml").write_text(configs.alertmanager_config(), encoding="utf-8")
    return [
        binary,
        f"--config.file={root / 'alertmanager.yml'}",
        f"--storage.path={root / 'data' / 'alertmanager'}",
        f"--web.listen-address={HOST}:{ports.alertmanager}",
        f"--web.external-url={ports.url('alertmanager')}/",
        # Empty turns off the gossip listener, which would otherwise bind 0.0.0.0:9094.
        "--cluster.listen-address=",
    ]


def prepare_scale(
    info: LabInfo, binaries: dict[str, str], breaching: float, feed_interval: float
) -> dict[str, tuple[list[str], dict[str, str] | None]]:
    """The scale lab's commands: VictoriaMetrics, Alertmanager and the feeder."""
    root, ports = info.state_dir, info.ports
    data = root / "data"
    for sub in ("victoria", "alertmanager"):
        shutil.rmtree(data / sub, ignore_errors=True)
        (data / sub).mkdir(parents=True)
    (root / scale.STATE_NAME).unlink(missing_ok=True)
    victoria = [
        binaries["victoria"],
        f"-storageDataPath={data / 'victoria'}",
        f"-httpListenAddr={HOST}:{ports.victoria}",
        "-retentionPeriod=1",
        # By default the newest 30 s are hidden from queries as possibly incomplete; the
        # feeder writes each tick whole, and the console should see it at once.
        "-search.latencyOffset=1s",
        # The history is imported after start-up: no range query may be answered from
        # a cache filled before it arrived.
        "-search.disableCache",
    ]
    env = _lab_env()
    env["PYTHONUNBUFFERED"] = "1"
    feeder = [
        sys.executable, "-m", "lab.scale",
        "--victoria", ports.url("victoria"),
        "--alertmanager", ports.url("alertmanager"),
        "--models", str(len(info.models)),
        "--breaching", repr(breaching),
        "--interval", repr(feed_interval),
        "--history", repr(SCALE_HISTORY),
        "--step", repr(SCALE_STEP),
        "--state-dir", str(root),
    ]  # fmt: skip
    return {
        "victoria": (victoria, None),
        "alertmanager": (_alertmanager_command(info, binaries["alertmanager"]), None),
        "feeder": (feeder, env),
    }


def _mlflow_command(
    info: LabInfo, binary: str, data: Path
) -> tuple[list[str], dict[str, str] | None]:
    """MLflow in its lean form: one worker, SQLite, no job runner, no telemetry."""
    argv = [
        binary, "server",
        "--host", HOST,
        "--port", str(info.ports.mlflow),
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{data / 'mlflow.db'}",
        "--default-artifact-root", str(data / "artifacts"),
        # The service polls every second; a log line per request would bury the rest.
        "--uvicorn-opts", "--no-access-log",
    ]  # fmt: skip
    # MLflow runs from its own venv: nothing of ours may leak into its imports.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    return argv, env


def _lab_env() -> dict[str, str]:
    """The environment of the lab's Python processes: they must import this very lab
    package, installed or not."""
    env = dict(os.environ)
    package_parent = str(configs.PACKAGE_DIR.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    return env


def seed_in_background(info: LabInfo, timeout: float) -> None:
    """Without waiting, MLflow is seeded by a process of its own once it is healthy."""
    env = _lab_env()
    argv = [
        sys.executable, "-m", "lab.registry",
        "--url", info.ports.url("mlflow"),
        "--models", str(len(info.models)),
        "--wait", str(max(timeout, 120.0)),
    ]  # fmt: skip
    procs.spawn(argv, info.state_dir / "logs" / "registry-seed.log", env=env, cwd=info.state_dir)
