"""What the console holds follows the alerts firing now, not every alert it has seen:
pages fire and clear, cycle after cycle, on the real app (snapshots given by the test,
incidents and walks in a store in the test's directory, no network)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.records import AlertRecord
from console.config.loader import load_text
from console.sources.snapshot import Snapshot
from console.triage.catalog import Catalog
from console.triage.runbook import Runbook
from console.triage.store import Store
from console.triage.triage import Triage
from screens.app import MLConsoleApp, create_app
from tests.builders import NOW
from tests.test_incident_screen import until
from tests.test_repeat_page import sequence_config, world
from tests.test_triage import RUNBOOK, Scripted

PAGES = 12
CYCLES = 5


def drift_alert(cycle: int, index: int, at: float) -> AlertRecord:
    """A page of its own model and fingerprint in each cycle: every cycle is news."""
    model = f"model-{cycle}-{index}"
    return AlertRecord(
        fingerprint=f"fp-{cycle}-{index}",
        labels={"alertname": "ModelFeatureDrift", "model": model, "severity": "page"},
        annotations={"summary": f"{model} drifts"},
        starts_at=datetime.fromtimestamp(at - 30, UTC),
        ends_at=None,
        updated_at=None,
        state="active",
        generator_url="",
    )


def held(app: MLConsoleApp) -> dict[str, int]:
    """The sizes of what the app keeps about alerts and incidents between snapshots."""
    return {
        "pretriaged": len(app._pretriaged),
        "pre-triage started": len(app.triage._started) if app.triage is not None else 0,
        "breaches due": len(getattr(app, "_breaches_due", ())),
        "workers": len(app.workers),
        "tasks": len(asyncio.all_tasks()),
        "open incidents": len(app.open_incidents),
    }


async def fire_and_clear(
    app: MLConsoleApp, pilot: Any, clock: dict[str, float], cycle: int
) -> None:
    """PAGES pages fire (incidents open, pre-triage walks), then stop, and the
    incidents resolve by themselves once quiet for ``auto_resolve_after``."""
    clock["now"] += 100
    app.apply_snapshot(
        world(clock["now"], *(drift_alert(cycle, i, clock["now"]) for i in range(PAGES)))
    )
    await until(pilot, lambda: len(app.open_incidents) == PAGES, f"cycle {cycle}'s incidents")
    await app.workers.wait_for_complete()
    for step in (10, 100):  # the alerts stop; a minute later the incidents resolve
        clock["now"] += step
        app.apply_snapshot(world(clock["now"]))
        await app.workers.wait_for_complete()
    await until(pilot, lambda: not app.open_incidents, f"cycle {cycle}'s incidents resolved")
    await app.workers.wait_for_complete()


async def test_what_the_app_holds_returns_to_its_size_after_pages_fire_and_clear(
    tmp_path: Path,
) -> None:
    config = sequence_config(tmp_path)
    config = config.model_copy(
        update={"incidents": config.incidents.model_copy(update={"auto_resolve_after": 60.0})}
    )
    assert config.store.path is not None
    runbook = load_text(RUNBOOK, "drift-test.yaml", Runbook)
    metrics = Scripted({"drift_psi": 0.41, "null_ratio": 0.0})  # walks stop at a question
    triage = Triage(Catalog(runbooks={runbook.id: runbook}), Store(config.store.path), metrics)
    clock = {"now": NOW}
    app = create_app(config, poll=False, clock=lambda: clock["now"], triage=triage)
    app.snapshot = world(NOW)
    async with app.run_test() as pilot:
        await until(pilot, lambda: app.incidents is not None, "the incidents opened")
        await fire_and_clear(app, pilot, clock, 0)  # once, so every cache is warm
        before = held(app)
        for cycle in range(1, CYCLES + 1):
            await fire_and_clear(app, pilot, clock, cycle)
        after = held(app)
        walks = triage.store.runs()

    assert len(walks) == PAGES * (CYCLES + 1)  # every page was walked: the work was done
    assert before["pretriaged"] == before["pre-triage started"] == before["open incidents"] == 0
    assert after == before


async def test_an_incident_sync_holds_the_alerts_not_the_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync runs for seconds at 500 alerts; meanwhile new snapshots come in. What
    it holds is the alerts it syncs, not the whole snapshot they came in (at a
    thousand models, a generation of readings kept alive for nothing)."""
    import gc
    import threading

    from console.incidents import live as incident_live

    entered, release = threading.Event(), threading.Event()
    real = incident_live.sync_alerts

    def slow_sync(*args: Any, **kwargs: Any) -> Any:  # the store is slow this time
        entered.set()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(incident_live, "sync_alerts", slow_sync)
    config = sequence_config(tmp_path)
    app = create_app(config, poll=False, clock=lambda: NOW + 1)
    app.snapshot = world(NOW)
    page = drift_alert(0, 0, NOW)
    async with app.run_test() as pilot:
        await until(pilot, lambda: app.incidents is not None, "the incidents opened")
        app.apply_snapshot(world(NOW + 0.5, page))  # the sync starts from this one
        assert await asyncio.to_thread(entered.wait, 30)
        app.apply_snapshot(world(NOW + 0.75, page))  # the next one, shown meanwhile
        await pilot.pause()
        gc.collect()
        alive = {o.taken_at for o in gc.get_objects() if isinstance(o, Snapshot)}
        release.set()
        await app.workers.wait_for_complete()
        await until(pilot, lambda: len(app.open_incidents) == 1, "the page's incident")
    assert NOW + 0.75 in alive
    assert NOW + 0.5 not in alive, "the sync kept the snapshot it started from"
