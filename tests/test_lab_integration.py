"""The real lab: MLflow, model service, Prometheus and Alertmanager on ports of their
own (``LAB_TEST_PORTS``: 29090-29500 at the default port base).

One lab is shared by the module; the last test takes it down. Everything that
depends on timing polls with a deadline.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from lab import control, procs, registry
from lab.configs import Ports
from lab.errors import LabError
from lab.lab_service import LabService
from lab.state import COMPONENTS, LabInfo
from lab.status import status
from tests.conftest import LAB_TEST_PORTS

pytestmark = pytest.mark.integration

RECORDING_RULES = sorted(
    rule["record"]
    for group in yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "lab" / "rules" / "recording.yml").read_text()
    )["groups"]
    for rule in group["rules"]
)

DEADLINE = 90.0
PORTS = Ports(*LAB_TEST_PORTS)
MODEL = "fraud-detector"
REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def post_json(url: str, payload: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def mlflow(info: LabInfo, endpoint: str, **params: str) -> Any:
    query = urllib.parse.urlencode(params)
    return get_json(f"{info.mlflow_url}/api/2.0/mlflow/{endpoint}?{query}")


def champion(info: LabInfo, model: str) -> str | None:
    aliases = mlflow(info, "registered-models/get", name=model)["registered_model"]["aliases"]
    return next((a["version"] for a in aliases if a["alias"] == "champion"), None)


def served(info: LabInfo, model: str) -> dict[str, Any]:
    result: dict[str, Any] = get_json(f"{info.service_url}/admin/state")["serving"][model]
    return result


def scrape(info: LabInfo) -> dict[tuple[str, ...], float]:
    """The service's own /metrics: model info and request counters, keyed by labels."""
    text = urllib.request.urlopen(f"{info.service_url}/metrics", timeout=5).read().decode()
    found: dict[tuple[str, ...], float] = {}
    for line in text.splitlines():
        match = re.match(r"(mlc_model_info|mlc_requests_total)\{(.*)\} (\S+)$", line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match[2]))
            key = (match[1], labels["model"], labels["version"], labels.get("status", ""))
            found[key] = float(match[3])
    return found


def info_version(metrics: dict[tuple[str, ...], float], model: str) -> list[str]:
    return [k[2] for k in metrics if k[0] == "mlc_model_info" and k[1] == model]


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
    info = control.up(state_dir, models=3, ports=PORTS, timeout=DEADLINE)
    try:
        yield info
    finally:
        control.down(state_dir)


def test_up_records_everything_and_writes_the_config(lab_info: LabInfo) -> None:
    assert lab_info.ready and not lab_info.already_running
    recorded = json.loads((lab_info.state_dir / "lab.json").read_text())
    assert set(recorded["processes"]) == set(COMPONENTS)
    assert recorded["models"] == ["fraud-detector", "churn-predictor", "recommender"]
    assert recorded["registry"] is True and recorded["urls"]["mlflow"] == lab_info.mlflow_url
    config = lab_info.config_path.read_text()
    assert lab_info.prometheus_url in config and lab_info.alertmanager_url in config
    assert f"url: {lab_info.mlflow_url}" in config and f"url: {lab_info.service_url}" in config
    assert "$" not in config
    # MLflow runs in a session of its own, so down can stop it and its workers together.
    mlflow_pid = lab_info.processes["mlflow"].pid
    assert len(procs.group_members(mlflow_pid)) >= 2  # the server and its uvicorn worker


def test_mlflow_is_seeded_with_four_tagged_versions_per_model(lab_info: LabInfo) -> None:
    assert lab_info.mlflow_url == f"http://127.0.0.1:{PORTS.mlflow}"
    found = registry.search_aliases(lab_info.mlflow_url)
    assert found == {m: {"champion": "3"} for m in lab_info.models}
    for model in lab_info.models:
        assert champion(lab_info, model) == "3"
        versions = mlflow(lab_info, "model-versions/search", filter=f"name='{model}'")
        by_version = {v["version"]: v for v in versions["model_versions"]}
        assert sorted(by_version) == ["1", "2", "3", "4"]
        for number, version in by_version.items():
            tags = {t["key"]: t["value"] for t in version["tags"]}
            assert {"git_sha", "trained_on", "auc", "lab.error_ratio", "lab.scores"} <= set(tags)
            assert version["source"] == f"runs:/{version['run_id']}/model"
            bad = number == "4"
            assert tags["lab.error_ratio"] == ("0.6" if bad else "0.002")
            assert tags["lab.scores"] == ("collapsed" if bad else "normal")


def test_the_service_serves_each_champion(lab_info: LabInfo) -> None:
    state = get_json(f"{lab_info.service_url}/admin/state")
    assert state["registry"]["champions"] == dict.fromkeys(lab_info.models, "3")
    assert state["registry"]["error"] is None
    assert {m: s["version"] for m, s in state["serving"].items()} == dict.fromkeys(
        lab_info.models, "3"
    )
    assert all(not s["fallback"] and not s["paused"] for s in state["serving"].values())


def test_a_service_keeps_its_versions_while_mlflow_is_unreachable(
    lab_info: LabInfo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert lab_info.mlflow_url is not None
    # A second service, in this process, following the lab's MLflow.
    svc = LabService(lab_info.models, tmp_path, seed=1, registry=lab_info.mlflow_url)
    svc.follow_once()
    assert svc.state()["registry"]["champions"] == dict.fromkeys(lab_info.models, "3")
    # Then MLflow is gone (its address now leads nowhere).
    assert svc.follower is not None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        svc.follower.url = f"http://127.0.0.1:{s.getsockname()[1]}"
    with caplog.at_level(logging.WARNING, logger="lab.service"):
        svc.follow_once()
        svc.follow_once()
    state = svc.state()
    assert state["versions"] == dict.fromkeys(lab_info.models, "3")
    assert "cannot reach" in state["registry"]["error"]
    warnings = [r.getMessage() for r in caplog.records if "registry unreachable" in r.getMessage()]
    assert len(warnings) == 1  # said once, not every second
    svc.follower.url = lab_info.mlflow_url
    svc.follow_once()
    assert svc.state()["registry"]["error"] is None


def test_up_again_says_it_is_already_up(lab_info: LabInfo) -> None:
    again = control.up(lab_info.state_dir, ports=lab_info.ports)
    assert again.already_running
    assert again.pids == lab_info.pids


def test_status_sees_every_component_ready(lab_info: LabInfo) -> None:
    st = status(lab_info.state_dir)
    assert st.healthy
    assert {c.name: c.pid for c in st.components} == lab_info.pids
    assert st.faults == []
    assert st.mlflow_url == lab_info.mlflow_url
    run = subprocess.run(
        [sys.executable, "-m", "console.cli.main", "lab", "status", "--state-dir", str(lab_info.state_dir)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert re.search(rf"mlflow +\d+ +yes +yes +{lab_info.mlflow_url}", run.stdout)
    assert "serving: all on version 3" in run.stdout


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


def test_bad_deploy_moves_the_champion_and_the_service_follows(lab_info: LabInfo) -> None:
    state = control.inject(lab_info.state_dir, "bad-deploy", MODEL)
    # inject returns once the service serves what MLflow now says.
    assert champion(lab_info, MODEL) == "4"
    assert state["serving"][MODEL]["version"] == "4"
    assert state["serving"][MODEL]["error_ratio"] == 0.6
    assert state["serving"][MODEL]["scores"] == "collapsed"
    assert state["serving"]["recommender"]["version"] == "3"

    def failing_share() -> float | None:
        metrics = scrape(lab_info)
        if info_version(metrics, MODEL) != ["4"]:
            return None
        ok = metrics.get(("mlc_requests_total", MODEL, "4", "200"), 0.0)
        failed = metrics.get(("mlc_requests_total", MODEL, "4", "500"), 0.0)
        return failed / (ok + failed) if ok + failed >= 200 else None

    assert poll("version 4 traffic in /metrics", failing_share) > 0.45


def test_bad_deploy_pages_through_alertmanager(lab_info: LabInfo) -> None:
    model = MODEL
    assert served(lab_info, model)["version"] == "4"  # from the test before
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
    in_prometheus = query(lab_info, f'mlc_model_info{{model="{model}"}}')
    assert [r["metric"]["version"] for r in in_prometheus] == ["4"]
    assert status(lab_info.state_dir).faults == [
        {"model": model, "fault": "bad-deploy", "since": pytest.approx(time.time(), abs=DEADLINE)}
    ]


def test_moving_the_alias_back_in_mlflow_rolls_the_service_back(lab_info: LabInfo) -> None:
    assert lab_info.mlflow_url is not None
    # What a responder's rollback does: MLflow's REST API, nothing of the lab's.
    post_json(
        f"{lab_info.mlflow_url}/api/2.0/mlflow/registered-models/alias",
        {"name": MODEL, "alias": "champion", "version": "3"},
    )
    poll("the service to serve version 3", lambda: served(lab_info, MODEL)["version"] == "3")
    assert served(lab_info, MODEL)["error_ratio"] == 0.002
    poll("version 3 in /metrics", lambda: info_version(scrape(lab_info), MODEL) == ["3"])
    # The rollback ended the bad deploy.
    assert status(lab_info.state_dir).faults == []

    def in_prometheus() -> list[str]:
        return [
            r["metric"]["version"] for r in query(lab_info, f'mlc_model_info{{model="{MODEL}"}}')
        ]

    poll("version 3 in Prometheus", lambda: in_prometheus() == ["3"])


def test_fallback_and_pipeline_switches(lab_info: LabInfo) -> None:
    url = lab_info.service_url
    assert post_json(f"{url}/admin/fallback", {"model": MODEL, "enabled": True}) == {
        "model": MODEL,
        "enabled": True,
    }
    assert get_json(f"{url}/admin/fallback?model={MODEL}") == {"model": MODEL, "enabled": True}
    assert post_json(f"{url}/admin/pipeline", {"model": "recommender", "paused": True}) == {
        "model": "recommender",
        "paused": True,
    }
    assert get_json(f"{url}/admin/pipeline?model=recommender") == {
        "model": "recommender",
        "paused": True,
    }
    poll("the fallback in /metrics", lambda: info_version(scrape(lab_info), MODEL) == ["fallback"])
    assert served(lab_info, MODEL)["label"] == "fallback"
    assert served(lab_info, "recommender")["paused"] is True
    with pytest.raises(urllib.error.HTTPError) as missing:
        get_json(f"{url}/admin/fallback?model=no-such-model")
    assert missing.value.code == 404

    # reset: bad deploys rolled back in MLflow, fallbacks off, pipelines resumed.
    control.inject(lab_info.state_dir, "bad-deploy", "churn-predictor")
    assert champion(lab_info, "churn-predictor") == "4"
    state = control.reset(lab_info.state_dir)
    assert all(champion(lab_info, m) == "3" for m in lab_info.models)
    assert {m: s["label"] for m, s in state["serving"].items()} == dict.fromkeys(
        lab_info.models, "3"
    )
    assert not any(s["paused"] for s in state["serving"].values())
    assert state["faults"] == []


def test_inject_rejects_unknown_models(lab_info: LabInfo) -> None:
    with pytest.raises(LabError, match="unknown model"):
        control.inject(lab_info.state_dir, "drift", "no-such-model")
    with pytest.raises(LabError, match="unknown model"):
        control.inject(lab_info.state_dir, "bad-deploy", "no-such-model")


def test_down_stops_exactly_what_up_started(lab_info: LabInfo) -> None:
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        records = list(lab_info.processes.values())
        assert all(procs.is_alive(r) for r in records)
        mlflow_group = lab_info.processes["mlflow"].pid
        assert procs.group_members(mlflow_group)
        stopped = control.down(lab_info.state_dir)
        assert sorted(stopped) == sorted(COMPONENTS)
        assert all(not procs.group_members(r.pid) for r in records)
        # No MLflow worker outlived its server: the whole group is gone, and nothing
        # listens on its port any more.
        assert procs.group_members(mlflow_group) == []
        leftovers = subprocess.run(
            ["pgrep", "-f", f"--port {PORTS.mlflow}"], capture_output=True, text=True
        )
        assert leftovers.stdout.split() == []
        assert bystander.poll() is None
        assert not (lab_info.state_dir / "lab.json").exists()
        # Logs and data stay for inspection.
        assert Path(lab_info.processes["prometheus"].log).stat().st_size > 0
        assert (lab_info.state_dir / "data" / "prometheus").is_dir()
        assert control.down(lab_info.state_dir) == []
        assert not status(lab_info.state_dir).recorded
    finally:
        bystander.kill()
        bystander.wait()
