"""The real lab: model service, Prometheus and Alertmanager on ephemeral ports.

One lab is shared by the module; the last test takes it down. Everything that
depends on timing polls with a deadline.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from lab import control, procs
from lab.configs import Ports
from lab.state import COMPONENTS, LabInfo

pytestmark = pytest.mark.integration

RECORDING_RULES = sorted(
    rule["record"]
    for group in yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "lab" / "rules" / "recording.yml").read_text()
    )["groups"]
    for rule in group["rules"]
)

DEADLINE = 90.0
T = TypeVar("T")


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def query(info: LabInfo, promql: str) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"query": promql})
    body = get_json(f"{info.prometheus_url}/api/v1/query?{params}")
    assert body["status"] == "success"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def poll(what: str, probe: Callable[[], T | None], deadline: float = DEADLINE) -> T:
    """Call ``probe`` until it returns something truthy; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    last: T | None = None
    while time.monotonic() < end:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"timed out after {deadline:.0f}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def lab_info(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    state_dir = tmp_path_factory.mktemp("lab-integration")
    info = control.up(state_dir, models=3, ports=Ports(*free_ports(3)), timeout=DEADLINE)
    try:
        yield info
    finally:
        control.down(state_dir)


def test_up_records_everything_and_writes_the_config(lab_info: LabInfo) -> None:
    assert lab_info.ready and not lab_info.already_running
    recorded = json.loads((lab_info.state_dir / "lab.json").read_text())
    assert set(recorded["processes"]) == set(COMPONENTS)
    assert recorded["models"] == ["fraud-detector", "churn-predictor", "recommender"]
    config = lab_info.config_path.read_text()
    assert lab_info.prometheus_url in config and lab_info.alertmanager_url in config
    assert not any(f"${name}" in config for name in ("prometheus_url", "alertmanager_url"))


def test_up_again_says_it_is_already_up(lab_info: LabInfo) -> None:
    again = control.up(lab_info.state_dir, ports=lab_info.ports)
    assert again.already_running
    assert again.pids == lab_info.pids


def test_status_sees_every_component_ready(lab_info: LabInfo) -> None:
    st = control.status(lab_info.state_dir)
    assert st.healthy
    assert {c.name: c.pid for c in st.components} == lab_info.pids
    assert st.faults == []


def test_prometheus_scrapes_the_service(lab_info: LabInfo) -> None:
    up = query(lab_info, 'up{job="mlc-service"}')
    assert [r["value"][1] for r in up] == ["1"]


def test_recording_rules_give_one_series_per_model(lab_info: LabInfo) -> None:
    models = set(lab_info.models)

    def missing() -> list[str]:
        return [
            rule
            for rule in RECORDING_RULES
            if {r["metric"].get("model") for r in query(lab_info, rule)} != models
            or len(query(lab_info, rule)) != len(models)
        ]

    poll("every recording rule to have one series per model", lambda: not missing() or None)


def test_healthy_lab_has_healthy_slis(lab_info: LabInfo) -> None:
    def value(rule: str) -> dict[str, float]:
        return {r["metric"]["model"]: float(r["value"][1]) for r in query(lab_info, rule)}

    p99 = poll("latency data", lambda: value("mlc:latency_p99_seconds:rate1m"))
    assert all(v < 0.25 for v in p99.values()), p99
    assert all(v < 0.25 for v in value("mlc:drift_psi:max").values())
    assert all(v < 0.2 for v in value("mlc:feature_null_ratio:max").values())


def test_bad_deploy_pages_through_alertmanager(lab_info: LabInfo) -> None:
    model = lab_info.models[0]
    control.inject(lab_info.state_dir, "bad-deploy", model)
    url = f"{lab_info.alertmanager_url}/api/v2/alerts?filter=" + urllib.parse.quote(
        'alertname="ModelErrorBudgetBurn"'
    )

    def burning() -> list[dict[str, Any]]:
        return [a for a in get_json(url) if a["labels"].get("model") == model]

    alert = poll(f"ModelErrorBudgetBurn for {model} in Alertmanager", burning)[0]
    assert alert["labels"]["severity"] == "page"
    assert alert["labels"]["cause_hint"] == "model"
    assert alert["annotations"]["runbook"] == "model-regression"
    assert model in alert["annotations"]["summary"]
    assert alert["status"]["state"] == "active"
    assert alert["generatorURL"].startswith(lab_info.prometheus_url)
    served = query(lab_info, f'mlc_model_info{{model="{model}"}}')
    assert [r["metric"]["version"] for r in served] == ["4"]
    assert control.status(lab_info.state_dir).faults == [
        {"model": model, "fault": "bad-deploy", "since": pytest.approx(time.time(), abs=DEADLINE)}
    ]
    control.reset(lab_info.state_dir)
    assert control.status(lab_info.state_dir).faults == []


def test_inject_rejects_unknown_models(lab_info: LabInfo) -> None:
    with pytest.raises(control.LabError, match="unknown model"):
        control.inject(lab_info.state_dir, "drift", "no-such-model")


def test_down_stops_exactly_what_up_started(lab_info: LabInfo) -> None:
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        records = list(lab_info.processes.values())
        assert all(procs.is_alive(r) for r in records)
        stopped = control.down(lab_info.state_dir)
        assert sorted(stopped) == sorted(COMPONENTS)
        assert all(not procs.group_members(r.pid) for r in records)
        assert bystander.poll() is None
        assert not (lab_info.state_dir / "lab.json").exists()
        # Logs and data stay for inspection.
        assert Path(lab_info.processes["prometheus"].log).stat().st_size > 0
        assert (lab_info.state_dir / "data" / "prometheus").is_dir()
        assert control.down(lab_info.state_dir) == []
        assert not control.status(lab_info.state_dir).recorded
    finally:
        bystander.kill()
        bystander.wait()
