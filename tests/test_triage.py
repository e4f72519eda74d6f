"""The runbook engine on a real SQLite store, with a scripted metrics source."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.base import AdapterError, MetricsAdapter
from adapters.records import AlertRecord, QueryResult, RangeResult, Sample
from adapters.settings import SourceSettings
from console.config.loader import load_text
from console.triage.catalog import Catalog
from console.triage.runbook import Runbook
from console.triage.store import Store
from console.triage.triage import Triage
from console.triage.walk import Walk
from console.triage.walk_state import WalkError

RUNBOOK = """
id: drift-test
title: Drift
match: [{alertname: ModelFeatureDrift}]
labels: [model]
vars: {threshold: "0.25"}
steps:
  - id: psi
    kind: check
    title: PSI high?
    query: 'max(mlc_feature_drift_psi{model="{{ labels.model }}"})'
    condition: "> 0.25"
    on_true: nulls
    on_false: fine
  - id: nulls
    kind: check
    query: 'max(mlc_feature_null_ratio{model="{{ labels.model }}"})'
    condition: "> 0.2"
    on_true: schema
    on_false: upstream
  - id: upstream
    kind: ask
    question: Did an upstream source change its population?
    choices:
      - {label: "Yes", next: note}
      - {label: "No", next: retrain}
  - id: note
    kind: note
    text: "Tell the owner of {{ labels.model }}."
    next: data
  - id: retrain
    kind: action
    action: pipeline-pause
    params: {model: "{{ labels.model }}"}
    next: model
  - id: schema
    kind: conclude
    cause: data
    summary: Schema change upstream
  - id: data
    kind: conclude
    cause: data
    summary: Population shift in {{ labels.model }}
  - id: model
    kind: conclude
    cause: model
    summary: Model needs retraining
  - id: fine
    kind: conclude
    cause: unknown
    summary: No drift now
"""


class Scripted(MetricsAdapter):
    def __init__(self, answers: dict[str, float | None]) -> None:
        super().__init__("prometheus", SourceSettings(url="http://127.0.0.1:1"))
        self.answers = answers
        self.queries: list[str] = []
        self.down = False

    async def query(self, promql: str, at: float | None = None) -> QueryResult:
        self.queries.append(promql)
        if self.down:
            raise AdapterError("prometheus", "cannot connect", url="http://127.0.0.1:1")
        for needle, value in self.answers.items():
            if needle in promql:
                samples = () if value is None else (Sample({}, value, time.time()),)
                return QueryResult(promql, samples)
        return QueryResult(promql, ())

    async def query_range(self, promql: str, start: float, end: float, step: float) -> RangeResult:
        return RangeResult(promql, ())


@pytest.fixture
def runbook() -> Runbook:
    return load_text(RUNBOOK, "drift-test.yaml", Runbook)


async def test_checks_run_until_the_first_ask(runbook: Runbook, tmp_path: Path) -> None:
    metrics = Scripted({"drift_psi": 0.41, "null_ratio": 0.0})
    walk = Walk.start(
        runbook, {"model": 'fraud"x'}, Store(tmp_path / "s.db"), metrics, actor="ann@host"
    )
    pause = await walk.advance()
    assert (pause.reason, pause.step.id) == ("ask", "upstream")
    # the label is escaped for PromQL inside the query
    assert metrics.queries[0] == 'max(mlc_feature_drift_psi{model="fraud\\"x"})'
    first = walk.evidence[0]
    assert first.inputs["query"] == metrics.queries[0] and first.decision == "true"
    assert first.outputs["values"][0]["value"] == 0.41 and first.actor == "ann@host"


async def test_answers_branch_to_a_conclusion_and_evidence_is_complete(
    runbook: Runbook, tmp_path: Path
) -> None:
    walk = Walk.start(
        runbook,
        {"model": "m"},
        Store(tmp_path / "s.db"),
        Scripted({"drift_psi": 0.4, "null_ratio": 0.0}),
    )
    await walk.advance()
    walk.answer("yes")  # by label, case-insensitive
    pause = await walk.advance()
    assert pause.reason == "concluded" and walk.concluded
    assert walk.as_dict()["conclusion"] == {"cause": "data", "summary": "Population shift in m"}
    assert [e.step_id for e in walk.evidence] == ["psi", "nulls", "upstream", "note", "data"]
    assert walk.evidence[3].outputs["text"] == "Tell the owner of m."


async def test_action_step_records_the_decision(runbook: Runbook, tmp_path: Path) -> None:
    walk = Walk.start(
        runbook,
        {"model": "m"},
        Store(tmp_path / "s.db"),
        Scripted({"drift_psi": 0.4, "null_ratio": 0.0}),
    )
    await walk.advance()
    walk.answer(2)
    assert (await walk.advance()).reason == "action"
    walk.decide_action(False)
    assert (await walk.advance()).reason == "concluded"
    action = next(e for e in walk.evidence if e.kind == "action")
    assert action.decision == "skipped" and action.inputs["params"] == {"model": "m"}
    assert walk.record.cause == "model"


async def test_resume_after_restart(runbook: Runbook, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    walk = Walk.start(
        runbook, {"model": "m"}, Store(path), Scripted({"drift_psi": 0.4, "null_ratio": 0.0})
    )
    await walk.advance()
    run_id = walk.record.id
    walk.store.close()
    # a new process: a new store connection on the same file
    store = Store(path)
    again = Walk.resume(run_id, {runbook.id: runbook}, store, Scripted({}))
    assert again.current.id == "upstream"
    assert [e.step_id for e in again.evidence] == ["psi", "nulls"]
    again.answer(1)
    assert (await again.advance()).reason == "concluded"


async def test_back_goes_one_step_and_keeps_the_evidence(runbook: Runbook, tmp_path: Path) -> None:
    walk = Walk.start(
        runbook,
        {"model": "m"},
        Store(tmp_path / "s.db"),
        Scripted({"drift_psi": 0.4, "null_ratio": 0.0}),
    )
    await walk.advance()
    assert walk.back() and walk.current.id == "nulls"
    assert walk.evidence[-1].decision == "back"
    assert walk.back() and walk.current.id == "psi"
    assert not walk.back()  # already at the start


async def test_a_failing_source_stops_the_walk_with_the_error(
    runbook: Runbook, tmp_path: Path
) -> None:
    metrics = Scripted({})
    metrics.down = True
    walk = Walk.start(runbook, {"model": "m"}, Store(tmp_path / "s.db"), metrics)
    pause = await walk.advance()
    assert pause.reason == "error" and "cannot connect" in (pause.error or "")
    assert walk.current.id == "psi" and walk.evidence[0].decision == "error"
    metrics.down = False
    metrics.answers = {"drift_psi": 0.01}
    assert (await walk.advance()).reason == "concluded"  # retry picks up where it stopped


async def test_absent_result_is_false_for_comparisons(runbook: Runbook, tmp_path: Path) -> None:
    walk = Walk.start(
        runbook, {"model": "m"}, Store(tmp_path / "s.db"), Scripted({"drift_psi": None})
    )
    assert (await walk.advance()).reason == "concluded"
    assert walk.record.cause == "unknown"


async def test_bad_answers_and_missing_labels_are_clear(runbook: Runbook, tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    with pytest.raises(WalkError, match="needs alert labels model"):
        Walk.start(runbook, {}, store, Scripted({}))
    walk = Walk.start(
        runbook, {"model": "m"}, store, Scripted({"drift_psi": 0.4, "null_ratio": 0.0})
    )
    with pytest.raises(WalkError, match="not a question"):
        walk.answer(1)
    await walk.advance()
    with pytest.raises(WalkError, match="1=Yes; 2=No"):
        walk.answer(7)


def firing(starts_at: float, fingerprint: str = "fp-drift") -> AlertRecord:
    return AlertRecord(
        fingerprint=fingerprint,
        labels={"alertname": "ModelFeatureDrift", "model": "m"},
        annotations={},
        starts_at=datetime.fromtimestamp(starts_at, UTC),
        ends_at=None,
        updated_at=None,
        state="active",
    )


async def test_a_walk_belongs_to_one_firing(runbook: Runbook, tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    triage = Triage(Catalog(runbooks={runbook.id: runbook}), store, Scripted({"drift_psi": 0.4}))
    start = float(int(time.time()) - 600)
    first = await triage.pretriage(firing(start), runbook, incident=1)
    assert first is not None and first.record.incident == 1 and first.record.firing_at == start
    assert await triage.pretriage(firing(start), runbook, incident=1) is None  # same page again
    assert triage.walk_for(runbook, firing(start), incident=1).record.id == first.record.id
    first.answer(1)
    await first.advance()
    assert first.concluded

    # Incident 1 resolved; the alert fires again: incident 2, a walk of its own.
    second = await triage.pretriage(firing(start + 300), runbook, incident=2)
    assert second is not None and second.record.id != first.record.id
    assert triage.walk_for(runbook, firing(start + 300), incident=2).record.id == second.record.id
    # Without an incident the firing decides; the first firing still has its walk.
    assert triage.walk_for(runbook, firing(start + 300)).record.id == second.record.id
    assert triage.walk_for(runbook, firing(start)).record.id == first.record.id


async def test_a_concluded_walk_is_not_resumed_when_its_incident_fires_again(
    runbook: Runbook, tmp_path: Path
) -> None:
    store = Store(tmp_path / "s.db")
    triage = Triage(Catalog(runbooks={runbook.id: runbook}), store, Scripted({"drift_psi": 0.4}))
    start = float(int(time.time()) - 600)
    walk = triage.walk_for(runbook, firing(start), incident=5)
    await walk.advance()
    # Still in progress when the alert flaps: the same incident resumes its walk.
    assert triage.walk_for(runbook, firing(start + 60), incident=5).record.id == walk.record.id
    walk.answer(1)
    await walk.advance()
    # Concluded, then fired again in the same incident: triage starts over.
    again = triage.walk_for(runbook, firing(start + 120), incident=5)
    assert again.record.id != walk.record.id and not again.concluded
    # An unfiled pre-triage walk of this firing is filed under the incident when opened.
    early = await triage.pretriage(firing(start, "fp-other"), runbook)
    assert early is not None and early.record.incident is None
    opened = triage.walk_for(runbook, firing(start, "fp-other"), incident=6)
    assert opened.record.id == early.record.id and opened.record.incident == 6


def test_a_store_from_before_walks_knew_their_firing_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.execute(
        "INSERT INTO runbook_runs VALUES ('r1', 'drift-test', 1, 'fp', '{}', '[\"psi\"]', "
        "'concluded', 'data', 'old', 1.0, 2.0)"
    )
    db.commit()
    db.close()
    store = Store(path)
    (old,) = store.runs()
    assert (old.id, old.status, old.incident, old.firing_at) == ("r1", "concluded", None, None)
    new = store.create_run("drift-test", 1, {}, "psi", "fp", incident=3, firing_at=5.0)
    assert (store.run(new.id).incident, store.run(new.id).firing_at) == (3, 5.0)
    store.close()
    assert Store(path).run("r1").summary == "old"  # and it opens again


OLD_SCHEMA = """
CREATE TABLE runbook_runs (
    id TEXT PRIMARY KEY, runbook_id TEXT NOT NULL, runbook_version INTEGER NOT NULL,
    alert_fingerprint TEXT, labels TEXT NOT NULL, path TEXT NOT NULL, status TEXT NOT NULL,
    cause TEXT, summary TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX runbook_runs_alert ON runbook_runs (alert_fingerprint, runbook_id);
"""


async def test_recheck_reads_the_path_again_and_keeps_the_old_readings(
    runbook: Runbook, tmp_path: Path
) -> None:
    metrics = Scripted({"drift_psi": 0.4, "null_ratio": 0.0})
    walk = Walk.start(runbook, {"model": "m"}, Store(tmp_path / "s.db"), metrics)
    await walk.advance()
    assert walk.current.id == "upstream"
    # Same values: the walk stays at its question, with two fresh readings.
    pause = await walk.recheck()
    assert (pause.reason, walk.current.id) == ("ask", "upstream")
    reads = [(e.step_id, e.outputs.get("recheck", False)) for e in walk.evidence]
    assert reads == [("psi", False), ("nulls", False), ("psi", True), ("nulls", True)]
    assert walk.evidence[-1].outputs["changed"] is False
    # The nulls check now holds: the path leaves the question for the schema cause.
    metrics.answers["null_ratio"] = 0.5
    pause = await walk.recheck()
    assert pause.reason == "concluded" and walk.record.summary == "Schema change upstream"
    assert walk.record.path == ("psi", "nulls", "schema")
    changed = walk.evidence[-2]
    assert (changed.step_id, changed.decision, changed.outputs["changed"]) == (
        "nulls",
        "true",
        True,
    )
    assert [e.outputs["values"][0]["value"] for e in walk.evidence if e.step_id == "nulls"] == [
        0.0,
        0.0,
        0.5,
    ]  # every reading kept


async def test_recheck_that_cannot_read_keeps_the_path(runbook: Runbook, tmp_path: Path) -> None:
    metrics = Scripted({"drift_psi": 0.4, "null_ratio": 0.0})
    walk = Walk.start(runbook, {"model": "m"}, Store(tmp_path / "s.db"), metrics)
    await walk.advance()
    metrics.down = True
    pause = await walk.recheck()
    assert (
        pause.reason == "error" and pause.step.id == "psi" and "cannot connect" in str(pause.error)
    )
    assert walk.current.id == "upstream" and walk.record.status == "active"
    assert walk.evidence[-1].decision == "error" and walk.evidence[-1].outputs["recheck"]
    assert walk.checks_read_at() == walk.evidence[-2].at  # a failed read is no reading


async def test_runbook_run_prints_when_each_reading_was_taken(
    runbook: Runbook, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from console.cli.runbook_run import _print

    now = {"t": 1_795_000_000.0}
    walk = Walk.start(
        runbook,
        {"model": "m"},
        Store(tmp_path / "s.db"),
        Scripted({"drift_psi": 0.4, "null_ratio": 0.0}),
        clock=lambda: now["t"],
    )
    pause = await walk.advance()
    now["t"] += 90
    _print(walk.as_dict(), walk, pause)
    lines = [line for line in capsys.readouterr().out.splitlines() if "check" in line]
    assert len(lines) == 2
    assert all(" (read 11:06:40Z, 1m30s old)" in line for line in lines)


LINKED = """
id: linked
title: Linked
labels: [model]
steps:
  - id: graph
    kind: link
    url: '{{ metrics.url }}/graph?g0.expr=up%7Bmodel%3D%22{{ labels.model }}%22%7D'
    next: done
  - id: done
    kind: conclude
    cause: unknown
    summary: looked
"""


@pytest.mark.parametrize(
    ("settings", "opened"),
    [
        pytest.param(
            {"url": "http://10.0.0.5:9090", "external_url": "https://prom.example.com/"},
            "https://prom.example.com/graph?",
            id="external-url",
        ),
        pytest.param(
            {"url": "http://ann:secret@127.0.0.1:39090"}, "http://127.0.0.1:39090/graph?", id="url"
        ),
    ],
)
async def test_a_link_step_points_at_the_configured_metrics_source(
    tmp_path: Path, settings: dict[str, str], opened: str
) -> None:
    metrics = Scripted({})
    metrics.settings = SourceSettings.model_validate(settings)
    runbook = load_text(LINKED, "linked.yaml", Runbook)
    walk = Walk.start(runbook, {"model": "m"}, Store(tmp_path / "s.db"), metrics)
    assert (await walk.advance()).reason == "concluded"
    link = walk.evidence[0]
    assert link.outputs["text"].startswith(opened) and "19090" not in link.outputs["text"]
    assert "secret" not in link.outputs["text"]


async def test_a_link_without_a_metrics_source_is_kept_with_why(tmp_path: Path) -> None:
    runbook = load_text(LINKED, "linked.yaml", Runbook)
    walk = Walk.start(runbook, {"model": "m"}, Store(tmp_path / "s.db"), None)
    assert (await walk.advance()).reason == "concluded"
    assert "no metrics source" in walk.evidence[0].outputs["error"]


async def test_an_action_step_is_taken_from_the_alert_the_walk_triages(tmp_path: Path) -> None:
    """One origin for the screen's confirm and `runbook run --answer STEP=confirm`: the
    walk's alert (its incident) and the step's declared SLI."""
    labels = {"alertname": "ModelFeatureDrift", "model": "m", "sli": "drift_psi"}
    declared = load_text(
        RUNBOOK.replace(
            "    action: pipeline-pause\n", "    action: pipeline-pause\n    sli: latency_p99\n"
        ),
        "drift-test.yaml",
        Runbook,
    )
    walk = Walk.start(
        declared,
        labels,
        Store(tmp_path / "s.db"),
        Scripted({"drift_psi": 0.4, "null_ratio": 0.0}),
        alert_fingerprint="fp-drift",
    )
    await walk.advance()
    with pytest.raises(WalkError, match="not an action"):
        walk.action_origin()  # at the question, not at the action step
    walk.answer(2)
    assert (await walk.advance()).reason == "action"
    origin = walk.action_origin()
    assert origin.labels == labels and origin.fingerprint == "fp-drift"
    assert origin.alertname == "ModelFeatureDrift" and origin.paged_sli == "drift_psi"
    assert origin.step_sli == "latency_p99"


# -- who the walk names ------------------------------------------------------------------


def test_the_dashboards_walks_name_the_consoles_actor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runbook steps a responder answers in the TUI name the same person as the
    audit log: --actor, then actions.actor, then $MLCONSOLE_ACTOR (not user@host)."""
    from console.config.models import StoreConfig
    from console.triage.triage import open_triage
    from tests.test_actions import config as base_config

    config = base_config().model_copy(update={"store": StoreConfig(path=tmp_path / "s.db")})
    monkeypatch.setenv("MLCONSOLE_ACTOR", "env@oncall")
    assert open_triage(config, None, actor="ann@oncall").actor == "ann@oncall"
    assert open_triage(config, None).actor == "env@oncall"
    config.actions.actor = "cfg@oncall"
    assert open_triage(config, None).actor == "cfg@oncall"


def test_runbook_run_names_the_actor_in_its_evidence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from tests.test_incident_cli import CONFIG_TEXT, run

    config = tmp_path / "mlconsole.yaml"
    config.write_text(CONFIG_TEXT.format(store=tmp_path / "store.db"), encoding="utf-8")
    runbook = tmp_path / "rb.yaml"
    runbook.write_text(
        "id: who\ntitle: Who read it\nversion: 1\nlabels: [model]\nmatch: [{alertname: X}]\n"
        "steps:\n"
        "  - {id: read, kind: note, title: Read, text: the logs, next: done}\n"
        "  - {id: done, kind: conclude, cause: unknown, summary: read}\n",
        encoding="utf-8",
    )
    argv = ("runbook", "run", str(runbook), "--labels", "model=m")
    assert run(config, *argv, "--json") == 0  # run() passes --actor ann@oncall
    evidence = json.loads(capsys.readouterr().out)["evidence"]
    assert {e["actor"] for e in evidence} == {"ann@oncall"}
