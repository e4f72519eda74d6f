"""The lab's control plane and command line, without the real Prometheus."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from console.cli.lab import add_lab_parser
from lab import control, launch, procs, state
from lab.configs import Ports, mlconsole_config
from lab.errors import LabError
from lab.paths import default_state_dir
from lab.state import LabInfo

REPO = Path(__file__).resolve().parent.parent


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mlconsole")
    add_lab_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["lab", *argv])


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli.main", "lab", *argv],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip


@pytest.fixture()
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process that must survive whatever the lab does."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


# -- state dir and parser --------------------------------------------------------------


def test_state_dir_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLCONSOLE_LAB_DIR", str(tmp_path / "explicit"))
    assert default_state_dir() == tmp_path / "explicit"
    monkeypatch.delenv("MLCONSOLE_LAB_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir() == tmp_path / "xdg" / "mlconsole" / "lab"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_state_dir() == tmp_path / "home" / ".local" / "state" / "mlconsole" / "lab"


def test_parser_defaults_and_choices() -> None:
    args = parse("up")
    ports = (args.prometheus_port, args.alertmanager_port, args.service_port, args.mlflow_port)
    # No --models: the lab's default of 3 (None, so --models N and --scale N conflict).
    assert (args.models, *ports) == (None, 19090, 19093, 19100, 19500)
    assert args.wait is True and args.state_dir is None and callable(args.func)
    assert args.registry is True
    assert parse("up", "--no-wait", "--models", "1000").wait is False
    assert parse("up", "--no-registry", "--mlflow-port", "29500").registry is False
    args = parse("inject", "drift", "--model", "recommender", "--state-dir", "/x")
    assert (args.fault, args.model, args.state_dir) == ("drift", "recommender", "/x")
    assert parse("inject", "latency").model is None
    assert parse("status", "--json").json is True
    for command in ("down", "reset"):
        assert callable(parse(command).func)
    with pytest.raises(SystemExit):
        parse("inject", "meteor")
    with pytest.raises(SystemExit):
        parse("up", "--models", "0")
    with pytest.raises(SystemExit):
        parse("up", "--models", "3", "--scale", "5")


@pytest.mark.parametrize(
    ("flag", "value", "said"),
    [
        ("--scale", "1e9", "argument --scale: expected a whole number, got '1e9'"),
        ("--scale", "abc", "argument --scale: expected a whole number, got 'abc'"),
        ("--scale", "0", "argument --scale: must be from 1 to 100,000, got 0"),
        ("--scale", "99999999", "argument --scale: must be from 1 to 100,000, got 99,999,999"),
        ("--models", "-1", "argument --models: must be from 1 to 5,000, got -1"),
        ("--models", "20000", "argument --models: must be from 1 to 5,000, got 20,000"),
    ],
)
def test_a_lab_size_out_of_range_is_refused_before_anything_starts(
    flag: str, value: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A size the lab cannot hold is one line naming the flag and the range, at
    once (99,999,999 models used to be accepted and then build names for minutes)."""
    with pytest.raises(SystemExit) as exit_:
        parse("up", flag, value)
    assert exit_.value.code == 2
    assert said in capsys.readouterr().err


def test_importing_the_cli_is_cheap() -> None:
    code = (
        "import sys, console.cli.lab; "
        "print(sorted(m for m in sys.modules if m.startswith(('lab', 'urllib.request', "
        "'http', 'subprocess', 'json.decoder', 'statistics'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout
    assert set(eval(out)) <= {"lab", "lab.catalog", "json.decoder"}


# -- lab.json --------------------------------------------------------------------------


def test_lab_record_round_trips(tmp_path: Path) -> None:
    record = procs.ProcessRecord(pid=123, started="456", argv=["x", "--y"], log="/l")
    info = LabInfo(tmp_path, ["a", "b"], Ports(1, 2, 3), 10.0, {"service": record}, ready=True)
    state.save(info)
    loaded = state.load(tmp_path)
    assert loaded is not None
    assert loaded.to_json() == info.to_json()
    assert loaded.prometheus_url == "http://127.0.0.1:1"
    assert loaded.mlflow_url is None and "mlflow" not in loaded.urls
    assert json.loads((tmp_path / "lab.json").read_text())["urls"]["service"].endswith(":3")
    (tmp_path / "lab.json").write_text("{torn")
    assert state.load(tmp_path) is None


def test_lab_record_with_a_registry_round_trips(tmp_path: Path) -> None:
    record = procs.ProcessRecord(pid=123, started="456", argv=["mlflow"], log="/l")
    info = LabInfo(tmp_path, ["a"], Ports(1, 2, 3, 4), 10.0, {"mlflow": record}, registry=True)
    state.save(info)
    loaded = state.load(tmp_path)
    assert loaded is not None and loaded.registry
    assert loaded.to_json() == info.to_json()
    assert loaded.mlflow_url == "http://127.0.0.1:4"
    assert loaded.components == ("mlflow", "service", "alertmanager", "prometheus")
    # A record without the flag (an older lab.json) says it by its processes.
    raw = json.loads((tmp_path / "lab.json").read_text())
    del raw["registry"]
    assert LabInfo.from_json(raw).registry


def test_lab_config_has_the_sources_and_actions_the_console_acts_through() -> None:
    ports = Ports(1, 2, 3, 4)
    with_registry = yaml.safe_load(mlconsole_config(ports, Path("/s")))
    sources = with_registry["sources"]
    assert list(sources) == ["prometheus", "alertmanager", "registry", "serving", "pipelines"]
    assert sources["registry"] == {"type": "mlflow", "url": "http://127.0.0.1:4", "interval": "2s"}
    serving = sources["serving"]
    assert (serving["type"], serving["url"], serving["interval"]) == (
        "http-switch", "http://127.0.0.1:3", "5s",
    )  # fmt: skip
    assert serving["options"] == {
        "read": {"method": "GET", "path": "/admin/fallback?model={target}", "field": "enabled"},
        # Every model's state in one request per sweep.
        "read_all": {
            "method": "GET",
            "path": "/admin/state",
            "items": "serving",
            "field": "fallback",
        },
        "enable": {
            "method": "POST",
            "path": "/admin/fallback",
            "body": {"model": "{target}", "enabled": True},
        },
        "disable": {
            "method": "POST",
            "path": "/admin/fallback",
            "body": {"model": "{target}", "enabled": False},
        },
    }
    assert sources["pipelines"]["options"] == {
        "read": {"method": "GET", "path": "/admin/pipeline?model={target}", "field": "paused"},
        "read_all": {
            "method": "GET",
            "path": "/admin/state",
            "items": "serving",
            "field": "paused",
        },
        "enable": {
            "method": "POST",
            "path": "/admin/pipeline",
            "body": {"model": "{target}", "paused": True},
        },
        "disable": {
            "method": "POST",
            "path": "/admin/pipeline",
            "body": {"model": "{target}", "paused": False},
        },
    }
    assert with_registry["actions"] == {
        "registry": "registry",
        "alias": "champion",
        "fallback": "serving",
        "pipeline": "pipelines",
        "silences": "alertmanager",
        "verify": {"sli": "error_ratio", "window": "30s", "every": "2s"},
    }
    without = yaml.safe_load(mlconsole_config(ports, Path("/s"), registry=False))
    assert "registry" not in without["sources"] and "registry" not in without["actions"]
    assert {k: v for k, v in with_registry["actions"].items() if k != "registry"} == without[
        "actions"
    ]


def test_the_console_loads_the_lab_config_with_and_without_a_registry(tmp_path: Path) -> None:
    from console.config.loader import load_config

    for registry in (True, False):
        path = tmp_path / f"registry-{registry}.yaml"
        path.write_text(mlconsole_config(Ports(1, 2, 3, 4), tmp_path, registry=registry))
        config = load_config(path)
        assert config.actions.fallback == "serving" and config.actions.pipeline == "pipelines"
        assert config.actions.registry == ("registry" if registry else None)
        assert config.actions.verify.window == 30


# -- down never kills what it did not start ---------------------------------------------


def test_down_spares_a_recycled_pid(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    # The recorded pid now belongs to another process (its start time differs).
    record = procs.ProcessRecord(pid=sleeper.pid, started="1", argv=["prometheus"], log="")
    state.save(LabInfo(tmp_path, ["a"], Ports(1, 2, 3), 0.0, {"prometheus": record}))
    assert control.down(tmp_path) == []
    assert sleeper.poll() is None
    assert not (tmp_path / "lab.json").exists()


def test_down_stops_the_whole_process_group(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    # A component that forked a helper: both go, the unrelated sleeper stays.
    record = procs.spawn(["sh", "-c", "sleep 60 & exec sleep 61"], tmp_path / "c.log")
    state.save(LabInfo(tmp_path, ["a"], Ports(1, 2, 3), 0.0, {"service": record}))
    deadline = time.monotonic() + 5
    while len(procs.group_members(record.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(procs.group_members(record.pid)) == 2
    assert control.down(tmp_path, timeout=5) == ["service"]
    assert procs.group_members(record.pid) == []
    assert sleeper.poll() is None
    assert control.down(tmp_path) == []  # idempotent


# -- up's checks and clean failure ------------------------------------------------------


def test_up_names_the_packages_when_binaries_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(LabError, match="apt-get install prometheus prometheus-alertm"):
        control.up(tmp_path / "state", ports=Ports(*free_ports(3)))


def test_up_refuses_busy_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binaries = {"prometheus": "p", "alertmanager": "a", "mlflow": "m"}
    monkeypatch.setattr(launch, "find_binaries", lambda registry=True: binaries)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        prom, am, svc = free_ports(3)
        with pytest.raises(LabError, match=f"port {port} .*--service-port"):
            control.up(tmp_path, ports=Ports(prom, am, port), registry=False)
        with pytest.raises(LabError, match=f"port {port} .*--mlflow-port"):
            control.up(tmp_path, ports=Ports(prom, am, svc, port))
    with pytest.raises(LabError, match="cannot both use port"):
        control.up(tmp_path, ports=Ports(prom, prom, am), registry=False)
    with pytest.raises(LabError, match="service and mlflow cannot both use port"):
        control.up(tmp_path, ports=Ports(prom, am, svc, svc))
    assert not (tmp_path / "lab.json").exists()


def test_up_says_how_to_get_mlflow_when_it_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launch, "_BINARIES", {})  # Prometheus and Alertmanager: not needed
    monkeypatch.setenv("MLCONSOLE_MLFLOW", str(tmp_path / "no-such-mlflow"))
    with pytest.raises(LabError) as failure:
        control.up(tmp_path / "state", ports=Ports(*free_ports(4)))
    message = str(failure.value)
    assert "\n" not in message
    assert "MLCONSOLE_MLFLOW" in message and "bash scripts/setup.sh" in message
    assert "--no-registry" in message
    monkeypatch.delenv("MLCONSOLE_MLFLOW")
    monkeypatch.setattr(launch, "DEFAULT_MLFLOW", tmp_path / ".venv-mlflow" / "bin" / "mlflow")
    with pytest.raises(LabError, match=r"\.venv-mlflow/bin/mlflow .*bash scripts/setup.sh"):
        control.up(tmp_path / "state", ports=Ports(*free_ports(4)))


def fake_binary(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(script))
    path.chmod(0o755)


def test_up_reports_a_crashing_component_and_stops_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_binary(bin_dir, "prometheus-alertmanager", f"echo $$ > {tmp_path}/am.pid\nexec sleep 60\n")
    fake_binary(bin_dir, "prometheus", "echo 'err: opening storage failed'\nexit 3\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "state"
    with pytest.raises(LabError) as failure:
        control.up(root, ports=Ports(*free_ports(3)), timeout=30, registry=False)
    message = str(failure.value)
    assert "prometheus exited with code 3" in message
    assert "opening storage failed" in message  # the log tail
    assert not (root / "lab.json").exists()
    # What was started is gone: the fake Alertmanager, and the service (the only
    # process with the state dir on its command line).
    am_pid = int((tmp_path / "am.pid").read_text())
    assert not procs.group_members(am_pid)
    leftovers = subprocess.run(["pgrep", "-f", str(root)], capture_output=True, text=True)
    assert leftovers.stdout.split() == []


def test_up_reports_a_crashing_mlflow_and_stops_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_binary(bin_dir, "prometheus-alertmanager", "exec sleep 60\n")
    fake_binary(bin_dir, "prometheus", "exec sleep 60\n")
    fake_binary(
        bin_dir, "mlflow", "echo \"MLflow: $*\"\necho 'alembic: database is locked'\nexit 1\n"
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("MLCONSOLE_MLFLOW", "mlflow")  # found on PATH
    root = tmp_path / "state"
    with pytest.raises(LabError) as failure:
        control.up(root, ports=Ports(*free_ports(4)), timeout=30)
    message = str(failure.value)
    assert "mlflow exited with code 1" in message
    assert "database is locked" in message
    # The lean form: one worker, SQLite in the state dir, loopback only.
    assert "--workers 1" in message and f"sqlite:///{root}/data/mlflow/mlflow.db" in message
    assert "--host 127.0.0.1" in message
    assert not (root / "lab.json").exists()
    leftovers = subprocess.run(["pgrep", "-f", str(root)], capture_output=True, text=True)
    assert leftovers.stdout.split() == []


# -- commands without a running lab ----------------------------------------------------


def test_inject_and_reset_need_a_running_lab(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="not up"):
        control.inject(tmp_path, "drift")
    with pytest.raises(LabError, match="not up"):
        control.reset(tmp_path)


def test_cli_without_a_lab(tmp_path: Path) -> None:
    run = run_cli("status", "--state-dir", str(tmp_path))
    assert run.returncode == 3 and "not running" in run.stdout
    run = run_cli("status", "--json", "--state-dir", str(tmp_path))
    assert run.returncode == 3 and json.loads(run.stdout)["up"] is False
    run = run_cli("inject", "drift", "--state-dir", str(tmp_path))
    assert run.returncode == 1 and "not up" in run.stderr
    run = run_cli("down", "--state-dir", str(tmp_path))
    assert run.returncode == 0 and "not running" in run.stdout
