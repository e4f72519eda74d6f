"""Whether the lab's components are ready: each one's probe, the wait of ``lab up``
(which seeds MLflow as soon as it answers), and the log tail that a failure quotes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lab import procs, registry, scale, web
from lab.errors import LabError
from lab.state import LabInfo

#: Called while ``up`` waits: the components not ready yet, and seconds elapsed.
Progress = Callable[[Sequence[str], float], None]
_LOG_TAIL_LINES = 20


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


def answers(info: LabInfo, component: str) -> bool:
    """Whether ``component`` says it is ready: its readiness URL, or for the feeder,
    whether VictoriaMetrics answered every series it imported."""
    if component == "feeder":
        return bool((scale.read_state(info.state_dir) or {}).get("ready"))
    return web.is_ok(_ready_url(info, component))


def service_state(info: LabInfo) -> dict[str, Any] | None:
    try:
        answer: dict[str, Any] = web.get_json(f"{info.service_url}/admin/state")
    except web.HTTPCallError:
        return None
    return answer


def _follows_registry(info: LabInfo) -> bool:
    """Whether the service has resolved every model's champion in the registry."""
    answer = service_state(info)
    champions = ((answer or {}).get("registry") or {}).get("champions", {})
    return set(champions) >= set(info.models)


def _is_ready(info: LabInfo, component: str) -> bool:
    if not answers(info, component):
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
        tail = log_tail(info.processes["mlflow"])
        raise LabError(f"registering the models in MLflow failed: {exc}\n{tail}") from None


def wait_ready(info: LabInfo, timeout: float, progress: Progress | None) -> None:
    start = time.monotonic()
    pending = list(info.components)
    seeded = not info.registry
    while True:
        for name in list(pending):
            record = info.processes[name]
            if not procs.is_alive(record):
                code = procs.exit_code(record)
                how = "exited" if code is None else f"exited with code {code}"
                raise LabError(f"{name} {how} while starting\n{log_tail(record)}")
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
            tails = "\n".join(log_tail(info.processes[n]) for n in pending)
            raise LabError(
                f"timed out after {timeout:.0f}s waiting for {', '.join(pending)}\n{tails}"
            )
        time.sleep(0.1)


def log_tail(record: procs.ProcessRecord) -> str:
    try:
        lines = Path(record.log).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return f"(cannot read {record.log}: {exc})"
    tail = "\n".join(f"    {line}" for line in lines[-_LOG_TAIL_LINES:])
    return f"  last lines of {record.log}:\n{tail or '    (empty)'}"
