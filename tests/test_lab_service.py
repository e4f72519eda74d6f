"""The model service's HTTP API, served in-process on an ephemeral port."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.catalog import model_names
from lab.service import LabService, make_server


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[tuple[str, LabService]]:
    svc = LabService(model_names(3), tmp_path, seed=1)
    server = make_server(svc, "127.0.0.1", 0)
    svc.start()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", svc
    finally:
        svc.stop()
        server.shutdown()
        server.server_close()
        thread.join(5)


def call(url: str, payload: dict[str, Any] | None = None) -> tuple[int, Any, str]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read().decode()
            kind = response.headers["Content-Type"]
            return response.status, json.loads(body) if "json" in kind else body, kind
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers["Content-Type"]


def test_ready_and_metrics(service: tuple[str, LabService]) -> None:
    url, _ = service
    assert call(f"{url}/-/ready")[0] == 200
    status, body, kind = call(f"{url}/metrics")
    assert status == 200
    assert kind.startswith("text/plain; version=0.0.4")
    assert 'mlc_model_info{model="fraud-detector",version="3"} 1' in body


def test_inject_changes_state_and_metrics(service: tuple[str, LabService]) -> None:
    url, svc = service
    status, state, _ = call(f"{url}/admin/fault", {"fault": "bad-deploy", "model": "recommender"})
    assert status == 200
    assert state["versions"]["recommender"] == "4"
    assert state["faults"][0]["fault"] == "bad-deploy"
    svc.tick()
    assert 'mlc_model_info{model="recommender",version="4"} 1' in call(f"{url}/metrics")[1]
    status, state, _ = call(f"{url}/admin/reset", {})
    assert status == 200 and state["faults"] == [] and state["versions"]["recommender"] == "3"
    assert svc.state_dir is not None
    journal = (svc.state_dir / "faults.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in journal] == ["inject", "reset"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"fault": "meteor", "model": "recommender"}, "unknown fault"),
        ({"fault": "drift", "model": "nope"}, "unknown model"),
        ({"fault": "drift"}, "expected"),
    ],
)
def test_bad_admin_requests_get_400_with_a_json_error(
    service: tuple[str, LabService], payload: dict[str, Any], message: str
) -> None:
    url, _ = service
    status, body, kind = call(f"{url}/admin/fault", payload)
    assert status == 400
    assert kind == "application/json"
    assert message in body["error"]


def test_state_and_unknown_paths(service: tuple[str, LabService]) -> None:
    url, _ = service
    status, state, _ = call(f"{url}/admin/state")
    assert status == 200
    assert state["models"] == model_names(3)
    assert "drift" in state["available_faults"]
    assert call(f"{url}/nope")[0] == 404


def test_metrics_are_rendered_once_per_tick(service: tuple[str, LabService]) -> None:
    _, svc = service
    first = svc.metrics()
    assert svc.metrics() is first  # cached between ticks
    svc.tick()
    assert svc.metrics() is not first
