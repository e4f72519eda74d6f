"""The console against the real lab: Prometheus, Alertmanager and the model service.

Everything here polls with a deadline; no test asserts on wall-clock speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from console.config.loader import load_config
from console.sources.snapshot import Health
from lab import control, procs, state
from screens.app import create_app
from screens.runbook import RunbookScreen
from tests.waits import until_live

pytestmark = pytest.mark.integration

MODEL = "fraud-detector"
DEADLINE = 150.0


def mlconsole(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLCONSOLE_CONFIG": str(config)}
    return subprocess.run(
        [sys.executable, "-m", "console.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def bad_deploy_seen(status: dict[str, Any]) -> bool:
    model = status["models"].get(MODEL)
    if model is None:
        return False
    reading = model["slis"].get("error_ratio", {})
    # The short burn window too: an earlier incident may still hold the 1m ratio up.
    # And the 1m ratio well past its 1% objective: it climbs for a minute after the
    # deploy, so the alert can fire while it still reads 0.09.
    breaching = (
        reading.get("status") == "breach"
        and (reading.get("burn_rate") or 0) > 14.4
        and (reading.get("value") or 0) > 0.1
    )
    burning = any(a["name"] == "ModelErrorBudgetBurn" and a["firing"] for a in model["alerts"])
    return breaching and burning


@pytest.fixture(scope="module")
def bad_deploy(lab: Any) -> Any:
    control.reset(lab.state_dir)
    control.inject(lab.state_dir, "bad-deploy", MODEL)
    yield lab
    control.reset(lab.state_dir)


def test_status_json_shows_the_bad_deploy(bad_deploy: Any) -> None:
    deadline = time.monotonic() + DEADLINE
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = mlconsole(bad_deploy.config_path, "status", "--json")
        assert "Traceback" not in run.stderr
        last = json.loads(run.stdout)
        if bad_deploy_seen(last):
            assert run.returncode == 1  # alerts firing
            break
        time.sleep(2)
    else:
        pytest.fail(
            f"no breach + firing burn-rate alert for {MODEL} within {DEADLINE}s: "
            f"{json.dumps(last.get('models', {}).get(MODEL), indent=1)[:2000]}"
        )
    reading = last["models"][MODEL]["slis"]["error_ratio"]
    assert reading["value"] > 0.1 and reading["burn_rate"] > 14.4
    # The fault stays on its model: the others keep their normal ~0.2% error ratio
    # (a young lab's 1m window is too noisy to demand "ok" of them).
    healthy = last["models"]["recommender"]["slis"]["error_ratio"]
    assert healthy["value"] < 0.05 and healthy["burn_rate"] < 14.4
    assert all(s["state"] == "ok" for s in last["sources"].values())


def test_status_table_exit_code_and_text(bad_deploy: Any) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        run = mlconsole(bad_deploy.config_path, "status")
        if run.returncode == 1 and "ModelErrorBudgetBurn" in run.stdout:
            break
        time.sleep(2)
    else:
        pytest.fail(f"status never showed the alert: {run.stdout[-1500:]}")
    assert MODEL in run.stdout and "Sources" in run.stdout


async def wait_until(pilot: Any, condition: Any, what: str, deadline: float = DEADLINE) -> None:
    await until_live(pilot, condition, what, deadline)


async def test_dashboard_shows_the_bad_deploy(bad_deploy: Any) -> None:
    app = create_app(load_config(bad_deploy.config_path))
    async with app.run_test(size=(160, 48)) as pilot:

        def shown() -> bool:
            snap = app.snapshot
            firing = [a for a in snap.alerts_for(MODEL) if a.state == "active"]
            return any(a.name == "ModelErrorBudgetBurn" for a in firing)

        await wait_until(pilot, shown, "the burn-rate alert on the dashboard")
        models = app.screen.query_one("#models", DataTable)
        alerts = app.screen.query_one("#alerts", DataTable)

        def drawn() -> bool:  # the snapshot that has it, painted into both tables
            names = [str(alerts.get_row_at(i)[1]) for i in range(alerts.row_count)]
            return models.row_count > 0 and "ModelErrorBudgetBurn" in names

        await wait_until(pilot, drawn, "the alert in the alerts table")
        assert str(models.get_row_at(0)[0]) == MODEL  # worst first
        errors = models.get_cell(MODEL, "error_ratio")
        assert "red" in str(errors.style)  # breach colour
        models.move_cursor(row=0)  # the cursor followed its model as rows re-sorted
        await pilot.press("enter")  # open the model's firing alert
        detail = app.screen
        assert detail.alert is not None and detail.alert.model == MODEL  # type: ignore[attr-defined]
        assert detail.alert.annotations.get("runbook")  # type: ignore[attr-defined]
        await pilot.press("escape")  # back to the dashboard
        await pilot.press("t")  # triage: the model-regression runbook, pre-triaged
        await wait_until(pilot, lambda: isinstance(app.screen, RunbookScreen), "runbook")
        screen = app.screen
        assert isinstance(screen, RunbookScreen) and screen.walk.runbook.id == "model-regression"
        await app.workers.wait_for_complete()
        assert screen.walk.evidence[0].step_id == "errors-now"
        assert screen.walk.evidence[0].decision == "true"


def restart(lab: Any, component: str) -> None:
    record = lab.processes[component]
    lab.processes[component] = procs.spawn(record.argv, Path(record.log), cwd=lab.state_dir)
    state.save(lab)


@pytest.mark.parametrize("component", ["prometheus", "alertmanager"])
async def test_source_stopped_mid_run_is_down_then_recovers(lab: Any, component: str) -> None:
    app = create_app(load_config(lab.config_path))
    async with app.run_test(size=(160, 48)) as pilot:

        def state_of() -> Health:
            return app.snapshot.sources[component].state(time.time())

        await wait_until(pilot, lambda: state_of() is Health.OK, f"{component} ok")
        procs.stop([lab.processes[component]], timeout=10)
        try:
            await wait_until(pilot, lambda: state_of() is Health.DOWN, f"{component} down")

            def bar() -> str:
                return str(app.screen.query_one("#sources").render())

            # The header says how old the last data is once it has aged a second.
            await wait_until(pilot, lambda: "old" in bar(), f"{component}'s data shown as old")
            assert f"{component} DOWN data" in bar()
            assert "cannot connect" in bar() or "timed out" in bar()
            await pilot.press("question_mark")  # the console still takes keys
            await pilot.press("escape")
            assert app.is_running
        finally:
            restart(lab, component)
        await wait_until(pilot, lambda: state_of() is Health.OK, f"{component} back")


def test_status_exit_code_3_when_a_source_is_unreachable(lab: Any, tmp_path: Path) -> None:
    config = lab.config_path.read_text().replace(lab.alertmanager_url, "http://127.0.0.1:9")
    path = tmp_path / "broken.yaml"
    path.write_text(config)
    run = mlconsole(path, "status", "--json")
    assert run.returncode == 3
    body = json.loads(run.stdout)
    assert body["sources"]["alertmanager"]["state"] == "down"
    assert "cannot connect" in body["sources"]["alertmanager"]["last_error"]
