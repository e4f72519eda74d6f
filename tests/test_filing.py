"""Which incident an action is filed under, and which SLI judges it: the one rule
(console.incidents.filing) and the dashboard's keys that follow it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from adapters.records import AlertRecord
from console.actions.origin import Origin
from console.audit.log import AuditLog
from console.incidents.book import IncidentBook
from console.incidents.filing import decide_filing
from console.incidents.model import Incident, IncidentError
from screens.action import ActionScreen
from tests.builders import NOW, alert, snapshot
from tests.test_action_screen import SIZE, app_with_fakes, until

FRAUD = "fraud-detector"


def paging(model: str, name: str, severity: str, minutes: float, sli: str) -> AlertRecord:
    """An alert as the lab's rules make it: with the ``sli`` label of what it is about."""
    record = alert(model, name, severity, minutes, f"{model}: {name}")
    return replace(record, labels={**record.labels, "sli": sli})


BURN = paging(FRAUD, "ModelErrorBudgetBurn", "page", 3, "error_ratio")
PIPELINE = paging(FRAUD, "ModelPipelineFailing", "ticket", 2, "drift_psi")
LATENCY = paging(FRAUD, "ModelLatencyBudgetBurn", "page", 2, "latency_p99")
QUIET = paging("recommender", "ModelFeatureDrift", "ticket", 9, "drift_psi")


def book_with(path: Path, *firing: AlertRecord, quiet: tuple[AlertRecord, ...] = ()) -> None:
    """Open an incident per alert (in order: INC-1, INC-2...); ``quiet`` ones stop firing."""
    book = IncidentBook(path)
    try:
        for a in (*firing, *quiet):
            book.open([a], model_label="model", actor="t", now=NOW - 300)
        book.sync(list(firing), model_label="model", now=NOW - 120)
        book.sync(list(firing), model_label="model", now=NOW - 60, end_grace=30)
    finally:
        book.close()


@pytest.fixture
def incidents(tmp_path: Path) -> list[Incident]:
    book_with(tmp_path / "store.db", BURN, PIPELINE, quiet=(QUIET,))
    book = IncidentBook(tmp_path / "store.db")
    try:
        return book.incidents(open_only=True)
    finally:
        book.close()


def test_an_action_taken_from_an_alert_is_filed_under_that_alerts_incident(
    incidents: list[Incident],
) -> None:
    # INC-1 is the page (more severe), INC-2 the pipeline ticket: the alert decides.
    filing = decide_filing(incidents, FRAUD, Origin.of_alert(PIPELINE), model_label="model")
    assert filing.incident == "INC-2" and filing.paged_sli == "drift_psi"
    assert filing.line() == "Filed under INC-2: the incident of ModelPipelineFailing on " + (
        "fraud-detector."
    )
    burn = decide_filing(incidents, FRAUD, Origin.of_alert(BURN), model_label="model")
    assert (burn.incident, burn.paged_sli) == ("INC-1", "error_ratio")


def test_an_alert_with_no_open_incident_files_under_none(incidents: list[Incident]) -> None:
    filing = decide_filing(incidents, FRAUD, Origin.of_alert(LATENCY), model_label="model")
    assert filing.incident is None
    assert filing.paged_sli == "latency_p99"  # the page is still judged on its own SLI
    assert filing.line() == (
        "Filed under no incident: ModelLatencyBudgetBurn on fraud-detector has no open incident."
    )


def test_a_model_alone_files_under_its_one_firing_incident_else_none(
    incidents: list[Incident],
) -> None:
    # recommender's incident is open but quiet: the model is healthy now.
    healthy = decide_filing(incidents, "recommender", Origin(), model_label="model")
    assert healthy.incident is None and "no open incident with a firing alert" in healthy.why
    # Two firing incidents: choosing one would be a guess.
    both = decide_filing(incidents, FRAUD, Origin(), model_label="model")
    assert both.incident is None
    assert "2 firing incidents (INC-1 ModelErrorBudgetBurn, INC-2 ModelPipelineFailing)" in (
        both.why
    )
    burn_only = [i for i in incidents if i.alertname == BURN.name]
    one = decide_filing(burn_only, FRAUD, Origin(), model_label="model")
    assert (one.incident, one.paged_sli) == ("INC-1", "error_ratio")


def test_an_incident_named_by_hand_must_be_of_the_model_acted_on(
    incidents: list[Incident],
) -> None:
    quiet = next(i for i in incidents if i.model == "recommender")
    with pytest.raises(IncidentError, match="is an incident of recommender, not of fraud-detector"):
        decide_filing((), FRAUD, Origin(incident=quiet.id), model_label="model", named=quiet)
    named = decide_filing((), "recommender", Origin(incident="3"), model_label="model", named=quiet)
    assert named.incident == quiet.id and named.paged_sli == "drift_psi"
    none = decide_filing(incidents, FRAUD, Origin(incident="none"), model_label="model")
    assert none.incident is None


async def test_p_on_the_pipeline_alert_files_under_its_incident_not_the_models_worst(
    tmp_path: Path,
) -> None:
    book_with(tmp_path / "store.db", BURN, PIPELINE)
    app, fakes = app_with_fakes(tmp_path)
    app.snapshot = snapshot(alerts=(BURN, PIPELINE))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab")  # focus the alerts table
        dashboard = app.screen
        rows: list[str] = dashboard._alert_rows  # type: ignore[attr-defined]
        for _ in range(rows.index(PIPELINE.fingerprint)):
            await pilot.press("down")  # move to the pipeline alert
        await pilot.press("p")  # pause the pipeline, from the pipeline alert
        screen = await until(
            pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, "the plan"
        )
        plan_text = str(screen.query_one("#plan-text").render())
        assert "Filed under INC-2: the incident of ModelPipelineFailing" in plan_text
        await pilot.press("y")  # apply
        await until(pilot, lambda: screen.stage == "done", "the outcome")
    assert fakes["pipelines"].on == {FRAUD: True}
    entries = AuditLog(tmp_path / "audit.db").entries()
    assert {e.body["incident"] for e in entries} == {"INC-2"}
    book = IncidentBook(tmp_path / "store.db")
    try:
        assert [book.get(n).state for n in (1, 2)] == ["triggered", "mitigated"]
    finally:
        book.close()


async def test_f_on_a_healthy_model_files_under_no_incident(tmp_path: Path) -> None:
    book_with(tmp_path / "store.db", BURN, quiet=(QUIET,))  # INC-2: recommender, quiet
    app, _ = app_with_fakes(tmp_path)
    app.snapshot = snapshot(alerts=(BURN,))
    app.config.actions.verify.window = 1.0  # recommender has no data: not recovered
    async with app.run_test(size=SIZE) as pilot:
        dashboard = app.screen
        rows: list[str] = dashboard._model_rows  # type: ignore[attr-defined]
        for _ in range(rows.index("recommender")):
            await pilot.press("down")  # move to recommender in the models table
        await pilot.press("f")  # serve recommender's fallback
        screen = await until(
            pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, "the plan"
        )
        plan_text = str(screen.query_one("#plan-text").render())
        assert "Filed under no incident: recommender has no open incident with a firing" in (
            plan_text
        )
        await pilot.press("y")  # apply
        await until(pilot, lambda: screen.stage == "done", "the verdict", tries=400)
    entries = AuditLog(tmp_path / "audit.db").entries()
    assert entries and {e.body["incident"] for e in entries} == {None}


async def test_f_on_a_latency_alert_is_judged_on_the_latency_sli(tmp_path: Path) -> None:
    book_with(tmp_path / "store.db", LATENCY)
    app, fakes = app_with_fakes(tmp_path)
    fakes["prometheus"].values = [0.9, 0.3, 0.2]  # p99 back under 0.5 s; errors never matter
    app.snapshot = snapshot(alerts=(LATENCY,))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab")  # focus the alerts table: the latency alert is the only row
        await pilot.press("f")  # serve fraud-detector's fallback, from the latency alert
        screen = await until(
            pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, "the plan"
        )
        plan_text = str(screen.query_one("#plan-text").render())
        assert "Filed under INC-1" in plan_text
        assert "Verification will watch latency_p99, the SLI that paged" in plan_text
        await pilot.press("y")  # apply
        await until(pilot, lambda: screen.stage == "done", "the verdict", tries=400)
        status = str(screen.query_one("#status").render())
    assert screen.recovery is not None and screen.recovery.sli == "latency_p99"
    assert "latency_p99 = 0.2" in status
    (verify,) = [e for e in AuditLog(tmp_path / "audit.db").entries() if e.kind == "verify"]
    assert verify.body["result"]["sli"] == "latency_p99"
    assert verify.body["incident"] == "INC-1"
