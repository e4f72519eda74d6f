"""Background work that fails is said, by the app, whoever ran it: a worker's state
change reaches only the node that ran it, so a failure in a screen's worker, or an
unexpected error in a store write, used to vanish without a word."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from console.config.models import StoreConfig
from console.incidents.book import IncidentBook
from console.incidents.model import IncidentError
from screens.app import MLConsoleApp, create_app
from screens.incident_acts import open_incident_for
from screens.work import SaysWorkFailures
from tests.builders import NOW, alert, snapshot
from tests.test_actions import config
from tests.waits import until

SIZE = (120, 30)


def shown(app: MLConsoleApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


class Failing(SaysWorkFailures, Screen[None]):
    """A screen whose worker raises, as a store read that fails would."""

    def compose(self) -> ComposeResult:
        yield Static("failing")

    def on_mount(self) -> None:
        self.run_worker(self._read, thread=True, exit_on_error=False, name="timeline read")

    def _read(self) -> None:
        raise IncidentError("no incident INC-9 in /tmp/store.db")


def app_with_store(tmp_path: Path) -> MLConsoleApp:
    cfg = config().model_copy(update={"store": StoreConfig(path=tmp_path / "store.db")})
    app = create_app(cfg, poll=False, clock=lambda: NOW)
    app.snapshot = snapshot()
    return app


async def test_a_screens_failed_worker_is_said_by_the_app(tmp_path: Path) -> None:
    app = app_with_store(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Failing())
        await until(pilot, lambda: app.work_failures, "the failure reaches the app")
        assert [error for _, error in app.work_failures] == [
            "timeline read: no incident INC-9 in /tmp/store.db"
        ]
        assert "Background work failed: timeline read: no incident INC-9 in /tmp/store.db" in (
            shown(app)
        )
        assert isinstance(app.screen, Failing)  # the console stays up, where it was


async def test_a_store_write_that_fails_unexpectedly_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening an incident by key runs in a worker: an error it does not expect (the
    disk, not the incident) is said, where it used to vanish; and the next write,
    once the store is well again, works."""
    app = app_with_store(tmp_path)
    page = alert("fraud-detector", "ModelErrorBudgetBurn", "critical", 5, "burning 14x")
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        assert app.incidents is not None
        real_open = IncidentBook.open

        def disk_full(*args: object, **kwargs: object) -> object:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(IncidentBook, "open", disk_full)
        open_incident_for(app, page)
        await until(pilot, lambda: app.work_failures, "the failed write is said")
        assert [error for _, error in app.work_failures] == [
            "incident-writes: database or disk is full"
        ]
        assert any("database or disk is full" in line for line in shown(app))
        assert app.incidents.open_incidents() == ()

        monkeypatch.setattr(IncidentBook, "open", real_open)
        open_incident_for(app, page)
        await until(pilot, lambda: app.incidents.open_incidents(), "the next write works")
        assert [i.alertname for i in app.incidents.open_incidents()] == ["ModelErrorBudgetBurn"]
        assert len(app.work_failures) == 1


async def test_the_same_failure_again_is_kept_and_counted_not_said_again(tmp_path: Path) -> None:
    """A store that fails fails every worker that touches it: a page of 500 alerts would
    be 500 toasts. Each is kept; the same one is said once in REPEAT_QUIET seconds."""
    from screens.app import REPEAT_QUIET
    from screens.work import WorkFailed

    app = app_with_store(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(5):
            app.post_message(WorkFailed("pre-triage", OSError("database is locked")))
        app.post_message(WorkFailed("export", OSError("disk full")))
        await until(pilot, lambda: len(app.work_failures) == 6, "every failure kept")
        said = [line for line in shown(app) if "Background work failed" in line]
        assert said == [
            "Background work failed: pre-triage: database is locked",
            "Background work failed: export: disk full",
        ]
        assert REPEAT_QUIET >= 10
