"""Start, stop and perturb the lab: the Python API behind ``mlconsole lab``.

>>> info = up(tmp_dir, models=3, ports=Ports(29090, 29093, 29100, 29500))  # doctest: +SKIP
>>> inject(tmp_dir, "bad-deploy")                                            # doctest: +SKIP
>>> down(tmp_dir)                                                            # doctest: +SKIP

With a registry (the default), the lab also runs MLflow: every model is registered
with versions 1-4 and a ``champion`` alias on 3, the model service serves whatever the
alias names, and ``bad-deploy`` is a real deploy: the alias moves to version 4.

What each component runs is :mod:`lab.launch`'s, how ``up`` knows it is ready
:mod:`lab.readiness`'s, and the lab as seen right now :mod:`lab.status`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lab import configs, launch, procs, readiness, registry, scale, state, web
from lab.catalog import (
    BAD_VERSION,
    CHAMPION_ALIAS,
    DEFAULT_BREACHING,
    DEFAULT_FEED_INTERVAL,
    DEFAULT_MODELS,
    GOOD_VERSION,
    HOST,
    model_names,
)
from lab.configs import Ports
from lab.errors import LabError
from lab.paths import resolve_state_dir
from lab.readiness import Progress
from lab.state import LabInfo

__all__ = [
    "default_ports",
    "down",
    "inject",
    "load",
    "reset",
    "up",
]

#: How long inject and reset wait for the service to serve what the registry now says.
_DEPLOY_WAIT_SECONDS = 20.0


def default_ports() -> Ports:
    """The lab's default ports."""
    return Ports()


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
            launch.find_servers(("victoria", "alertmanager"))
            if scale
            else launch.find_binaries(registry)
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
            commands = launch.prepare_scale(info, binaries, breaching, feed_interval)
        else:
            commands = launch.prepare(info, binaries)
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
                readiness.wait_ready(info, timeout, progress)
                info.ready = True
            elif registry:
                launch.seed_in_background(info, timeout)
            info.config_path.write_text(console_config, encoding="utf-8")
            state.save(info)
        except BaseException:
            procs.stop(info.processes.values(), timeout=5.0)
            state.remove(root)
            raise
    return info


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


def scale_model_names(count: int) -> list[str]:
    """The scale lab's models: ``model-00000``, ``model-00001``, ..."""
    return scale.model_names(count)


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
        answer = readiness.service_state(info)
        versions = (answer or {}).get("versions", {})
        behind = {m: versions.get(m) for m, v in expected.items() if versions.get(m) != v}
        if answer is not None and not behind:
            return answer
        if time.monotonic() > deadline:
            shown = ", ".join(f"{m} {v}" for m, v in sorted(behind.items())[:5])
            raise LabError(
                f"MLflow's {CHAMPION_ALIAS} aliases moved, but after {_DEPLOY_WAIT_SECONDS:.0f}s "
                f"the service still serves: {shown}\n"
                f"{readiness.log_tail(info.processes['service'])}"
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
