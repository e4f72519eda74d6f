"""A repeated page is a new incident with a triage of its own: the same alert fires,
is triaged, resolved, and fires again. Keys on the real app, with the incidents, the
walks and the exports in one store in the test's directory (no network)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from textual.widgets import DataTable

from adapters.records import AlertRecord
from console.config.loader import load_text
from console.config.models import Config
from console.export.build import export_files
from console.incidents.book import IncidentBook
from console.session import open_reading
from console.sources.snapshot import Snapshot, SourceHealth
from console.triage.catalog import Catalog
from console.triage.runbook import Runbook
from console.triage.store import Store
from console.triage.triage import Triage
from screens.app import MLConsoleApp, create_app
from screens.runbook import RunbookScreen
from tests.builders import CONFIG, NOW, snapshot
from tests.test_incident_screen import until
from tests.test_triage import RUNBOOK, Scripted

SIZE = (160, 40)
CHURN = "churn-predictor-ModelFeatureDrift"


def sequence_config(tmp_path: Path) -> Config:
    return CONFIG.model_copy(
        update={
            "store": CONFIG.store.model_copy(update={"path": tmp_path / "store.db"}),
            "incidents": CONFIG.incidents.model_copy(
                update={"auto_open": True, "export_dir": tmp_path, "end_grace": 0.0}
            ),
        }
    )


def churn_alert(starts_at: float) -> AlertRecord:
    (churn,) = [a for a in snapshot().alerts if a.fingerprint == CHURN]
    return replace(churn, starts_at=datetime.fromtimestamp(starts_at, UTC))


def world(at: float, *alerts: AlertRecord) -> Snapshot:
    """What the sources say at ``at``: both answered a second ago, with ``alerts``."""
    base = snapshot()
    sources = {
        name: SourceHealth(name, name, 2, 6, last_success=at - 1)
        for name in ("prometheus", "alertmanager")
    }
    return Snapshot.build(
        taken_at=at, slis=base.slis, readings=base.readings, alerts=alerts, sources=sources
    )


async def triage_churn(app: MLConsoleApp, pilot: Any) -> RunbookScreen:
    await pilot.press("tab")  # to the alerts table
    table = app.screen.query_one("#alerts", DataTable)
    table.move_cursor(row=table.get_row_index(CHURN))  # churn-predictor's drift alert
    await pilot.press("t")  # triage it with its runbook
    await until(pilot, lambda: isinstance(app.screen, RunbookScreen), "the runbook screen")
    screen = app.screen
    assert isinstance(screen, RunbookScreen)
    await app.workers.wait_for_complete()
    await pilot.pause()
    return screen


async def test_a_repeated_page_starts_a_new_walk_and_exports_only_its_own_triage(
    tmp_path: Path,
) -> None:
    config = sequence_config(tmp_path)
    clock = {"now": NOW}
    metrics = Scripted({"drift_psi": 0.41, "null_ratio": 0.0})
    runbook = load_text(RUNBOOK, "drift-test.yaml", Runbook)
    assert config.store.path is not None
    triage = Triage(
        Catalog(runbooks={runbook.id: runbook}), Store(config.store.path), metrics, actor="ann"
    )
    app = create_app(config, poll=False, clock=lambda: clock["now"], triage=triage, actor="ann")
    app.snapshot = world(NOW)
    first_start, second_start = NOW - 600, NOW + 1200
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.incidents is not None, "the incidents opened")
        book = app.incidents
        assert book is not None

        # The first page: an incident opens, pre-triage stops at the question.
        app.apply_snapshot(world(NOW, churn_alert(first_start)))
        await until(pilot, lambda: app.open_incidents, "the first incident opened")
        (first,) = app.open_incidents
        screen = await triage_churn(app, pilot)
        old_walk = screen.walk.record
        assert screen.walk.current.id == "upstream"
        await pilot.press("1")  # "Yes": an upstream population change
        await until(pilot, lambda: screen.walk.concluded, "the first walk concluded")
        assert screen.walk.record.summary == "Population shift in churn-predictor"
        await pilot.press("escape")  # back to the dashboard

        # The alert stops; a responder resolves the incident from another console (this
        # one still lists it as open until its next sync).
        clock["now"] = NOW + 600
        app.apply_snapshot(world(NOW + 600))
        await until(pilot, lambda: not book.get(first.number).firing, "the alert ended")
        other = IncidentBook(config.store.path, clock=lambda: clock["now"])
        other.resolve(first.number, actor="bob", now=NOW + 610)
        other.close()
        assert [i.number for i in app.open_incidents] == [first.number]

        # The same alert fires again, now from a schema break: a new incident, and
        # pre-triage walks the new firing (its checks conclude on their own).
        metrics.answers["null_ratio"] = 0.5
        clock["now"] = NOW + 1230
        app.apply_snapshot(world(NOW + 1230, churn_alert(second_start)))
        await until(
            pilot,
            lambda: [i.number for i in app.open_incidents] not in ([], [first.number]),
            "the second incident opened",
        )
        (second,) = app.open_incidents
        assert second.number != first.number
        await app.workers.wait_for_complete()
        early = [r for r in triage.store.runs() if r.firing_at == second_start]
        assert [r.incident for r in early] == [None]  # pre-triage filed it under no old one

        screen = await triage_churn(app, pilot)  # t on the repeated page
        new_walk = screen.walk.record
        assert new_walk.id != old_walk.id  # not the first incident's finished walk
        assert new_walk.incident == second.number
        assert new_walk.firing_at == second_start
        assert screen.walk.concluded and new_walk.summary == "Schema change upstream"
        await pilot.press("escape")  # back to the dashboard
        await pilot.press("e")  # export the selected alert's incident
        exported = tmp_path / f"{second.id}.json"
        await until(pilot, exported.exists, "the second incident exported")
        await app.workers.wait_for_complete()

    doc = json.loads(exported.read_text())
    assert [run["run"] for run in doc["triage"]] == [new_walk.id]
    assert doc["root_cause"]["summary"] == "Schema change upstream"
    markdown = exported.with_suffix(".md").read_text()
    assert "Population shift" not in markdown and old_walk.id not in markdown

    records = open_reading(config)  # the first incident keeps its own triage
    try:
        paths = await asyncio.to_thread(
            export_files, records, records.book.get(first.number), tmp_path
        )
    finally:
        records.close_stores()
    earlier = json.loads(next(p for p in paths if p.suffix == ".json").read_text())
    assert [run["run"] for run in earlier["triage"]] == [old_walk.id]
    assert earlier["root_cause"]["summary"] == "Population shift in churn-predictor"
