"""One session per front end: it opens each store once, owns what it opens, closes
it once, and is shared by the front end's threads."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from console import mitigation
from console.config.models import Config
from console.config.paths import audit_path
from console.incidents.book import IncidentBook
from console.session import open_reading, open_session_sync
from console.triage.store import Store
from screens.incident import IncidentScreen
from tests.builders import NOW, alert
from tests.test_incident_screen import ACTOR, SIZE, book_ready, make_app, make_config
from tests.waits import until


def config_in(tmp_path: Path) -> Config:
    return make_config(tmp_path)


class Closing:
    """An adapter that notes it was closed."""

    kind = "closing"

    def __init__(self) -> None:
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


def seed(config: Config) -> int:
    assert config.store.path is not None
    book = IncidentBook(config.store.path, clock=lambda: NOW)
    try:
        return book.open(
            [alert("fraud-detector", "ModelErrorBudgetBurn", "page", 5, "burning")],
            model_label="model",
            actor=ACTOR,
        ).number
    finally:
        book.close()


async def test_a_session_closes_what_it_opened_once_and_leaves_what_it_was_lent(
    tmp_path: Path,
) -> None:
    config = config_in(tmp_path)
    lent = Closing()
    space = open_session_sync(config, adapters={"lent": lent}, actor=ACTOR)  # type: ignore[dict-item]
    assert space.audit is not None and space.incidents is not None and space.walks is not None
    space.owns_adapters = False
    await space.close()
    await space.close()  # a second close does nothing
    assert lent.closed == 0
    with pytest.raises(sqlite3.ProgrammingError):  # the store's parts are closed
        space.walks.runs()

    owned = Closing()
    space = open_session_sync(config, adapters={"owned": owned}, actor=ACTOR)  # type: ignore[dict-item]
    space.owns_adapters = True
    await space.close()
    await space.close()
    assert owned.closed == 1


def test_a_reading_session_never_creates_the_audit_log_and_reads_it_once_there(
    tmp_path: Path,
) -> None:
    config = config_in(tmp_path)
    number = seed(config)
    reading = open_reading(config)
    try:
        incident = reading.book.get(number)
        assert [e.kind for e in reading.timeline(incident) if e.kind.startswith("action")] == []
        assert not audit_path(config).exists(), "a reading session created the audit log"
        # Another console acts and so creates the log: the next read sees its actions.
        acting = open_session_sync(config, adapters={}, actor=ACTOR)
        try:
            assert acting.audit is not None
            acting.audit.append(
                "intent",
                actor=ACTOR,
                action="rollback",
                params={"model": "fraud-detector"},
                incident=incident.id,
            )
        finally:
            acting.close_stores()
        kinds = [e.kind for e in reading.timeline(incident)]
        assert "action.intent" in kinds
        assert reading.audit_problem is None
    finally:
        reading.close_stores()


async def test_a_session_without_its_audit_log_opens_but_runs_nothing(tmp_path: Path) -> None:
    """The dashboard's session opens even when the audit log cannot: incidents still
    show and are filed; a mitigation stops before it runs, and says why."""
    config = config_in(tmp_path)
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the audit log's directory should be")
    config = config.model_copy(
        update={"actions": config.actions.model_copy(update={"audit_path": blocked / "audit.db"})}
    )
    space = open_session_sync(config, adapters={}, actor=ACTOR, audit_required=False)
    try:
        assert space.audit is None and space.audit_problem
        assert space.incidents is not None
        with pytest.raises(mitigation.MitigationStopped) as stopped:
            await mitigation.settle(space)
        assert stopped.value.stop is mitigation.Stop.AUDIT
    finally:
        space.close_stores()
    with pytest.raises(Exception, match="audit log"):
        open_session_sync(config, adapters={}, actor=ACTOR)  # a command must have it


def test_one_store_connection_is_shared_by_threads(tmp_path: Path) -> None:
    """The session's walks are written by pre-triage and read by the incident screen,
    each from a thread of its own: one connection, every use under its lock."""
    store = Store(tmp_path / "store.db")
    errors: list[BaseException] = []

    def walk(n: int) -> None:
        try:
            for i in range(40):
                run = store.create_run("rb", 1, {"model": f"m{n}"}, "start", f"fp{n}-{i}")
                store.update_run(run.id, path=("start",), status="active", evidence=None)
                store.runs(alert_fingerprint=f"fp{n}-{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=walk, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    store.close()
    assert errors == []
    reopened = Store(tmp_path / "store.db")
    try:
        assert len(reopened.runs()) == 160
    finally:
        reopened.close()


async def test_the_incident_screen_reads_through_the_apps_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading an incident again (every 5 s, or R) opens no connection: it goes through
    the session the app opened once."""
    config = config_in(tmp_path)
    seed(config)
    connects: list[str] = []
    connect = sqlite3.connect

    def counting(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connects.append(str(args[0]) if args else "")
        return connect(*args, **kwargs)

    app = make_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await book_ready(app, pilot)
        await until(pilot, lambda: app.open_incidents, "the incidents read")
        monkeypatch.setattr(sqlite3, "connect", counting)
        await pilot.press("down", "i")
        screen = app.screen
        assert isinstance(screen, IncidentScreen)
        await until(pilot, lambda: screen.incident is not None, "the first read")
        for _ in range(3):
            shown = screen.incident
            await pilot.press("R")
            await until(pilot, lambda: not screen._loading, "the read again")
            assert screen.incident is not None and screen.incident is not shown
        assert connects == []
