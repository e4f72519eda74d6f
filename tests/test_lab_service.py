"""The model service's HTTP API, served in-process on an ephemeral port."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.catalog import model_names
from lab.lab_service import LabService
from lab.service import make_server


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


# -- fallback and pipeline switches ---------------------------------------------------


@pytest.mark.parametrize(("endpoint", "field"), [("fallback", "enabled"), ("pipeline", "paused")])
def test_switches_read_and_set_per_model(
    service: tuple[str, LabService], endpoint: str, field: str
) -> None:
    url, svc = service
    path = f"{url}/admin/{endpoint}"
    assert call(f"{path}?model=recommender")[:2] == (200, {"model": "recommender", field: False})
    status, body, kind = call(path, {"model": "recommender", field: True})
    assert (status, body, kind) == (200, {"model": "recommender", field: True}, "application/json")
    assert call(f"{path}?model=recommender")[1] == {"model": "recommender", field: True}
    assert call(f"{path}?model=churn-predictor")[1] == {"model": "churn-predictor", field: False}
    serving = call(f"{url}/admin/state")[1]["serving"]
    key = "fallback" if endpoint == "fallback" else "paused"
    assert serving["recommender"][key] is True and serving["churn-predictor"][key] is False
    assert call(path, {"model": "recommender", field: False})[1] == {
        "model": "recommender",
        field: False,
    }
    assert svc.state_dir is not None
    journal = [
        json.loads(line) for line in (svc.state_dir / "faults.jsonl").read_text().splitlines()
    ]
    assert [(e["event"], e["model"], e[field]) for e in journal] == [
        (endpoint, "recommender", True),
        (endpoint, "recommender", False),
    ]


@pytest.mark.parametrize(("endpoint", "field"), [("fallback", "enabled"), ("pipeline", "paused")])
def test_switch_errors(service: tuple[str, LabService], endpoint: str, field: str) -> None:
    url, _ = service
    path = f"{url}/admin/{endpoint}"
    status, body, kind = call(f"{path}?model=nope")
    assert (status, kind) == (404, "application/json") and "unknown model 'nope'" in body["error"]
    assert call(path, {"model": "nope", field: True})[0] == 404
    assert call(path)[0] == 400  # no ?model=
    assert call(f"{path}?model=a&model=b")[0] == 400
    for bad in (
        {"model": "recommender"},
        {"model": "recommender", field: 1},
        {field: True},
        {"model": 3, field: True},
    ):
        status, body, _ = call(path, bad)
        assert status == 400 and field in body["error"], bad
    request = urllib.request.Request(path, data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=5)
    assert answer.value.code == 400


def test_fallback_shows_in_the_metrics_and_state(service: tuple[str, LabService]) -> None:
    url, svc = service
    call(f"{url}/admin/fault", {"fault": "bad-deploy", "model": "recommender"})
    call(f"{url}/admin/fallback", {"model": "recommender", "enabled": True})
    svc.tick()
    metrics = call(f"{url}/metrics")[1]
    assert 'mlc_model_info{model="recommender",version="fallback"} 1' in metrics
    assert 'mlc_requests_total{model="recommender",version="fallback",status="200"}' in metrics
    served = call(f"{url}/admin/state")[1]["serving"]["recommender"]
    assert served == {
        "version": "4",
        "label": "fallback",
        "fallback": True,
        "paused": False,
        "error_ratio": 0.002,
        "scores": "flat",
    }
    state = call(f"{url}/admin/reset", {})[1]
    assert state["serving"]["recommender"]["label"] == "3"
    assert state["registry"] is None


def test_an_unreachable_registry_keeps_the_served_versions(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed
    svc = LabService(model_names(2), tmp_path, seed=1, registry=dead)
    svc.sim.deploy("churn-predictor", "2")
    svc.follow_once()
    state = svc.state()
    assert state["versions"] == {"fraud-detector": "3", "churn-predictor": "2"}
    assert state["registry"]["url"] == dead
    assert "cannot reach" in state["registry"]["error"]
    assert state["registry"]["synced_at"] is None and state["registry"]["champions"] == {}
    # With a registry, a bad-deploy fault is only recorded: the deploy is the alias move.
    svc.inject("bad-deploy", "fraud-detector")
    assert svc.state()["versions"]["fraud-detector"] == "3"
