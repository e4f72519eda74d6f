"""Start, stop, inspect and perturb the lab: the Python API behind ``mlconsole lab``.

>>> info = up(tmp_dir, models=3, ports=Ports(29090, 29093, 29100, 29500))  # doctest: +SKIP
>>> inject(tmp_dir, "bad-deploy")                                            # doctest: +SKIP
>>> down(tmp_dir)                                                            # doctest: +SKIP

With a registry (the default), the lab also runs MLflow: every model is registered
with versions 1-4 and a ``champion`` alias on 3, the model service serves whatever the
alias names, and ``bad-deploy`` is a real deploy: the alias moves to version 4.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import configs, procs, registry, scale, state, web
from lab.catalog import (
    BAD_VERSION,
    CHAMPION_ALIAS,
    DEFAULT_BREACHING,
    DEFAULT_FEED_INTERVAL,
    DEFAULT_MODELS,
    GOOD_VERSION,
    HOST,
    SCALE_HISTORY,
    SCALE_STEP,
    model_names,
)
from lab.configs import Ports
from lab.paths import default_state_dir
from lab.state import LabInfo

__all__ = [
    "ComponentStatus",
    "LabError",
    "LabInfo",
    "LabStatus",
    "Ports",
    "default_ports",
    "down",
    "inject",
    "load",
    "reset",
    "resolve_state_dir",
    "status",
    "up",
]

#: Called while ``up`` waits: the components not ready yet, and seconds elapsed.
Progress = Callable[[Sequence[str], float], None]

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
_LOG_TAIL_LINES = 20
#: Overrides where the MLflow executable is; by default the repository's .venv-mlflow.
MLFLOW_ENV = "MLCONSOLE_MLFLOW"
DEFAULT_MLFLOW = configs.PACKAGE_DIR.parent / ".venv-mlflow" / "bin" / "mlflow"
#: How long inject and reset wait for the service to serve what the registry now says.
_DEPLOY_WAIT_SECONDS = 20.0


class LabError(Exception):
    """Something the user must act on; the message says what."""


def default_ports() -> Ports:
    """The lab's default ports."""
    return Ports()


def resolve_state_dir(state_dir: Path | str | None) -> Path:
    """``state_dir`` as an absolute path, or the default one."""
    path = default_state_dir() if state_dir is None else Path(state_dir).expanduser()
    return path.resolve()


def load(state_dir: Path | str | None = None) -> LabInfo | None:
    """The lab recorded in ``state_dir`` (running or not), or None."""
    return state.load(resolve_state_dir(state_dir))


# -- up ---------------------------------------------------------------------------


def up(
    state_dir: Path | str | None = None,
    *,
    models: int = DEFAULT_MODELS,
    ports: Ports | None = None,
    wait: bool = True,
    timeout: float = 60.0,
    progress: Progress | None = None,
    registry: bool = True,
    scale: bool = False,
    breaching: float = DEFAULT_BREACHING,
    feed_interval: float = DEFAULT_FEED_INTERVAL,
) -> LabInfo:
    """Start the lab and, with ``wait``, return once every component is ready.

    Readiness means each component answers ``/-/ready`` (MLflow: ``/health``),
    Prometheus has scraped the model service, and, with ``registry``, MLflow is seeded
    with the models and the service serves their champions. Without ``wait``, a
    background process seeds MLflow once it is up. ``registry=False`` runs no MLflow
    (the service then keeps its built-in versions), for labs of a thousand models.

    ``scale=True`` starts the scale lab instead: VictoriaMetrics holding synthetic SLI
    series for ``models`` models (``breaching`` of them, a fraction, out of their
    objectives), Alertmanager with those models' alerts, and a feeder process that
    imports the history, then appends a point to every series every ``feed_interval``
    seconds (see :mod:`lab.scale`). It is ready once VictoriaMetrics answers every
    series. No model service, Prometheus or MLflow runs, so ``registry`` is ignored.

    If the lab is already running, nothing is started and the returned info has
    ``already_running`` set. On any failure, whatever was started is stopped again and
    :class:`LabError` says why (with the failing component's log tail).
    """
    if models < 1:
        raise LabError("--models must be at least 1")
    if not 0.0 <= breaching <= 1.0:
        raise LabError("--breaching must be a fraction between 0 and 1")
    if feed_interval <= 0:
        raise LabError("--feed-interval must be more than 0 seconds")
    registry = registry and not scale
    root = resolve_state_dir(state_dir)
    ports = ports or default_ports()
    with state.locked(root):
        existing = state.load(root)
        if existing is not None:
            alive = [procs.is_alive(r) for r in existing.processes.values()]
            if set(existing.processes) == set(existing.components) and all(alive):
                if existing.scale != scale:
                    raise LabError(
                        f"the {existing.mode} lab is already running in {root}; stop it "
                        f"first (mlconsole lab down), or use another --state-dir"
                    )
                existing.already_running = True
                return existing
            # Leftovers of a crashed or interrupted lab: clear them, then start afresh.
            procs.stop(existing.processes.values())
            state.remove(root)

        binaries = (
            _find_servers(("victoria", "alertmanager")) if scale else _find_binaries(registry)
        )
        info = LabInfo(
            state_dir=root,
            models=scale_model_names(models) if scale else model_names(models),
            ports=ports,
            started_at=time.time(),
            registry=registry,
            scale=scale,
        )
        _check_ports(ports, info.components)
        if scale:
            commands = _prepare_scale(info, binaries, breaching, feed_interval)
        else:
            commands = _prepare(info, binaries)
        # Rendered before anything starts, so a broken template fails fast and cheaply.
        console_config = configs.mlconsole_config(ports, root, registry=registry, scale=scale)
        try:
            for name in info.components:
                argv, env = commands[name]
                info.processes[name] = procs.spawn(
                    argv, root / "logs" / f"{name}.log", env=env, cwd=root
                )
                # Recorded after every start, so even an interrupted up can be cleaned up.
                state.save(info)
            if wait:
                _wait_ready(info, timeout, progress)
                info.ready = True
            elif registry:
                _seed_in_background(info, timeout)
            info.config_path.write_text(console_config, encoding="utf-8")
            state.save(info)
        except BaseException:
            procs.stop(info.processes.values(), timeout=5.0)
            state.remove(root)
            raise
    return info


def _find_binaries(registry: bool = True) -> dict[str, str]:
    found = _find_servers(("prometheus", "alertmanager"))
    if registry:
        found["mlflow"] = mlflow_binary()
    return found


def _find_servers(servers: Sequence[str]) -> dict[str, str]:
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


def _check_ports(ports: Ports, components: Sequence[str]) -> None:
    by_port: dict[int, str] = {}
    for component in filter(Ports.has, components):
        port = getattr(ports, component)
        if port in by_port:
            raise LabError(f"{component} and {by_port[port]} cannot both use port {port}")
        by_port[port] = component
        if not web.port_is_free(HOST, port):
            flag = f"--{component}-port"
            raise LabError(
                f"port {port} ({component}) is already in use on {HOST}; "
                f"stop whatever listens there or pick another port with {flag}"
            )


def _prepare(
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


def scale_model_names(count: int) -> list[str]:
    """The scale lab's models: ``model-00000``, ``model-00001``, ..."""
    return scale.model_names(count)


def _prepare_scale(
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


def _seed_in_background(info: LabInfo, timeout: float) -> None:
    """Without waiting, MLflow is seeded by a process of its own once it is healthy."""
    env = _lab_env()
    argv = [
        sys.executable, "-m", "lab.registry",
        "--url", info.ports.url("mlflow"),
        "--models", str(len(info.models)),
        "--wait", str(max(timeout, 120.0)),
    ]  # fmt: skip
    procs.spawn(argv, info.state_dir / "logs" / "registry-seed.log", env=env, cwd=info.state_dir)


def _service_scraped(prometheus_url: str) -> bool:
    try:
        body = web.get_json(f"{prometheus_url}/api/v1/targets?state=active")
    except web.HTTPCallError:
        return False
    targets = body.get("data", {}).get("activeTargets", [])
    return any(
        t.get("labels", {}).get("job") == "mlc-service" and t.get("health") == "up" for t in targets
    )


def _ready_url(info: LabInfo, component: str) -> str:
    path = "/health" if component in ("mlflow", "victoria") else "/-/ready"
    return f"{info.ports.url(component)}{path}"


def _answers(info: LabInfo, component: str) -> bool:
    """Whether ``component`` says it is ready: its readiness URL, or for the feeder,
    whether VictoriaMetrics answered every series it imported."""
    if component == "feeder":
        return bool((scale.read_state(info.state_dir) or {}).get("ready"))
    return web.is_ok(_ready_url(info, component))


def _service_state(info: LabInfo) -> dict[str, Any] | None:
    try:
        answer: dict[str, Any] = web.get_json(f"{info.service_url}/admin/state")
    except web.HTTPCallError:
        return None
    return answer


def _follows_registry(info: LabInfo) -> bool:
    """Whether the service has resolved every model's champion in the registry."""
    answer = _service_state(info)
    champions = ((answer or {}).get("registry") or {}).get("champions", {})
    return set(champions) >= set(info.models)


def _is_ready(info: LabInfo, component: str) -> bool:
    if not _answers(info, component):
        return False
    if component == "prometheus":
        # Prometheus being up is not enough: the console needs data, so wait for a scrape.
        return _service_scraped(info.prometheus_url)
    if component == "service" and info.registry:
        return _follows_registry(info)
    return True


def _seed(info: LabInfo) -> None:
    assert info.mlflow_url is not None
    try:
        registry.seed(info.mlflow_url, info.models)
    except (web.HTTPCallError, registry.RegistryError, KeyError, TypeError) as exc:
        tail = _log_tail(info.processes["mlflow"])
        raise LabError(f"registering the models in MLflow failed: {exc}\n{tail}") from None


def _wait_ready(info: LabInfo, timeout: float, progress: Progress | None) -> None:
    start = time.monotonic()
    pending = list(info.components)
    seeded = not info.registry
    while True:
        for name in list(pending):
            record = info.processes[name]
            if not procs.is_alive(record):
                code = procs.exit_code(record)
                how = "exited" if code is None else f"exited with code {code}"
                raise LabError(f"{name} {how} while starting\n{_log_tail(record)}")
            if name == "service" and not seeded:
                continue  # it serves the registry's champions, which are not there yet
            if _is_ready(info, name):
                if name == "mlflow":
                    _seed(info)
                    seeded = True
                pending.remove(name)
        elapsed = time.monotonic() - start
        if progress is not None:
            progress(tuple(pending), elapsed)
        if not pending:
            return
        if elapsed > timeout:
            tails = "\n".join(_log_tail(info.processes[n]) for n in pending)
            raise LabError(
                f"timed out after {timeout:.0f}s waiting for {', '.join(pending)}\n{tails}"
            )
        time.sleep(0.1)


def _log_tail(record: procs.ProcessRecord) -> str:
    try:
        lines = Path(record.log).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return f"(cannot read {record.log}: {exc})"
    tail = "\n".join(f"    {line}" for line in lines[-_LOG_TAIL_LINES:])
    return f"  last lines of {record.log}:\n{tail or '    (empty)'}"


# -- down -------------------------------------------------------------------------


def down(state_dir: Path | str | None = None, *, timeout: float = 10.0) -> list[str]:
    """Stop what ``up`` started; return the names of the components that were running.

    Only processes recorded in ``lab.json`` are signalled, and only if they are still
    the very processes that were started. Logs, configs and data stay for inspection.
    Calling it when nothing runs is fine.
    """
    root = resolve_state_dir(state_dir)
    if not root.is_dir():
        return []
    with state.locked(root):
        info = state.load(root)
        if info is None:
            return []
        names = {rec.pid: name for name, rec in info.processes.items()}
        # Prometheus first, so it sends no new alerts to a stopping Alertmanager; MLflow
        # last, so the service never sees it go.
        order = [*reversed(info.components), *info.processes]
        ordered = [info.processes[n] for n in dict.fromkeys(order) if n in info.processes]
        stopped = procs.stop(ordered, timeout=timeout)
        state.remove(root)
    return [names[r.pid] for r in stopped]


# -- status -----------------------------------------------------------------------


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
                ready=alive and _answers(info, name),
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
    answer = _service_state(info) or {}
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


# -- faults -----------------------------------------------------------------------


def _running_lab(state_dir: Path | str | None) -> LabInfo:
    root = resolve_state_dir(state_dir)
    info = state.load(root)
    if info is None:
        raise LabError(f"the lab is not up (no lab in {root}); start it with: mlconsole lab up")
    if info.scale:
        raise LabError(
            "the scale lab runs no model service, so it has no faults to inject or reset: "
            "its breaching models are chosen at start (lab up --scale N --breaching FRACTION)"
        )
    return info


def _admin(info: LabInfo, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = web.post_json(f"{info.service_url}{path}", payload)
    except web.HTTPCallError as exc:
        if exc.status == 400:
            raise LabError(str(exc)) from None
        raise LabError(
            f"the lab's model service does not answer ({exc}); check: mlconsole lab status"
        ) from None
    return answer


def _registry_call(info: LabInfo, call: Callable[[str], None]) -> None:
    """``call(mlflow_url)``, with MLflow's failures told as a :class:`LabError`."""
    assert info.mlflow_url is not None
    try:
        call(info.mlflow_url)
    except web.HTTPCallError as exc:
        if exc.status is not None:
            raise LabError(f"MLflow refused: {exc}") from None
        raise LabError(
            f"the lab's MLflow does not answer ({exc}); check: mlconsole lab status"
        ) from None


def _await_versions(info: LabInfo, expected: dict[str, str]) -> dict[str, Any]:
    """Wait until the service serves ``expected`` (model -> version); return its state."""
    deadline = time.monotonic() + _DEPLOY_WAIT_SECONDS
    while True:
        answer = _service_state(info)
        versions = (answer or {}).get("versions", {})
        behind = {m: versions.get(m) for m, v in expected.items() if versions.get(m) != v}
        if answer is not None and not behind:
            return answer
        if time.monotonic() > deadline:
            shown = ", ".join(f"{m} {v}" for m, v in sorted(behind.items())[:5])
            raise LabError(
                f"MLflow's {CHAMPION_ALIAS} aliases moved, but after {_DEPLOY_WAIT_SECONDS:.0f}s "
                f"the service still serves: {shown}\n"
                f"{_log_tail(info.processes['service'])}"
            )
        time.sleep(0.1)


def inject(state_dir: Path | str | None, fault: str, model: str | None = None) -> dict[str, Any]:
    """Inject ``fault`` into ``model`` (default: the first model); return the service state.

    With a registry, ``bad-deploy`` deploys as a deploy tool would: it points the
    model's ``champion`` alias at the bad version in MLflow, records the fault with
    the service, and returns once the service serves that version.
    """
    info = _running_lab(state_dir)
    target = model or info.models[0]
    if fault != "bad-deploy" or not info.registry:
        return _admin(info, "/admin/fault", {"fault": fault, "model": target})
    if target not in info.models:
        raise LabError(f"unknown model {target!r}")
    _registry_call(info, lambda url: registry.set_alias(url, target, BAD_VERSION))
    _admin(info, "/admin/fault", {"fault": fault, "model": target})
    return _await_versions(info, {target: BAD_VERSION})


def reset(state_dir: Path | str | None = None) -> dict[str, Any]:
    """Clear every fault, turn fallbacks off, resume pipelines; return the service state.

    With a registry, every ``champion`` alias goes back to the good version too, and
    this returns once the service serves it everywhere.
    """
    info = _running_lab(state_dir)
    answer = _admin(info, "/admin/reset", {})
    if not info.registry:
        return answer

    def roll_back(url: str) -> None:
        current = registry.search_aliases(url)
        for m in info.models:
            if current.get(m, {}).get(CHAMPION_ALIAS) != GOOD_VERSION:
                registry.set_alias(url, m, GOOD_VERSION)

    _registry_call(info, roll_back)
    return _await_versions(info, dict.fromkeys(info.models, GOOD_VERSION))
