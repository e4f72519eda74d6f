"""Mitigations against the real lab: MLflow, the model service, Prometheus, Alertmanager.

Every test polls with a deadline; none asserts on wall-clock speed. Faults in
the middle of a flow (a held or failed request) come from tests/httpproxy.py in
front of the real server, so the rest of the flow stays real.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from console.actions.executor import Executor, Outcome
from console.actions.kinds import build_action
from console.audit.log import AuditLog
from console.config.loader import load_config
from lab import control
from screens.action import ActionScreen
from screens.app import create_app
from tests.httpproxy import FaultProxy
from tests.waits import until_live

pytestmark = pytest.mark.integration

MODEL = "fraud-detector"
DEADLINE = 120.0
API = "/api/2.0/mlflow"


# -- helpers -------------------------------------------------------------------------


def wait_for(what: str, probe: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    last: Any = None
    while time.monotonic() < end:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"{what}: not within {deadline:g}s (last: {last!r})")


def champion(lab: Any) -> str | None:
    answer = httpx.get(
        f"{lab.mlflow_url}{API}/registered-models/alias",
        params={"name": MODEL, "alias": "champion"},
        timeout=10,
    )
    answer.raise_for_status()
    return str(answer.json()["model_version"]["version"])


def move_champion(lab: Any, version: str) -> None:
    httpx.post(
        f"{lab.mlflow_url}{API}/registered-models/alias",
        json={"name": MODEL, "alias": "champion", "version": version},
        timeout=10,
    ).raise_for_status()


def error_ratio(lab: Any) -> float | None:
    answer = httpx.get(
        f"{lab.prometheus_url}/api/v1/query",
        params={"query": f'mlc:error_ratio:rate10s{{model="{MODEL}"}}'},
        timeout=10,
    ).json()
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def bad_deploy(lab: Any) -> None:
    """Reset the lab, deploy the bad version, and wait until it hurts."""
    control.reset(lab.state_dir)
    control.inject(lab.state_dir, "bad-deploy", MODEL)
    wait_for("champion moved to v4", lambda: champion(lab) == "4")
    wait_for("the bad version's errors in Prometheus", lambda: (error_ratio(lab) or 0) > 0.1)


def lab_config(
    lab: Any, tmp_path: Path, *, tokens: dict[str, str] | None = None, **changes: Any
) -> Path:
    """The lab's config with its own store and audit log, and optional source changes."""
    data = yaml.safe_load(Path(lab.config_path).read_text())
    data["store"] = {"path": str(tmp_path / "store.db")}
    for source, token in (tokens or {}).items():
        data["sources"][source]["bearer_token"] = token
        data["sources"][source]["headers"] = {"X-Api-Key": f"{token}-key"}
    for source, url in changes.items():
        data["sources"][source]["url"] = url
        # Through a proxy that holds requests, the client must outwait the test.
        data["sources"][source]["timeout"] = 60
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def mlconsole(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli.main", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "MLCONSOLE_ACTOR": "tester@ci"},
    )


def audit_of(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.db")


def kinds(log: AuditLog) -> list[str]:
    return [e.kind for e in log.entries()]


@pytest.fixture
def lab_clean(lab: Any) -> Any:
    control.reset(lab.state_dir)
    yield lab
    control.reset(lab.state_dir)


# -- rollback, end to end --------------------------------------------------------------


async def test_rollback_from_the_dashboard_recovers_the_model(
    lab_clean: Any, tmp_path: Path
) -> None:
    lab = lab_clean
    await asyncio.to_thread(bad_deploy, lab)
    config = load_config(lab_config(lab, tmp_path))
    app = create_app(config, actor="pilot@test")
    async with app.run_test(size=(200, 50)) as pilot:

        async def until(what: str, probe: Callable[[], Any], deadline: float = DEADLINE) -> Any:
            return await until_live(pilot, probe, what, deadline)

        await until("the registry polled", lambda: MODEL in app.snapshot.deployments)
        await until("the session opened", lambda: app.session is not None)
        assert app.snapshot.deployments[MODEL].version == "4"
        dashboard = app.screen
        table = dashboard.query_one("#models")
        rows = dashboard._model_rows  # type: ignore[attr-defined]
        table.move_cursor(row=rows.index(MODEL))
        table.focus()
        await pilot.press("r")
        screen = await until(
            "the plan", lambda: isinstance(app.screen, ActionScreen) and app.screen
        )
        assert screen.plan.summary() == f"{MODEL}@champion: v4 → v3"
        await pilot.press("y")
        await until("the verdict", lambda: screen.stage == "done", deadline=90)
        report = app.reports[-1]
        assert report.outcome is Outcome.APPLIED and report.confirmed
        assert screen.recovery is not None and screen.recovery.recovered, screen.recovery
        await pilot.press("escape")

    assert champion(lab) == "3"  # as MLflow itself reports
    wait_for("errors back under 1% in Prometheus", lambda: (error_ratio(lab) or 1) < 0.01)
    log = audit_of(tmp_path)
    assert kinds(log) == ["intent", "result", "verify"]
    intent, result, verify = log.entries()
    assert intent.body["actor"] == "pilot@test"
    assert intent.body["plan"]["summary"] == f"{MODEL}@champion: v4 → v3"
    assert result.body["result"]["read_back"] == {"version": "3"}
    assert verify.body["result"]["recovered"] is True
    run = mlconsole(tmp_path / "config.yaml", "audit", "verify")
    assert run.returncode == 0, run.stdout + run.stderr


def test_rollback_from_the_cli_recovers_the_model(lab_clean: Any, tmp_path: Path) -> None:
    lab = lab_clean
    bad_deploy(lab)
    config = lab_config(lab, tmp_path)
    dry = mlconsole(config, "rollback", MODEL, "--dry-run")
    assert dry.returncode == 0 and f"{MODEL}@champion: v4 → v3" in dry.stdout
    assert champion(lab) == "4" and kinds(audit_of(tmp_path)) == []

    run = mlconsole(config, "rollback", MODEL, "--yes", "--json")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["outcome"] == "applied" and out["recovery"]["recovered"] is True
    assert "Watching error_ratio" in run.stderr  # progress while it waits
    assert champion(lab) == "3"
    log = audit_of(tmp_path)
    assert kinds(log) == ["intent", "result", "verify"]
    assert log.entries()[0].body["actor"] == "tester@ci"
    assert mlconsole(config, "audit", "verify").returncode == 0


# -- the world moved ------------------------------------------------------------------


async def test_an_alias_moved_by_someone_else_is_refused_and_audited(
    lab_clean: Any, tmp_path: Path
) -> None:
    lab = lab_clean
    await asyncio.to_thread(bad_deploy, lab)
    from console.session import open_session

    space = await open_session(load_config(lab_config(lab, tmp_path)), actor="ana@ops")
    try:
        action = build_action(space.ctx, "rollback", {"model": MODEL})
        plan = await action.plan()
        assert plan.summary() == f"{MODEL}@champion: v4 → v3"
        await asyncio.to_thread(move_champion, lab, "2")  # a deploy tool, meanwhile
        report = await Executor(space.ctx, space.audit).run(action, plan)
    finally:
        await space.close()
    assert report.outcome is Outcome.REFUSED
    assert "now points at v2, not v4" in report.message
    assert champion(lab) == "2"
    log = audit_of(tmp_path)
    assert kinds(log) == ["intent", "refusal"]
    assert "now points at v2" in log.entries()[1].body["error"]
    assert log.verify().ok and log.in_doubt() == []


# -- crash between intent and result ----------------------------------------------------


@pytest.mark.parametrize(
    ("hold", "verdict", "version"), [("hold", "applied", "3"), ("stall", "not applied", "4")]
)
async def test_a_killed_action_is_in_doubt_then_reconciled(
    lab_clean: Any, tmp_path: Path, hold: str, verdict: str, version: str
) -> None:
    lab = lab_clean
    await asyncio.to_thread(bad_deploy, lab)

    def rule(method: str, path: str) -> str:
        return hold if method == "POST" and path.endswith("/registered-models/alias") else "forward"

    with FaultProxy(lab.mlflow_url, rule) as proxy:
        config = lab_config(lab, tmp_path, registry=proxy.url)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "console.cli.main",
                "--config",
                str(config),
                "rollback",
                MODEL,
                "--yes",
                "--no-verify",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            await asyncio.to_thread(
                wait_for,
                "the alias request in flight",
                lambda: any(
                    p.endswith("/registered-models/alias") and m == "POST" for m, p, _ in proxy.seen
                ),
                60,
            )
            await asyncio.sleep(0.5)  # a held request has reached MLflow by now
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert champion(lab) == version
    log = audit_of(tmp_path)
    assert [e.kind for e in log.in_doubt()] == ["intent"]
    log.close()

    # The next start shows it in doubt and settles it by reading MLflow.
    app = create_app(load_config(lab_config(lab, tmp_path)), actor="next@start")
    async with app.run_test() as pilot:
        await until_live(pilot, lambda: app.reconciled, "the action in doubt settled", 60)
        assert [r.verdict for r in app.reconciled] == [verdict]
        assert f"{MODEL}@champion: v4 → v3" in app.reconciled[0].line()
    log = audit_of(tmp_path)
    assert kinds(log) == ["intent", "reconcile"]
    assert log.entries()[1].body["result"]["observed"] == {"version": version}
    assert log.in_doubt() == [] and log.verify().ok


# -- outages ----------------------------------------------------------------------------


def test_mlflow_failing_the_change_is_recorded_not_half_done(
    lab_clean: Any, tmp_path: Path
) -> None:
    lab = lab_clean
    bad_deploy(lab)

    def rule(method: str, path: str) -> str:
        return "503" if method == "POST" else "forward"

    with FaultProxy(lab.mlflow_url, rule) as proxy:
        run = mlconsole(lab_config(lab, tmp_path, registry=proxy.url), "rollback", MODEL, "--yes")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "HTTP 503" in run.stderr and "not applied" in run.stderr
    assert "Traceback" not in run.stderr
    assert champion(lab) == "4"
    log = audit_of(tmp_path)
    assert kinds(log) == ["intent", "result"]
    result = log.entries()[1].body
    assert result["result"]["applied"] is False and "HTTP 503" in result["error"]
    assert log.in_doubt() == []


def test_mlflow_down_means_no_plan_and_nothing_written(lab_clean: Any, tmp_path: Path) -> None:
    config = lab_config(lab_clean, tmp_path, registry="http://127.0.0.1:9")
    run = mlconsole(config, "rollback", MODEL, "--yes")
    assert run.returncode == 3
    assert "cannot plan" in run.stderr and "registry" in run.stderr
    assert "Traceback" not in run.stderr
    assert kinds(audit_of(tmp_path)) == []


def test_alertmanager_dropping_the_silence_is_recorded(lab_clean: Any, tmp_path: Path) -> None:
    lab = lab_clean

    def rule(method: str, path: str) -> str:
        return "drop" if method == "POST" and path.startswith("/api/v2/silences") else "forward"

    with FaultProxy(lab.alertmanager_url, rule) as proxy:
        config = lab_config(lab, tmp_path, alertmanager=proxy.url)
        run = mlconsole(config, "silence", MODEL, "--comment", "outage test", "--yes")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    log = audit_of(tmp_path)
    assert kinds(log) == ["intent", "result"]
    assert log.entries()[1].body["result"]["state"] == "not applied"
    silences = httpx.get(f"{lab.alertmanager_url}/api/v2/silences", timeout=10).json()
    assert not any("outage test" in s["comment"] for s in silences)


def test_secrets_never_reach_the_audit_log_or_the_output(lab_clean: Any, tmp_path: Path) -> None:
    """A registry that echoes the request headers in its errors: the token stops here."""
    lab = lab_clean
    token = "tok-9f8e7d6c5b4a"

    def rule(method: str, path: str) -> str:
        return "echo" if method == "POST" else "forward"

    with FaultProxy(lab.mlflow_url, rule) as proxy:
        config = lab_config(lab, tmp_path, tokens={"registry": token}, registry=proxy.url)
        run = mlconsole(config, "rollback", MODEL, "--to", "2", "--yes", "--json")
        status = mlconsole(config, "status", "--json")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "HTTP 503" in run.stdout + run.stderr
    for text in (run.stdout, run.stderr, status.stdout, status.stderr):
        assert token not in text
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("audit"))
    assert token.encode() not in raw and b"-key" not in raw
    assert kinds(audit_of(tmp_path)) == ["intent", "result"]


# -- the other mitigations, through the CLI ------------------------------------------------


def test_fallback_pipeline_and_silence_through_the_cli(lab_clean: Any, tmp_path: Path) -> None:
    lab = lab_clean
    config = lab_config(lab, tmp_path)
    service = lab.service_url

    def admin(kind: str) -> bool:
        answer = httpx.get(f"{service}/admin/{kind}", params={"model": MODEL}, timeout=10)
        return bool(answer.json()["enabled" if kind == "fallback" else "paused"])

    run = mlconsole(config, "fallback", MODEL, "on", "--yes", "--no-verify")
    assert run.returncode == 0, run.stderr
    assert "the model → rule-based fallback" in run.stdout
    assert admin("fallback")
    assert mlconsole(config, "fallback", MODEL, "on", "--yes").returncode == 2  # already on
    assert mlconsole(config, "fallback", MODEL, "off", "--yes", "--no-verify").returncode == 0
    assert not admin("fallback")

    assert mlconsole(config, "pipeline", "pause", MODEL, "--yes").returncode == 0
    assert admin("pipeline")
    assert mlconsole(config, "pipeline", "resume", MODEL, "--yes").returncode == 0
    assert not admin("pipeline")

    run = mlconsole(
        config, "silence", MODEL, "--duration", "20m", "--comment", "cli test", "--yes", "--json"
    )
    assert run.returncode == 0, run.stderr
    silence_id = json.loads(run.stdout)["result"]["silence_id"]
    silences = httpx.get(f"{lab.alertmanager_url}/api/v2/silences", timeout=10).json()
    ours = next(s for s in silences if s["id"] == silence_id)
    assert ours["createdBy"] == "tester@ci" and ours["comment"].startswith("cli test [mlconsole")
    assert mlconsole(config, "silence", "--expire", silence_id, "--yes").returncode == 0
    silences = httpx.get(f"{lab.alertmanager_url}/api/v2/silences", timeout=10).json()
    assert next(s for s in silences if s["id"] == silence_id)["status"]["state"] == "expired"

    log = audit_of(tmp_path)
    assert kinds(log).count("intent") == 6 and log.in_doubt() == [] and log.verify().ok


# -- read-only -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["rollback", MODEL, "--yes"],
        ["fallback", MODEL, "on", "--yes"],
        ["silence", MODEL, "--comment", "x", "--yes"],
        ["silence", "--expire", "some-id", "--yes"],
        ["pipeline", "pause", MODEL, "--yes"],
    ],
)
def test_read_only_cli_refuses_each_mutation(lab: Any, tmp_path: Path, command: list[str]) -> None:
    config = lab_config(lab, tmp_path)
    run = mlconsole(config, "--read-only", *command)
    assert run.returncode == 4
    assert "read-only" in run.stderr and "nothing was changed" in run.stderr
    assert not (tmp_path / "audit.db").exists()


async def test_read_only_dashboard_hides_and_refuses_the_keys(lab: Any, tmp_path: Path) -> None:
    config = load_config(lab_config(lab, tmp_path))
    app = create_app(config, read_only=True)
    async with app.run_test(size=(200, 50)) as pilot:
        await until_live(pilot, lambda: app.snapshot.models, "the models listed", 60)
        footer_keys = {
            b.binding.action for b in app.screen.active_bindings.values() if b.binding.show
        }
        for key in ("rollback", "fallback", "silence", "pipeline"):
            assert key not in footer_keys
        for key in ("r", "f", "s", "p"):
            await pilot.press(key)
            await app.workers.wait_for_complete()  # a plan, had one started
            await pilot.pause()
            assert not isinstance(app.screen, ActionScreen)
            assert type(app.screen).__name__ == "DashboardScreen"
    assert champion(lab) == "3"
