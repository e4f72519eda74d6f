"""The scale lab's synthetic fleet: the series the console reads, their values, the
alerts that go with them, and how `lab up --scale` refuses what it cannot do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from console.config.loader import load_config
from console.sources.poller import sli_queries
from console.sources.sli import SliStatus, judge
from lab import control, procs, scale, state
from lab.configs import Ports, mlconsole_config
from lab.errors import LabError
from lab.scale import KIND_ALERTS, KINDS, METRICS, Fleet, alert_rules, value_at
from lab.state import LabInfo

#: One full slow wave, in steps that also catch the fast wave's peaks and troughs.
TIMES = [1_800_000_000.0 + 7.0 * i for i in range(90)]


def scale_config(tmp_path: Path) -> Path:
    path = tmp_path / "mlconsole.yaml"
    path.write_text(mlconsole_config(Ports(victoria=23999), tmp_path, scale=True))
    return path


def test_scale_config_reads_victoria_through_the_prometheus_type_without_service(
    tmp_path: Path,
) -> None:
    config = load_config(scale_config(tmp_path))
    assert sorted(config.sources) == ["alertmanager", "prometheus"]
    assert config.sources["prometheus"].type == "prometheus"
    assert config.sources["prometheus"].url == "http://127.0.0.1:23999"
    # No switch sources, so no fallback or pipeline actions through them.
    assert config.actions.fallback is None
    assert config.actions.pipeline is None


def test_synthetic_series_cover_every_query_of_the_lab_config(tmp_path: Path) -> None:
    config = load_config(scale_config(tmp_path))
    assert set(sli_queries(config.slis)) <= {m.name for m in METRICS}


def test_healthy_models_meet_every_objective_and_breaching_ones_break_theirs(
    tmp_path: Path,
) -> None:
    config = load_config(scale_config(tmp_path))
    fleet = Fleet.of(50, 0.1)
    assert sorted(fleet.kinds.values()) == sorted(KINDS)  # five models, one per kind
    by_name = {m.name: m for m in METRICS}
    rules = alert_rules()
    for index in range(50):
        kind = fleet.kinds.get(index)
        # The SLI the kind's alert is about, by the rule's own `sli` label.
        paged = None if kind is None else rules[KIND_ALERTS[kind][0]]["labels"]["sli"]
        for sli in config.slis:
            statuses = {judge(sli, value_at(by_name[sli.query], index, kind, t)) for t in TIMES}
            if kind is None:
                assert statuses == {SliStatus.OK}, (fleet.models[index], sli.name)
            elif sli.name == paged:
                # A kind may move more SLIs than its alert names (latency moves p95
                # and p99); the one that paged breaches all along.
                assert statuses == {SliStatus.BREACH}, (fleet.models[index], sli.name)


def test_alerts_carry_their_rules_labels_for_each_breaching_model() -> None:
    fleet = Fleet.of(50, 0.1)
    alerts = fleet.alerts("http://vm", 100.0, 400.0)
    rules = alert_rules()
    assert len(alerts) == len(fleet.kinds) == 5
    for alert, (index, kind) in zip(alerts, sorted(fleet.kinds.items()), strict=True):
        name = KIND_ALERTS[kind][0]
        labels = alert["labels"]
        assert labels == {"alertname": name, "model": fleet.models[index], **rules[name]["labels"]}
        assert alert["annotations"]["runbook"] == rules[name]["annotations"]["runbook"]
        assert alert["startsAt"] == "1970-01-01T00:01:40.000+00:00"
        assert alert["endsAt"] == "1970-01-01T00:06:40.000+00:00"


def test_history_lines_join_the_appended_points_without_a_seam() -> None:
    fleet = Fleet.of(12, 0.25)
    stamps = TIMES[:5]
    lines = [json.loads(line) for line in fleet.history_lines(stamps, 0, 12)]
    assert len(lines) == fleet.series == 12 * len(METRICS)
    appended = {}
    for line in fleet.point_text(stamps[-1]).splitlines():
        series, value, stamp = line.rsplit(" ", 2)
        assert int(stamp) == round(stamps[-1] * 1000)
        appended[series] = float(value)
    assert len(appended) == fleet.series
    for line in lines:
        assert line["timestamps"] == [round(t * 1000) for t in stamps]
        series = f'{line["metric"]["__name__"]}{{model="{line["metric"]["model"]}"}}'
        assert line["values"][-1] == appended[series]
        assert len(set(line["values"])) > 1  # the values move


def test_breaching_models_are_spread_over_the_fleet() -> None:
    kinds = scale.breach_kinds(10_000, 0.05)
    assert len(kinds) == 500
    assert min(kinds) == 0 and max(kinds) == 9_980
    assert scale.breach_kinds(10, 0.0) == {}


def lab_up(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "console.cli.main", "lab", "up", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_scale_up_refuses_without_victoria_metrics(tmp_path: Path) -> None:
    # A PATH with Alertmanager on it but no victoria-metrics.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if alertmanager is None:
        pytest.skip("Alertmanager is not installed")
    (bin_dir / "prometheus-alertmanager").symlink_to(alertmanager)
    state = tmp_path / "state"
    result = lab_up("--scale", "5", "--state-dir", str(state), path=str(bin_dir))
    assert result.returncode == 1
    assert result.stderr == (
        "mlconsole lab: victoria-metrics not found on PATH (on Debian/Ubuntu: apt-get "
        "install victoria-metrics prometheus-alertmanager, or bash scripts/setup.sh)\n"
    )
    assert not (state / "lab.json").exists()


def test_scale_and_models_together_are_refused(tmp_path: Path) -> None:
    # Should it start anyway, a tiny timeout has it stop again at once.
    result = lab_up(
        "--scale", "5", "--models", "3", "--timeout", "0.01", "--state-dir", str(tmp_path)
    )
    assert result.returncode == 2
    assert "argument --models: not allowed with argument --scale" in result.stderr


def running_lab(tmp_path: Path, *, scale_lab: bool) -> LabInfo:
    """A lab record whose every component is this very test process, so it counts as up."""
    me = procs.ProcessRecord(os.getpid(), procs.start_identity(os.getpid()), ["pytest"], "/l")
    info = LabInfo(tmp_path, ["m"], Ports(), 1.0, scale=scale_lab)
    info.processes = dict.fromkeys(info.components, me)
    state.save(info)
    return info


def test_scale_lab_record_round_trips(tmp_path: Path) -> None:
    info = running_lab(tmp_path, scale_lab=True)
    loaded = state.load(tmp_path)
    assert loaded is not None and loaded.scale and loaded.mode == "scale"
    assert loaded.to_json() == info.to_json()
    assert loaded.components == ("victoria", "alertmanager", "feeder")
    # The feeder listens nowhere; the console reads VictoriaMetrics.
    assert sorted(loaded.urls) == ["alertmanager", "victoria"]
    assert loaded.metrics_url == "http://127.0.0.1:19428"


@pytest.mark.parametrize("running_scale", [True, False])
def test_up_refuses_to_start_one_mode_over_the_other(tmp_path: Path, running_scale: bool) -> None:
    running_lab(tmp_path, scale_lab=running_scale)
    mode = "scale" if running_scale else "simulation"
    with pytest.raises(LabError, match=f"the {mode} lab is already running in"):
        control.up(tmp_path, scale=not running_scale, registry=False)
    again = control.up(tmp_path, scale=running_scale, registry=False)
    assert again.already_running
