"""The runbook screen walked by keys, on a real store and a scripted metrics source."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import OptionList, Static

from adapters.records import QueryResult, Sample
from console.config.loader import load_text
from console.triage.catalog import Catalog
from console.triage.runbook import Runbook
from console.triage.store import Store
from console.triage.triage import Triage
from screens.alert_detail import AlertDetailScreen
from screens.app import MLConsoleApp, create_app
from screens.evidence import EvidenceScreen
from screens.runbook import RunbookScreen
from tests.builders import CONFIG, NOW, snapshot
from tests.test_triage import RUNBOOK, Scripted
from tests.waits import until

SIZE = (160, 40)


def app_with_triage(
    tmp_path: Path, metrics: Scripted, clock: dict[str, float] | None = None
) -> MLConsoleApp:
    """The app on a fixed clock, or on ``clock["now"]`` when given (a test moves it)."""
    now = clock if clock is not None else {"now": NOW}
    runbook = load_text(RUNBOOK, "drift-test.yaml", Runbook)
    catalog = Catalog(runbooks={runbook.id: runbook})
    triage = Triage(
        catalog,
        Store(tmp_path / "store.db"),
        metrics,
        actor="ann@host",
        clock=lambda: now["now"],
    )
    app = create_app(CONFIG, poll=False, clock=lambda: now["now"], triage=triage)
    app.snapshot = snapshot()
    return app


async def wait_idle(app: MLConsoleApp, pilot) -> None:  # type: ignore[no-untyped-def]
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_walk_a_runbook_by_keys(tmp_path: Path) -> None:
    app = app_with_triage(tmp_path, Scripted({"drift_psi": 0.41, "null_ratio": 0.0}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("t")  # triage the top model's alert (churn-predictor, drift)
        await wait_idle(app, pilot)
        screen = app.screen
        assert isinstance(screen, RunbookScreen)
        assert screen.walk.current.id == "upstream"  # checks ran up to the question
        assert screen.query_one("#path", OptionList).option_count == 2
        await pilot.press("2")  # answer "No": not an upstream change
        await wait_idle(app, pilot)
        assert screen.walk.current.id == "retrain"  # an action step
        await pilot.press("b")  # go back one step
        assert screen.walk.current.id == "upstream"
        await pilot.press("1")  # answer "Yes" this time
        await wait_idle(app, pilot)
        assert screen.walk.concluded and screen.walk.record.cause == "data"
        decisions = [e.decision for e in screen.walk.evidence]
        assert decisions == ["true", "false", "2: No", "back", "1: Yes", "shown", "concluded: data"]
        assert all(e.actor == "ann@host" for e in screen.walk.evidence[2:])
        screen.query_one("#path", OptionList).focus()
        await pilot.press("home", "enter")  # open the first step's evidence
        assert isinstance(app.screen, EvidenceScreen)
        assert app.screen.item.inputs["query"].startswith("max(mlc_feature_drift_psi")
        await pilot.press("escape")  # close the evidence
        await pilot.press("escape")  # back to the dashboard
        assert not isinstance(app.screen, RunbookScreen)


async def test_reopening_resumes_the_walk(tmp_path: Path) -> None:
    app = app_with_triage(tmp_path, Scripted({"drift_psi": 0.41, "null_ratio": 0.0}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("t")  # open the walk
        await wait_idle(app, pilot)
        await pilot.press("escape")  # leave it at the question
        await pilot.press("enter")  # open the alert detail
        assert isinstance(app.screen, AlertDetailScreen)
        await pilot.press("t")  # triage from the detail screen
        await wait_idle(app, pilot)
        assert isinstance(app.screen, RunbookScreen)
        assert app.screen.walk.current.id == "upstream"
        assert len(app.screen.walk.evidence) == 2  # resumed, not re-run


async def test_pretriage_runs_checks_when_a_page_arrives(tmp_path: Path) -> None:
    metrics = Scripted({"drift_psi": 0.41, "null_ratio": 0.0})
    app = app_with_triage(tmp_path, metrics)
    async with app.run_test(size=SIZE) as pilot:
        app.apply_snapshot(snapshot())  # the page arrives
        await wait_idle(app, pilot)
        assert app.triage is not None
        (run,) = app.triage.store.runs()
        assert run.runbook_id == "drift-test" and run.path[-1] == "upstream"
        app.apply_snapshot(snapshot())  # the same page again: not re-run
        await wait_idle(app, pilot)
        assert len(app.triage.store.runs()) == 1


async def test_pretriage_looks_through_the_alerts_again_only_when_they_change(
    tmp_path: Path,
) -> None:
    """Every snapshot used to make pre-triage look through every firing alert on the
    UI thread (500 of them on a big page, every second); the poller keeps the alerts'
    tuple while they do not change, and pre-triage skips what it has seen."""
    from dataclasses import replace

    app = app_with_triage(tmp_path, Scripted({"drift_psi": 0.41, "null_ratio": 0.0}))
    async with app.run_test(size=SIZE) as pilot:
        first = snapshot()
        app.apply_snapshot(first)  # the page arrives
        await wait_idle(app, pilot)
        assert app.triage is not None
        looked: list[set[tuple[str, float]]] = []
        forget = app.triage.forget_firings_but
        app.triage.forget_firings_but = lambda firing: looked.append(firing) or forget(firing)  # type: ignore[method-assign,func-returns-value]
        # New snapshots, the same alerts: nothing to look through.
        for later in (30, 60):
            app.apply_snapshot(replace(first, taken_at=first.taken_at + later))
        assert looked == []
        # The alerts change (one stops firing): looked through, and forgotten.
        app.apply_snapshot(replace(first, alerts=first.alerts[1:]))
        await wait_idle(app, pilot)
        assert len(looked) == 1 and len(looked[0]) == len(first.firing) - 1
        assert len(app.triage.store.runs()) == 1  # nothing ran twice


class Held(Scripted):
    """Scripted metrics whose first query waits until the test lets it answer."""

    def __init__(self, answers: dict[str, float | None]) -> None:
        super().__init__(answers)
        self.asked = asyncio.Event()
        self.answer = asyncio.Event()

    async def query(self, promql: str, at: float | None = None) -> QueryResult:
        if not self.asked.is_set():
            self.asked.set()
            await self.answer.wait()
        return await super().query(promql, at)


async def test_t_while_pretriage_is_running_takes_the_walk_where_pretriage_leaves_it(
    tmp_path: Path,
) -> None:
    """The page has just arrived and pre-triage is still reading its first check when
    the responder presses t: each check is read once, by pre-triage, not again by the
    screen beside it."""
    metrics = Held({"drift_psi": 0.41, "null_ratio": 0.0})
    app = app_with_triage(tmp_path, metrics)
    async with app.run_test(size=SIZE) as pilot:
        app.apply_snapshot(snapshot())  # the page arrives: pre-triage starts its checks
        await metrics.asked.wait()  # ... and is reading the first one
        await pilot.press("t")  # triage the top model's alert (churn-predictor, drift)
        await until(pilot, lambda: isinstance(app.screen, RunbookScreen), "the runbook screen")
        metrics.answer.set()  # Prometheus answers pre-triage's check
        await wait_idle(app, pilot)
        screen = app.screen
        assert isinstance(screen, RunbookScreen)
        assert screen.walk.current.id == "upstream"
        checks = [(e.step_id, e.actor) for e in screen.walk.evidence if e.kind == "check"]
        assert checks == [("psi", "mlconsole (pre-triage)"), ("nulls", "mlconsole (pre-triage)")]
        assert len(metrics.queries) == 2  # one read per check


def text_of(renderable: object) -> str:
    console = Console(width=150, file=io.StringIO(), record=True)
    console.print(renderable)
    return console.export_text()


def shown_text(screen: RunbookScreen) -> str:
    """The current step's pane, as text."""
    return text_of(screen.query_one("#current", Static).content)


def path_lines(screen: RunbookScreen) -> list[str]:
    path = screen.query_one("#path", OptionList)
    return [str(path.get_option_at_index(i).prompt) for i in range(path.option_count)]


async def test_a_walk_opened_long_after_pretriage_reads_its_checks_again(tmp_path: Path) -> None:
    clock = {"now": NOW}
    metrics = Scripted({"drift_psi": 0.41, "null_ratio": 0.0})
    app = app_with_triage(tmp_path, metrics, clock)
    async with app.run_test(size=SIZE) as pilot:
        app.apply_snapshot(snapshot())  # the page arrives: pre-triage reads the checks
        await wait_idle(app, pilot)
        clock["now"] = NOW + 300  # the responder comes five minutes later
        metrics.answers["null_ratio"] = 0.5  # meanwhile the nulls check turned true
        await pilot.press("t")  # triage the top model's alert (churn-predictor, drift)
        await wait_idle(app, pilot)
        screen = app.screen
        assert isinstance(screen, RunbookScreen)
        assert screen.walk.concluded and screen.walk.record.summary == "Schema change upstream"
        reads = [(e.step_id, e.at - NOW) for e in screen.walk.evidence if e.kind == "check"]
        assert reads == [("psi", 0), ("nulls", 0), ("psi", 300), ("nulls", 300)]
        lines = path_lines(screen)
        assert lines[0].endswith("5m old (earlier reading)")  # the pre-triage reading, kept
        assert lines[1].endswith("5m old (earlier reading)")
        assert lines[2].startswith("↻ psi check true") and lines[2].endswith("0s old")
        assert lines[3].startswith("↻ nulls check true")


async def test_R_reads_the_checks_of_the_path_again(tmp_path: Path) -> None:
    clock = {"now": NOW}
    app = app_with_triage(tmp_path, Scripted({"drift_psi": 0.41, "null_ratio": 0.0}), clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("t")  # triage the drift alert: its checks run now
        await wait_idle(app, pilot)
        screen = app.screen
        assert isinstance(screen, RunbookScreen) and len(screen.walk.evidence) == 2
        clock["now"] = NOW + 45
        screen.refresh_view()  # what the screen's age tick does every few seconds
        assert "read 03:14:00 UTC, 45s old  R reads it again" not in shown_text(screen)
        assert "read 03:14:00 UTC, 45s old" in shown_text(screen)
        clock["now"] = NOW + 75  # older than runbooks.recheck_after (1m)
        screen.refresh_view()
        assert "read 03:14:00 UTC, 1m15s old  R reads it again" in shown_text(screen)
        await pilot.press("R")  # re-run the checks of the current path
        await wait_idle(app, pilot)
        assert screen.walk.current.id == "upstream"  # the same values: the same question
        assert [e.outputs.get("recheck", False) for e in screen.walk.evidence] == [
            False,
            False,
            True,
            True,
        ]
        assert "read 03:15:15 UTC, 0s old" in shown_text(screen)
        screen.query_one("#path", OptionList).focus()
        await pilot.press("home", "enter")  # open the first (earlier) reading
        assert isinstance(app.screen, EvidenceScreen)
        assert "03:14:00 UTC (1m15s old)" in text_of(app.screen.query_one(Static).content)


def test_runbook_screen_snapshot(tmp_path: Path, snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = app_with_triage(tmp_path, Scripted({"drift_psi": 0.41, "null_ratio": 0.0}))

    async def walk(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("t")  # open the drift alert's runbook
        await app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(app, run_before=walk, terminal_size=SIZE)


class FeatureDrift(Scripted):
    """Answers as Prometheus does for `max by (feature)`: one series per feature."""

    async def query(self, promql: str, at: float | None = None) -> QueryResult:
        result = await super().query(promql, at)
        return QueryResult(
            promql,
            tuple(
                Sample({"feature": "amount", "model": "churn-predictor"}, s.value, s.timestamp)
                for s in result.samples
            ),
        )


async def test_e_opens_the_evidence_in_one_key_and_names_the_feature(tmp_path: Path) -> None:
    app = app_with_triage(tmp_path, FeatureDrift({"drift_psi": 0.41, "null_ratio": 0.0}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("t")  # triage the top model's alert (churn-predictor, drift)
        await wait_idle(app, pilot)
        screen = app.screen
        assert isinstance(screen, RunbookScreen)
        path = screen.query_one("#path", OptionList)
        assert "feature=amount 0.41" in path_lines(screen)[0]
        assert "(values: feature=amount 0)" in shown_text(screen)
        await pilot.press("e")  # the evidence, in one key
        assert isinstance(app.screen, EvidenceScreen)
        assert app.screen.item.step_id == screen.walk.evidence[-1].step_id
        await pilot.press("escape")  # close it
        path.highlighted = 0
        await pilot.press("e")  # the highlighted step's evidence
        assert isinstance(app.screen, EvidenceScreen)
        assert app.screen.item.step_id == "psi"


async def test_the_alert_detail_names_the_drifting_feature(tmp_path: Path) -> None:
    app = app_with_triage(tmp_path, FeatureDrift({"drift_psi": 0.41, "null_ratio": 0.0}))
    async with app.run_test(size=SIZE) as pilot:
        app.apply_snapshot(snapshot())  # the page arrives: pre-triage runs its checks
        await wait_idle(app, pilot)
        await pilot.press("enter")  # open the top alert (churn-predictor's drift)
        assert isinstance(app.screen, AlertDetailScreen)
        triage = app.screen.query_one("#triage", Static)
        shown = await until(pilot, lambda: str(triage.render()), "the checks shown")
        assert "psi" in shown and "feature=amount 0.41" in shown


async def test_the_alert_detail_reads_the_checks_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening an alert never waits on the store: its runbook checks are read in a
    thread, and the screen is up (and takes keys) while they are."""
    from tests.slow_store import slow

    app = app_with_triage(tmp_path, FeatureDrift({"drift_psi": 0.41, "null_ratio": 0.0}))
    async with app.run_test(size=SIZE) as pilot:
        app.apply_snapshot(snapshot())  # the page arrives: pre-triage runs its checks
        await wait_idle(app, pilot)
        store_free, waited = slow(monkeypatch, Store, "evidence")  # a store slow to answer
        await pilot.press("enter")  # open the top alert (churn-predictor's drift)
        await until(pilot, lambda: isinstance(app.screen, AlertDetailScreen), "the alert")
        store_free.set()  # the store answers, once the screen is up
        triage = app.screen.query_one("#triage", Static)
        shown = await until(pilot, lambda: str(triage.render()), "the checks shown")
        assert "feature=amount 0.41" in shown
    assert waited == [True]


def test_help_names_what_the_runbook_keys_do_there() -> None:
    """R and e mean other things on the runbook screen than on the dashboard."""
    from screens.help import KEYS

    runbook = [(key, what) for key, what in KEYS if what.startswith("runbook:")]
    assert any(key == "R" and "checks" in what for key, what in runbook), runbook
    assert any(key == "e" and "evidence" in what for key, what in runbook), runbook
