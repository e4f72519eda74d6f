"""Incidents in the store, their timeline and metrics, and the SLI snapshots read live.

Every time is fixed (``T0`` and offsets from it) and passed in as ``now``/``at``; the
runbook walks the timeline reads are created under a patched store clock, so nothing
here depends on when the tests run.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import console.triage.store as store_module
from adapters.base import AdapterError, AlertsAdapter, MetricsAdapter
from adapters.records import (
    AlertRecord,
    QueryResult,
    RangeResult,
    RangeSeries,
    Sample,
    SilenceRecord,
)
from adapters.settings import SourceSettings
from console.actions.contracts import Change, Plan
from console.actions.executor import Outcome, Report
from console.audit.log import AuditLog
from console.export.derive import build_document
from console.export.markdown import to_markdown
from console.incidents.assembly import timeline
from console.incidents.book import IncidentBook
from console.incidents.impact import impact_event
from console.incidents.live import after_action, record_first_breach, sync_alerts, sync_from_source
from console.incidents.model import Incident, IncidentError, parse_incident_id, severity_rank
from console.incidents.timeline import Event, compute_metrics, ordered, seconds_of, utc
from console.promql import select_series
from console.triage.store import RUN_GRACE, Evidence, Store
from tests.builders import CONFIG

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC).timestamp()
SETTINGS = SourceSettings(url="http://127.0.0.1:1")
FRAUD = "fraud-detector"
CHURN = "churn-predictor"
BURN = "ModelErrorBudgetBurn"
DRIFT = "ModelFeatureDrift"


def alert(
    fingerprint: str,
    *,
    model: str = FRAUD,
    name: str = BURN,
    severity: str = "page",
    start: float = 0.0,
    state: str = "active",
    summary: str | None = None,
    sli: str | None = "error_ratio",
) -> AlertRecord:
    """An alert that started ``start`` seconds after T0."""
    labels = {"alertname": name, "model": model, "severity": severity}
    if sli is not None:
        labels["sli"] = sli
    return AlertRecord(
        fingerprint=fingerprint,
        labels=labels,
        annotations={"summary": summary or f"{name} on {model} ({fingerprint})"},
        starts_at=datetime.fromtimestamp(T0 + start, UTC),
        ends_at=None,
        updated_at=None,
        state=state,
        generator_url=f"http://prometheus/graph?{fingerprint}",
    )


@pytest.fixture
def book(tmp_path: Path) -> Iterator[IncidentBook]:
    book = IncidentBook(tmp_path / "store.db", clock=lambda: T0 + 10_000)
    yield book
    book.close()


@pytest.fixture
def two_books(tmp_path: Path) -> Iterator[tuple[IncidentBook, IncidentBook]]:
    """Two responders' books on one store, as two consoles keep them."""
    path = tmp_path / "store.db"
    ann, bob = IncidentBook(path), IncidentBook(path)
    yield ann, bob
    ann.close()
    bob.close()


def sync(book: IncidentBook, alerts: Sequence[AlertRecord], at: float, **kwargs: Any) -> Any:
    return book.sync(alerts, model_label="model", now=T0 + at, **kwargs)


def kinds(events: Sequence[Event]) -> list[str]:
    return [e.kind for e in events]


def timed(events: Sequence[Event]) -> list[tuple[float, str]]:
    """(seconds after T0, kind) of each event."""
    return [(e.at - T0, e.kind) for e in events]


# -- opening from alerts ---------------------------------------------------------------


def test_sync_opens_one_incident_per_model_and_alert_name(book: IncidentBook) -> None:
    alerts = [
        alert("fp-1", severity="warning", start=0, summary="fraud-detector errors 5x"),
        alert("fp-2", severity="page", start=20, summary="fraud-detector errors 58x"),
        alert("fp-3", model=CHURN, name=DRIFT, severity="ticket", start=10, sli="drift_psi"),
    ]
    result = sync(book, alerts, 60, actor="mlconsole@test")

    assert result.changed
    assert len(result.opened) == 2
    assert result.retriggered == () and result.quiet == ()
    by_group = {(i.model, i.alertname): i for i in book.incidents()}
    assert set(by_group) == {(FRAUD, BURN), (CHURN, DRIFT)}

    fraud = by_group[(FRAUD, BURN)]
    assert fraud.state == "triggered"
    assert fraud.severity == "page"  # the most urgent of warning and page
    assert fraud.title == "fraud-detector errors 5x"  # the first alert's summary
    assert fraud.sli == "error_ratio"
    assert fraud.opened_at == T0 + 60
    assert fraud.opened_by == "mlconsole@test"
    assert fraud.alert_started_at == T0  # the earliest startsAt
    assert fraud.firing and not fraud.ack_active and fraud.owner is None
    assert [a.fingerprint for a in fraud.alerts] == ["fp-1", "fp-2"]

    events = book.events(fraud.number)
    assert timed(events) == [
        (60.0, "incident.opened"),
        (0.0, "alert.firing"),
        (20.0, "alert.firing"),
    ]
    assert events[0].actor == "mlconsole@test"
    assert events[0].data == {
        "model": FRAUD,
        "alertname": BURN,
        "severity": "page",
        "sli": "error_ratio",
    }
    firing = events[2]
    assert firing.actor == "alertmanager"
    assert firing.data["fingerprint"] == "fp-2"
    assert firing.data["labels"]["severity"] == "page"
    assert firing.data["starts_at"] == utc(T0 + 20)
    assert firing.data["generator_url"] == "http://prometheus/graph?fp-2"
    assert [e.ref for e in events] == ["event:1", "event:2", "event:3"]

    churn = by_group[(CHURN, DRIFT)]
    assert (churn.severity, churn.sli, churn.alert_started_at) == ("ticket", "drift_psi", T0 + 10)
    assert timed(book.events(churn.number)) == [(60.0, "incident.opened"), (10.0, "alert.firing")]


def test_a_second_sync_with_the_same_alerts_changes_nothing(book: IncidentBook) -> None:
    alerts = [alert("fp-1"), alert("fp-2", start=5), alert("fp-3", model=CHURN)]
    sync(book, alerts, 60)
    before = [(i.as_dict(), i.updated_at, book.events(i.number)) for i in book.incidents()]

    again = sync(book, alerts, 120)

    assert not again.changed
    after = [(i.as_dict(), i.updated_at, book.events(i.number)) for i in book.incidents()]
    assert after == before


def test_two_responders_on_one_store_share_incidents_and_acks(
    two_books: tuple[IncidentBook, IncidentBook],
) -> None:
    ann, bob = two_books
    alerts = [alert("fp-1"), alert("fp-2", model=CHURN, name=DRIFT)]
    assert len(sync(ann, alerts, 60).opened) == 2
    assert sync(bob, alerts, 61).opened == ()
    assert bob.open([alerts[0]], model_label="model", actor="bob", now=T0 + 62).number == (
        ann.open_for(FRAUD, BURN).number  # type: ignore[union-attr]
    )
    assert [i.as_dict() for i in bob.incidents()] == [i.as_dict() for i in ann.incidents()]

    number = ann.open_for(FRAUD).number  # type: ignore[union-attr]
    bob.acknowledge(number, actor="bob", now=T0 + 90)
    seen_by_ann = ann.get(number)
    assert seen_by_ann.state == "acknowledged"
    assert (seen_by_ann.owner, seen_by_ann.acked_by, seen_by_ann.ack_active) == (
        "bob",
        "bob",
        True,
    )
    with pytest.raises(IncidentError, match="already acknowledged"):
        ann.acknowledge(number, actor="ann", now=T0 + 91)
    assert kinds(ann.events(number)).count("incident.acknowledged") == 1
    assert len(ann.incidents()) == 2


def test_the_open_incidents_are_read_again_only_after_the_store_changed(
    two_books: tuple[IncidentBook, IncidentBook], monkeypatch: pytest.MonkeyPatch
) -> None:
    ann, bob = two_books
    alerts = [alert("fp-1"), alert("fp-2", model=CHURN, name=DRIFT)]
    sync(ann, alerts, 60)
    first = ann.open_incidents()
    assert {i.model for i in first} == {FRAUD, CHURN}
    reads: list[object] = []
    select = ann._select

    def counted(where: str, *args: Any, **kwargs: Any) -> list[Incident]:
        if where == "state != 'resolved'":  # the open ones (a write reads its own)
            reads.append(where)
        return select(where, *args, **kwargs)

    monkeypatch.setattr(ann, "_select", counted)
    # Nothing changed, and a sync of the same alerts writes nothing: no read.
    assert ann.open_incidents() is first
    sync(ann, alerts, 61)
    assert ann.open_incidents() is first
    assert reads == []

    # Another console's ack (another connection) is read at once.
    fraud = next(i for i in first if i.model == FRAUD)
    bob.acknowledge(fraud.number, actor="bob", now=T0 + 90)
    seen = ann.open_incidents()
    assert len(reads) == 1
    assert {i.number: i.state for i in seen}[fraud.number] == "acknowledged"
    assert ann.open_incidents() is seen
    # So is this book's own change.
    ann.resolve(fraud.number, actor="ann", now=T0 + 95)
    assert [i.model for i in ann.open_incidents()] == [CHURN]
    assert len(reads) == 2
    # And a new incident opened elsewhere.
    sync(bob, [*alerts, alert("fp-3", model="ranker", name=DRIFT)], 100)
    assert {i.model for i in ann.open_incidents()} == {CHURN, "ranker"}
    assert len(reads) == 3


def test_a_read_begun_before_a_change_does_not_replace_a_later_one(
    two_books: tuple[IncidentBook, IncidentBook], monkeypatch: pytest.MonkeyPatch
) -> None:
    ann, bob = two_books
    sync(ann, [alert("fp-1")], 60)
    entered, release = threading.Event(), threading.Event()
    read = ann.incidents

    def slow(**kwargs: Any) -> list[Incident]:
        found = read(**kwargs)
        if threading.current_thread().name == "slow":  # held between read and store
            entered.set()
            assert release.wait(10)
        return found

    monkeypatch.setattr(ann, "incidents", slow)
    got: dict[str, tuple[Incident, ...]] = {}
    thread = threading.Thread(
        target=lambda: got.setdefault("slow", ann.open_incidents()), name="slow"
    )
    thread.start()
    assert entered.wait(10)
    # Meanwhile another console opens a second incident, and this book reads it.
    sync(bob, [alert("fp-1"), alert("fp-2", model=CHURN, name=DRIFT)], 70)
    newer = ann.open_incidents()
    assert {i.model for i in newer} == {FRAUD, CHURN}
    release.set()
    thread.join(10)
    assert [i.model for i in got["slow"]] == [FRAUD]  # it began before the change
    assert ann.open_incidents() is newer  # and kept the later read


def test_two_responders_syncing_at_once_open_each_group_once(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    books = [IncidentBook(path) for _ in range(4)]
    alerts = [alert("fp-1"), alert("fp-2", model=CHURN, name=DRIFT)]
    start = threading.Barrier(len(books))
    errors: list[BaseException] = []

    def run(book: IncidentBook) -> None:
        try:
            start.wait()
            for n in range(15):
                sync(book, alerts, 60 + n)
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(b,)) for b in books]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        incidents = books[0].incidents()
        assert sorted((i.model, i.alertname) for i in incidents) == [(CHURN, DRIFT), (FRAUD, BURN)]
        for incident in incidents:
            assert kinds(books[0].events(incident.number)) == ["incident.opened", "alert.firing"]
    finally:
        for book in books:
            book.close()


def test_the_store_refuses_a_second_open_incident_for_a_group(
    book: IncidentBook, tmp_path: Path
) -> None:
    sync(book, [alert("fp-1")], 60)
    insert = (
        "INSERT INTO incidents (model, alertname, severity, title, state, opened_at, opened_by, "
        "alert_started_at, updated_at) VALUES (?, ?, 'page', 't', ?, 0, 'x', 0, 0)"
    )
    raw = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            raw.execute(insert, (FRAUD, BURN, "triggered"))
        # Resolved incidents of the group do not count: history may hold many.
        raw.execute(insert, (FRAUD, BURN, "resolved"))
        raw.execute(insert, (FRAUD, BURN, "resolved"))
        raw.execute(insert, (CHURN, BURN, "triggered"))
    finally:
        raw.close()
    assert [i.state for i in book.incidents() if i.model == FRAUD] == [
        "resolved",
        "resolved",
        "triggered",
    ]


# -- what opens by itself ------------------------------------------------------------


def test_suppressed_only_groups_do_not_open(book: IncidentBook) -> None:
    alerts = [
        alert("fp-1", state="suppressed"),
        alert("fp-2", start=5, state="suppressed"),
        alert("fp-3", model=CHURN, state="suppressed"),
        alert("fp-4", model=CHURN, start=5, state="active"),
    ]
    result = sync(book, alerts, 60)

    assert [(i.model, i.alertname) for i in result.opened] == [(CHURN, BURN)]
    assert book.open_for(FRAUD) is None
    churn = book.open_for(CHURN)
    assert churn is not None
    # The suppressed member of an opened group is still one of its alerts.
    # The silenced member neither opens nor starts the incident.
    assert [a.fingerprint for a in churn.alerts] == ["fp-4"]


def test_auto_open_off_opens_nothing_but_follows_opened_incidents(book: IncidentBook) -> None:
    alerts = [alert("fp-1"), alert("fp-2", model=CHURN)]
    assert not sync(book, alerts, 60, auto_open=False).changed
    assert book.incidents() == []

    opened = book.open([alerts[0]], model_label="model", actor="ann", now=T0 + 70)
    assert opened.opened_by == "ann"
    result = sync(book, [alerts[1]], 80, auto_open=False)
    assert [i.number for i in result.quiet] == [opened.number]
    assert [i.model for i in book.incidents()] == [FRAUD]
    assert not book.get(opened.number).firing


def test_severities_limit_which_groups_open(book: IncidentBook) -> None:
    alerts = [
        alert("fp-1", severity="page"),
        alert("fp-2", model=CHURN, severity="ticket"),
        alert("fp-3", model="recommender", severity="warning"),
        alert("fp-4", model="recommender", start=5, severity="PAGE"),
    ]
    result = sync(book, alerts, 60, severities=["page"])

    assert sorted(i.model for i in result.opened) == [FRAUD, "recommender"]
    assert book.open_for(CHURN) is None


# -- alerts stopping and firing again ----------------------------------------------------


def test_an_alert_that_stops_is_recorded_and_the_ack_ends_with_the_last_one(
    book: IncidentBook,
) -> None:
    first, second = alert("fp-a"), alert("fp-b", start=30)
    (incident,) = sync(book, [first, second], 60).opened
    book.acknowledge(incident.number, actor="ann", now=T0 + 70)

    result = sync(book, [second], 100)
    assert not result.changed
    now = book.get(incident.number)
    assert now.firing and now.ack_active and now.state == "acknowledged"
    resolved = book.events(incident.number)[-1]
    assert (resolved.at, resolved.kind, resolved.actor) == (
        T0 + 100,
        "alert.resolved",
        "alertmanager",
    )
    assert resolved.data == {
        "fingerprint": "fp-a",
        "observed": True,
        "noticed_at": utc(resolved.at),
    }
    assert [a.ended_at for a in now.alerts] == [T0 + 100, None]

    result = sync(book, [], 200)
    assert [i.number for i in result.quiet] == [incident.number]
    now = book.get(incident.number)
    assert not now.firing and not now.ack_active
    assert now.state == "acknowledged"
    assert timed(book.events(incident.number)[-2:]) == [
        (200.0, "alert.resolved"),
        (200.0, "incident.ack_expired"),
    ]
    with pytest.raises(IncidentError, match="no alert firing"):
        book.acknowledge(incident.number, actor="bob", now=T0 + 210)

    # Nothing fires, nothing more to record.
    assert not sync(book, [], 250).changed
    assert len(book.events(incident.number)) == 7


def test_an_alert_firing_again_retriggers_and_can_be_acknowledged_again(
    book: IncidentBook,
) -> None:
    (incident,) = sync(book, [alert("fp-a")], 60).opened
    book.acknowledge(incident.number, actor="ann", now=T0 + 70)
    sync(book, [], 200)

    result = sync(book, [alert("fp-a", start=290)], 300)

    assert [i.number for i in result.retriggered] == [incident.number]
    now = book.get(incident.number)
    assert now.state == "triggered" and now.firing and not now.ack_active
    assert timed(book.events(incident.number)[-2:]) == [
        (290.0, "alert.firing"),
        (300.0, "incident.retriggered"),
    ]
    assert book.events(incident.number)[-1].data == {"was": "acknowledged"}

    again = book.acknowledge(incident.number, actor="bob", now=T0 + 320)
    assert again.state == "acknowledged" and again.ack_active
    assert again.owner == "ann"  # the first responder keeps it
    assert again.acked_by == "bob"
    assert kinds(book.events(incident.number)).count("incident.acknowledged") == 2
    assert not sync(book, [alert("fp-a", start=290)], 330).changed


def test_a_new_alert_joining_a_firing_incident_does_not_retrigger(book: IncidentBook) -> None:
    (incident,) = sync(book, [alert("fp-a")], 60).opened
    book.acknowledge(incident.number, actor="ann", now=T0 + 70)

    result = sync(book, [alert("fp-a"), alert("fp-b", start=80)], 90)

    assert not result.changed
    now = book.get(incident.number)
    assert now.state == "acknowledged" and now.ack_active
    assert timed(book.events(incident.number))[-1] == (80.0, "alert.firing")


# -- responders moving an incident ----------------------------------------------------


def test_acknowledge_takes_ownership_once(book: IncidentBook) -> None:
    (incident,) = sync(book, [alert("fp-1")], 60).opened

    acked = book.acknowledge(incident.number, actor="ann", now=T0 + 90)

    assert acked.state == "acknowledged"
    assert (acked.owner, acked.acked_by, acked.acked_at, acked.ack_active) == (
        "ann",
        "ann",
        T0 + 90,
        True,
    )
    event = book.events(incident.number)[-1]
    assert (event.kind, event.actor, event.at) == ("incident.acknowledged", "ann", T0 + 90)
    with pytest.raises(IncidentError, match="already acknowledged"):
        book.acknowledge(incident.number, actor="bob", now=T0 + 95)
    assert book.get(incident.number).owner == "ann"


def test_notes_are_kept_and_empty_ones_refused(book: IncidentBook) -> None:
    (incident,) = sync(book, [alert("fp-1")], 60).opened

    note = book.note(
        incident.number, "  v4 went out at 02:55\nerrors right after  ", actor="ann", now=T0 + 80
    )

    assert (note.kind, note.actor, note.at) == ("note", "ann", T0 + 80)
    assert note.summary == "v4 went out at 02:55\nerrors right after"
    assert note.data == {"text": "v4 went out at 02:55\nerrors right after"}
    assert book.events(incident.number)[-1] == note
    with pytest.raises(IncidentError, match="needs some text"):
        book.note(incident.number, " \n\t", actor="ann", now=T0 + 81)
    with pytest.raises(IncidentError, match="no incident INC-99"):
        book.note(99, "hello", actor="ann", now=T0 + 82)
    assert kinds(book.events(incident.number)).count("note") == 1


def test_mitigated_moves_once_and_only_from_an_unmitigated_state(book: IncidentBook) -> None:
    (incident,) = sync(book, [alert("fp-1")], 60).opened
    book.acknowledge(incident.number, actor="ann", now=T0 + 70)

    assert book.mitigated(
        incident.number,
        actor="ann",
        action="rollback",
        summary="fraud-detector@champion: v4 → v3",
        audit_seq=7,
        now=T0 + 100,
    )
    assert not book.mitigated(
        incident.number, actor="bob", action="fallback", summary="x", audit_seq=9, now=T0 + 110
    )

    now = book.get(incident.number)
    assert (now.state, now.mitigated_at) == ("mitigated", T0 + 100)
    mitigations = [e for e in book.events(incident.number) if e.kind == "incident.mitigated"]
    assert len(mitigations) == 1
    assert mitigations[0].data == {"action": "rollback", "audit_seq": 7}
    assert mitigations[0].summary == "mitigated: fraud-detector@champion: v4 → v3"

    book.resolve(incident.number, actor="ann", now=T0 + 200)
    assert not book.mitigated(
        incident.number, actor="ann", action="rollback", summary="x", audit_seq=None, now=T0 + 210
    )
    assert book.get(incident.number).state == "resolved"


def test_resolve_once_then_the_group_opens_a_new_incident(book: IncidentBook) -> None:
    (incident,) = sync(book, [alert("fp-1")], 60).opened
    book.acknowledge(incident.number, actor="ann", now=T0 + 70)

    done = book.resolve(incident.number, actor="ann", comment="rolled back", now=T0 + 300)

    assert done.state == "resolved" and not done.is_open
    assert (done.resolved_at, done.resolved_by, done.ack_active) == (T0 + 300, "ann", False)
    last = book.events(incident.number)[-1]
    assert (last.kind, last.summary, last.data) == (
        "incident.resolved",
        "resolved by ann: rolled back",
        {"comment": "rolled back"},
    )
    with pytest.raises(IncidentError, match="already resolved"):
        book.resolve(incident.number, actor="bob", now=T0 + 301)
    with pytest.raises(IncidentError, match="is resolved"):
        book.acknowledge(incident.number, actor="bob", now=T0 + 302)
    assert book.open_for(FRAUD) is None
    assert book.incidents(open_only=True) == []

    # The same firing, still reported after the resolve, opens nothing new…
    assert not sync(book, [alert("fp-1")], 350).opened
    # …but the alert firing anew (a later startsAt) does.
    (second,) = sync(book, [alert("fp-1", start=390)], 400).opened

    assert second.number != incident.number
    assert second.state == "triggered"
    assert [i.number for i in book.incidents()] == [second.number, incident.number]
    assert book.get(incident.number).state == "resolved"
    assert book.open_for(FRAUD) == second


def test_find_open_for_and_record(book: IncidentBook) -> None:
    sync(book, [alert("fp-1", severity="warning")], 60)
    sync(book, [alert("fp-1", severity="warning"), alert("fp-2", name=DRIFT)], 70)
    sync(
        book,
        [
            alert("fp-1", severity="warning"),
            alert("fp-2", name=DRIFT),
            alert("fp-3", name="Other", severity="warning"),
        ],
        80,
    )

    assert [book.find(t).number for t in ("INC-3", "3", "inc-3", " INC-3 ")] == [3, 3, 3, 3]
    with pytest.raises(IncidentError, match="not an incident id"):
        book.find("INC-x")
    with pytest.raises(IncidentError, match="no incident INC-42"):
        book.find("INC-42")
    assert parse_incident_id("INC-12") == 12

    # The most severe open incident of the model (page ranks before warning).
    assert book.open_for(FRAUD).number == 2  # type: ignore[union-attr]
    assert book.open_for(FRAUD, BURN).number == 1  # type: ignore[union-attr]
    assert book.open_for(CHURN) is None
    assert [i.number for i in book.incidents(limit=2)] == [3, 2]

    assert book.record(1, "sli.recovery", "back", {"value": 0.001}, at=T0 + 500, once=True)
    assert not book.record(1, "sli.recovery", "again", {"value": 0.0}, at=T0 + 600, once=True)
    assert book.record(1, "note", "two", {}, at=T0 + 700)
    recoveries = [e for e in book.events(1) if e.kind == "sli.recovery"]
    assert [(e.at, e.data) for e in recoveries] == [(T0 + 500, {"value": 0.001})]
    with pytest.raises(IncidentError):
        book.record(42, "note", "x", {})


def test_severity_rank_orders_the_known_labels_first() -> None:
    labels = ["info", "", "warning", "Critical", "custom", "page"]
    assert sorted(labels, key=severity_rank)[:4] == ["Critical", "page", "warning", "info"]
    assert severity_rank("custom") == severity_rank("") > severity_rank("info")


def test_an_id_of_unicode_digits_is_refused_as_an_incident_error() -> None:
    with pytest.raises(IncidentError):
        parse_incident_id("INC-²")


# -- the whole timeline --------------------------------------------------------------


@contextmanager
def store_clock(at: float) -> Iterator[None]:
    """Runs created (and moved) inside are stamped ``at``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "time", SimpleNamespace(time=lambda: at))
        yield


def walk(store: Store, fingerprint: str, created: float, steps: Sequence[Evidence]) -> str:
    with store_clock(T0 + created):
        run = store.create_run("model-regression", 3, {"model": FRAUD}, "deploys", fingerprint)
        path: tuple[str, ...] = ()
        for step in steps:
            path += (step.step_id,)
            store.update_run(run.id, path=path, status="active", evidence=step)
    return run.id


def step(step_id: str, kind: str, at: float, **outputs: Any) -> Evidence:
    inputs: dict[str, Any] = {"condition": "> 0"} if kind == "check" else {}
    if kind == "ask":
        inputs = {"question": "was there a deploy?"}
    return Evidence(step_id, kind, inputs, outputs, "next", "ann", T0 + at)


def test_timeline_merges_incident_events_runbook_evidence_and_audit(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    book, store, audit = IncidentBook(path), Store(path), AuditLog(tmp_path / "audit.db")
    try:
        (incident,) = sync(book, [alert("fp-a"), alert("fp-b", start=30)], 60).opened
        sync(book, [alert("fp-a"), alert("fp-b", start=30), alert("fp-x", model=CHURN)], 61)
        inside = walk(
            store,
            "fp-a",
            -RUN_GRACE + 1,
            [
                step("deploys", "check", 70, values=[{"value": 2.0}]),
                step("cause", "conclude", 90, cause="model", summary="bad deploy of v4"),
            ],
        )
        on_b = walk(store, "fp-b", 100, [step("ask", "ask", 110)])
        walk(store, "fp-a", -RUN_GRACE - 1, [step("early", "check", -250, values=[])])
        walk(store, "fp-x", 50, [step("other-alert", "check", 55, values=[])])
        book.acknowledge(incident.number, actor="ann", now=T0 + 120)
        book.note(incident.number, "rolling back", actor="ann", now=T0 + 130)
        params = {"model": FRAUD}
        intent = audit.append(
            "intent", actor="ann", action="rollback", params=params, incident="INC-1", at=T0 + 150
        )
        result = audit.append(
            "result",
            actor="ann",
            action="rollback",
            params=params,
            incident="INC-1",
            result={"applied": True},
            intent_seq=intent.seq,
            at=T0 + 151,
        )
        audit.append(
            "intent", actor="bob", action="silence", params={}, incident="INC-2", at=T0 + 152
        )
        audit.append("intent", actor="bob", action="fallback", params={}, at=T0 + 153)
        book.resolve(incident.number, actor="ann", now=T0 + 300)
        walk(store, "fp-a", 301, [step("late", "check", 302, values=[])])

        events = timeline(book.get(incident.number), book, store=store, audit=audit)
    finally:
        book.close()
        store.close()
        audit.close()

    assert timed(events) == [
        (0.0, "alert.firing"),
        (30.0, "alert.firing"),
        (60.0, "incident.opened"),
        (70.0, "runbook.step"),
        (90.0, "runbook.concluded"),
        (110.0, "runbook.step"),
        (120.0, "incident.acknowledged"),
        (130.0, "note"),
        (150.0, "action.intent"),
        (151.0, "action.result"),
        (300.0, "incident.resolved"),
    ]
    refs = [e.ref for e in events]
    assert refs[3:6] == [f"runbook:{inside}/1", f"runbook:{inside}/2", f"runbook:{on_b}/1"]
    assert refs[8:10] == [f"audit:{intent.seq}", f"audit:{result.seq}"]

    concluded = events[4]
    assert concluded.data["cause"] == "model"
    assert concluded.data["summary"] == "bad deploy of v4"
    assert concluded.data["run"] == inside and concluded.data["step_kind"] == "conclude"
    assert concluded.summary == "model-regression: cause model: bad deploy of v4"
    assert events[3].summary == "model-regression/deploys check: next (value 2; > 0)"
    assert events[5].summary == "model-regression/ask ask: next (was there a deploy?)"

    intent_event, result_event = events[8], events[9]
    assert (intent_event.data["seq"], intent_event.data["hash"]) == (intent.seq, intent.hash)
    assert (result_event.data["seq"], result_event.data["hash"]) == (result.seq, result.hash)
    assert result_event.data["intent_seq"] == intent.seq
    assert result_event.actor == "ann"
    assert result_event.data["action"] == "rollback"


def test_a_repeated_page_gets_only_its_own_walks(tmp_path: Path) -> None:
    """Two incidents on one alert, one after the other: each timeline holds the walks
    of its own firing (filed under it, or unfiled but started on that firing), never
    the other's, nor a walk from an older store that ended before it fired."""
    path = tmp_path / "store.db"
    book, store = IncidentBook(path), Store(path)
    try:
        (first,) = sync(book, [alert("fp-a")], 10).opened
        with store_clock(T0 + 20):
            filed = store.create_run(
                "model-regression", 3, {}, "deploys", "fp-a", incident=first.number, firing_at=T0
            ).id
            store.update_run(
                filed,
                path=("deploys", "cause"),
                status="concluded",
                cause="model",
                evidence=step("cause", "conclude", 30, cause="model", summary="bad deploy"),
            )
        legacy_done = walk(store, "fp-a", 25, [step("old", "conclude", 40, cause="data")])
        store.update_run(legacy_done, path=("old",), status="concluded", cause="data")
        sync(book, [], 100)
        book.resolve(first.number, actor="ann", now=T0 + 110)

        again = alert("fp-a", start=200)
        (second,) = sync(book, [again], 205).opened
        with store_clock(T0 + 210):  # pre-triage, before the incident was known
            unfiled = store.create_run(
                "model-regression", 3, {}, "deploys", "fp-a", firing_at=T0 + 200
            ).id
            store.update_run(
                unfiled,
                path=("deploys",),
                status="active",
                evidence=step("deploys", "check", 211, values=[]),
            )

        firsts = {
            e.data["run"]
            for e in timeline(book.get(first.number), book, store=store)
            if e.kind.startswith("runbook.")
        }
        seconds = {
            e.data["run"]
            for e in timeline(book.get(second.number), book, store=store)
            if e.kind.startswith("runbook.")
        }
    finally:
        book.close()
        store.close()

    assert firsts == {filed, legacy_done}
    assert seconds == {unfiled}


def test_timeline_without_store_or_audit_is_the_incident_events_in_time_order(
    book: IncidentBook,
) -> None:
    (incident,) = sync(book, [alert("fp-b", start=30), alert("fp-a")], 60).opened

    events = timeline(incident, book)

    assert events == ordered(book.events(incident.number))
    assert timed(events) == [
        (0.0, "alert.firing"),
        (30.0, "alert.firing"),
        (60.0, "incident.opened"),
    ]


def test_ordered_keeps_the_order_of_events_at_the_same_instant() -> None:
    events = [Event(T0 + 2, "note", "a", "later"), Event(T0, "note", "a", "x", ref="1")]
    events += [Event(T0, "note", "a", "y", ref="2"), Event(T0 + 1, "note", "a", "z")]
    assert [e.summary for e in ordered(events)] == ["x", "y", "z", "later"]


def test_utc_formats_milliseconds_and_carries_a_rounded_second() -> None:
    assert utc(T0) == "2026-11-23T03:00:00.000Z"
    assert utc(T0 + 9.412) == "2026-11-23T03:00:09.412Z"
    assert utc(T0 + 59.9996) == "2026-11-23T03:01:00.000Z"


# -- metrics ---------------------------------------------------------------------------


def event(at: float, kind: str, ref: str, fingerprint: str | None = None) -> Event:
    data = {} if fingerprint is None else {"fingerprint": fingerprint}
    return Event(T0 + at, kind, "x", kind, data, ref)


def test_metrics_are_the_differences_of_the_right_events() -> None:
    events = [
        event(-120, "sli.first_breach", "b"),
        event(0, "alert.firing", "f1", "fp-1"),
        event(30, "alert.firing", "f2", "fp-2"),
        event(60, "incident.opened", "o"),
        event(90, "incident.acknowledged", "a1"),
        event(150, "incident.acknowledged", "a2"),
        event(200, "incident.mitigated", "m"),
        event(400, "sli.recovery", "r"),
        event(500, "alert.resolved", "x1", "fp-1"),
        event(600, "incident.resolved", "z"),
    ]

    metrics = compute_metrics(events)

    got = {key: (m.seconds, m.start, m.end) for key, m in metrics.items()}
    assert got == {
        "mttd": (120.0, "b", "f1"),
        "mtta": (90.0, "f1", "a1"),
        "ttm": (200.0, "f1", "m"),
        "ttr": (400.0, "f1", "r"),
        "mttr": (600.0, "f1", "z"),
    }
    assert metrics["mtta"].as_dict()["seconds"] == 90.0
    assert metrics["mttd"].label == "MTTD"


def test_metrics_without_their_ends_are_none() -> None:
    metrics = compute_metrics(
        [event(0, "alert.firing", "f1", "fp-1"), event(5, "incident.opened", "o")]
    )

    assert {k: m.seconds for k, m in metrics.items()} == dict.fromkeys(
        ("mttd", "mtta", "ttm", "ttr", "mttr")
    )
    assert (metrics["mtta"].start, metrics["mtta"].end) == ("f1", None)
    assert (metrics["mttd"].start, metrics["mttd"].end) == (None, "f1")
    assert all(m.seconds is None for m in compute_metrics([]).values())


def test_ttr_falls_back_to_the_last_alert_resolved_when_nothing_fires() -> None:
    base = [
        event(0, "alert.firing", "f1", "fp-1"),
        event(30, "alert.firing", "f2", "fp-2"),
        event(100, "alert.resolved", "x1", "fp-1"),
    ]
    assert compute_metrics(base)["ttr"].seconds is None  # fp-2 still fires

    ended = [*base, event(250, "alert.resolved", "x2", "fp-2")]
    ttr = compute_metrics(ended)["ttr"]
    assert (ttr.seconds, ttr.start, ttr.end) == (250.0, "f1", "x2")

    refired = [*ended, event(300, "alert.firing", "f3", "fp-1")]
    assert compute_metrics(refired)["ttr"].seconds is None

    recovered = [*ended, event(200, "sli.recovery", "r")]
    assert compute_metrics(ordered(recovered))["ttr"].end == "r"


def test_metrics_of_a_real_incident(book: IncidentBook) -> None:
    (incident,) = sync(book, [alert("fp-a")], 60).opened
    book.acknowledge(incident.number, actor="ann", now=T0 + 75)
    book.mitigated(
        incident.number,
        actor="ann",
        action="rollback",
        summary="v4 → v3",
        audit_seq=2,
        now=T0 + 140,
    )
    sync(book, [], 260)
    book.resolve(incident.number, actor="ann", now=T0 + 400)

    metrics = compute_metrics(timeline(book.get(incident.number), book))

    assert {k: m.seconds for k, m in metrics.items()} == {
        "mttd": None,
        "mtta": 75.0,
        "ttm": 140.0,
        "ttr": 260.0,
        "mttr": 400.0,
    }


def test_ttr_is_none_while_an_alert_fires_again(book: IncidentBook) -> None:
    (incident,) = sync(book, [alert("fp-a")], 60).opened
    sync(book, [], 200)  # the console sees it gone at +200
    # It fired again: Prometheus's startsAt is when it went pending (+150), before
    # the console noticed the earlier run had stopped.
    sync(book, [alert("fp-a", start=150)], 450)
    assert book.get(incident.number).firing

    metrics = compute_metrics(timeline(book.get(incident.number), book))

    assert metrics["ttr"].seconds is None


# -- SLI snapshots read live -------------------------------------------------------------


class Prometheus(MetricsAdapter):
    """Answers range queries with fixed series and instant queries with fixed samples."""

    def __init__(
        self,
        series: Sequence[RangeSeries] = (),
        *,
        samples: Sequence[Sample] = (),
        error: AdapterError | None = None,
    ) -> None:
        super().__init__("prometheus", SETTINGS)
        self.series = tuple(series)
        self.samples = tuple(samples)
        self.error = error
        self.range_calls: list[tuple[str, float, float, float]] = []
        self.instant_calls: list[str] = []

    async def query(self, promql: str, at: float | None = None) -> QueryResult:
        self.instant_calls.append(promql)
        if self.error is not None:
            raise self.error
        return QueryResult(promql, self.samples)

    async def query_range(self, promql: str, start: float, end: float, step: float) -> RangeResult:
        self.range_calls.append((promql, start, end, step))
        if self.error is not None:
            raise self.error
        return RangeResult(promql, self.series)


def series(model: str, values: Sequence[float], *, start: float = -600) -> RangeSeries:
    """One point a minute from ``start`` seconds after T0."""
    return RangeSeries(
        {"model": model, "__name__": "e"},
        tuple((T0 + start + 60 * n, value) for n, value in enumerate(values)),
    )


NAN = float("nan")
GOOD, BAD = 0.001, 0.03
#: The SLI's query ("e") narrowed to the incident's model: what incidents ask for.
E_FRAUD = select_series("e", "model", FRAUD)


def opened(book: IncidentBook) -> Incident:
    (incident,) = sync(book, [alert("fp-a", start=0)], 60).opened
    return incident


async def test_first_breach_is_the_start_of_the_last_breach_before_the_alert(
    book: IncidentBook,
) -> None:
    incident = opened(book)
    prometheus = Prometheus(
        [
            series(CHURN, [BAD] * 11),  # another model breached all along
            #        -600  -540 -480 -420  -360 -300   -240 -180 -120 -60  0
            series(FRAUD, [GOOD, BAD, BAD, GOOD, NAN, 0.02, NAN, BAD, 0.05, BAD, BAD]),
        ]
    )

    assert await record_first_breach(book, incident, CONFIG, {"prometheus": prometheus})

    assert prometheus.range_calls == [(E_FRAUD, T0 - 3600, T0, 1.0)]
    (breach,) = [e for e in book.events(incident.number) if e.kind == "sli.first_breach"]
    assert (breach.at, breach.actor) == (T0 - 300, "prometheus")
    assert breach.data["value"] == 0.02
    assert breach.data["model"] == FRAUD and breach.data["sli"] == "error_ratio"
    assert breach.data["objective"] == "< 0.01"
    assert compute_metrics(timeline(incident, book))["mttd"].seconds == 300.0

    # Kept once: a second look (another console, a restart) adds nothing.
    earlier = Prometheus([series(FRAUD, [GOOD, BAD] + [BAD] * 9)])
    assert not await record_first_breach(book, incident, CONFIG, {"prometheus": earlier})
    assert kinds(book.events(incident.number)).count("sli.first_breach") == 1


class ThreadNoting(Prometheus):
    """A metrics source that notes the thread each range query runs in."""

    def __init__(self, series: Sequence[RangeSeries]) -> None:
        super().__init__(series)
        self.threads: list[threading.Thread] = []

    async def query_range(self, promql: str, start: float, end: float, step: float) -> RangeResult:
        self.threads.append(threading.current_thread())
        return await super().query_range(promql, start, end, step)


async def own_store_opened(app: Any, pilot: Any) -> None:
    """Until the app (run with ``poll=False``) has opened the config's store, in a
    thread started once it is ready: a book given before then would be replaced."""
    for _ in range(10_000):  # each pause waits on the app's messages, not a clock
        if app.incidents is not None:
            break
        await pilot.pause()
    assert app.incidents is not None, "the app did not open its store"
    await app.workers.wait_for_complete()


async def test_the_consoles_first_breach_reads_and_writes_run_off_the_ui_loop(
    book: IncidentBook,
) -> None:
    """At a page of hundreds of alerts, each incident's range query, its parse and the
    store's write are work the UI's loop must not do between keys."""
    from console.sources.poller import Poller
    from screens.app import create_app

    incident = opened(book)
    prometheus = ThreadNoting([series(FRAUD, [GOOD] * 8 + [BAD] * 3)])
    written: list[threading.Thread] = []
    record = book.record

    def noting(*args: Any, **kwargs: Any) -> bool:
        written.append(threading.current_thread())
        return record(*args, **kwargs)

    book.record = noting  # type: ignore[method-assign]
    app = create_app(CONFIG, poll=False)
    async with app.run_test() as pilot:
        ui = threading.current_thread()
        await own_store_opened(app, pilot)
        app.session.incidents = book
        app.poller = Poller(CONFIG, {"prometheus": prometheus})
        app._breaches_due.append(incident)
        await app._first_breaches()
        (breach,) = [e for e in book.events(incident.number) if e.kind == "sli.first_breach"]
        assert breach.at == T0 - 120
        assert prometheus.threads and written
        assert ui not in prometheus.threads and ui not in written


async def test_the_console_says_whether_first_breach_reads_are_pending(book: IncidentBook) -> None:
    """What a bench waits on before it times keys in steady state: pending from the
    moment an incident is queued until its read is written, then not."""
    from console.sources.poller import Poller
    from screens.app import create_app

    incident = opened(book)
    app = create_app(CONFIG, poll=False)
    async with app.run_test() as pilot:
        await own_store_opened(app, pilot)
        app.session.incidents = book
        app.poller = Poller(
            CONFIG, {"prometheus": Prometheus([series(FRAUD, [GOOD] * 8 + [BAD] * 3)])}
        )
        assert not app.first_breaches_pending
        app.measure_first_breaches([incident])
        assert app.first_breaches_pending
        await app.workers.wait_for_complete()
        assert not app.first_breaches_pending
        assert "sli.first_breach" in kinds(book.events(incident.number))


async def test_first_breach_of_a_series_breached_from_its_first_point(book: IncidentBook) -> None:
    incident = opened(book)
    prometheus = Prometheus([series(FRAUD, [NAN, BAD, BAD, 0.5], start=-240)])

    assert await record_first_breach(book, incident, CONFIG, {"prometheus": prometheus})

    (breach,) = [e for e in book.events(incident.number) if e.kind == "sli.first_breach"]
    assert (breach.at, breach.data["value"]) == (T0 - 180, BAD)


async def test_a_repeated_page_looks_back_no_further_than_the_previous_incident(
    book: IncidentBook,
) -> None:
    first = opened(book)
    book.resolve(first.number, actor="ann", now=T0 + 100)
    # The same alert fires again at +300: a new incident of the same group.
    (second,) = sync(book, [alert("fp-a", start=300)], 310).opened
    assert second.number != first.number

    # The SLI breached at -120 (the first incident's breach) and never recovered.
    never_recovered = Prometheus([series(FRAUD, [GOOD] * 8 + [BAD] * 8, start=-600)])
    assert not await record_first_breach(book, second, CONFIG, {"prometheus": never_recovered})
    assert "sli.first_breach" not in kinds(book.events(second.number))
    ((_, start, end, _),) = never_recovered.range_calls
    assert (start, end) == (T0 + 100, T0 + 300)
    assert compute_metrics(timeline(second, book))["mttd"].seconds is None

    # Recovered after the first incident, breached again at +240: that is this one's.
    recovered = Prometheus([series(FRAUD, [GOOD] * 8 + [BAD] * 3 + [GOOD] * 3 + [BAD] * 2)])
    assert await record_first_breach(book, second, CONFIG, {"prometheus": recovered})
    (breach,) = [e for e in book.events(second.number) if e.kind == "sli.first_breach"]
    assert breach.at == T0 + 240


@pytest.mark.parametrize(
    "prometheus",
    [
        pytest.param(Prometheus(error=AdapterError("prometheus", "down")), id="adapter-error"),
        pytest.param(Prometheus([]), id="no-series"),
        pytest.param(Prometheus([series(CHURN, [BAD] * 11)]), id="other-model-only"),
        pytest.param(Prometheus([series(FRAUD, [GOOD] * 11)]), id="never-breached"),
        pytest.param(Prometheus([series(FRAUD, [NAN] * 11)]), id="only-nan"),
    ],
)
async def test_first_breach_not_found(book: IncidentBook, prometheus: Prometheus) -> None:
    incident = opened(book)

    assert not await record_first_breach(book, incident, CONFIG, {"prometheus": prometheus})

    assert "sli.first_breach" not in kinds(book.events(incident.number))


async def test_first_breach_without_a_metrics_source_is_not_found(book: IncidentBook) -> None:
    incident = opened(book)
    assert not await record_first_breach(book, incident, CONFIG, {})
    assert "sli.first_breach" not in kinds(book.events(incident.number))


def report(action: str, outcome: Outcome = Outcome.APPLIED) -> Report:
    plan = Plan(
        action=action,
        model=FRAUD,
        params={"model": FRAUD},
        changes=(Change(f"{FRAUD}@champion", "v4", "v3"),),
        before={"version": "4"},
        after={"version": "3"},
    )
    return Report(outcome, plan, "done", intent_seq=5, result_seq=6)


async def test_an_applied_rollback_mitigates_with_the_sli_at_that_moment(
    book: IncidentBook,
) -> None:
    incident = opened(book)
    book.acknowledge(incident.number, actor="ann", now=T0 + 70)
    prometheus = Prometheus(
        samples=[Sample({"model": CHURN}, 0.9, 0.0), Sample({"model": FRAUD}, 0.031, 0.0)]
    )
    adapters = {"prometheus": prometheus}

    moved = await after_action(
        book, incident.id, report("rollback"), CONFIG, adapters, actor="ann", at=T0 + 200
    )

    assert moved
    now = book.get(incident.number)
    assert (now.state, now.mitigated_at) == ("mitigated", T0 + 200)
    events = book.events(incident.number)
    assert timed(events[-2:]) == [(200.0, "incident.mitigated"), (200.0, "sli.mitigation")]
    assert events[-2].data == {"action": "rollback", "audit_seq": 6}
    assert events[-2].summary == f"mitigated: {FRAUD}@champion: v4 → v3"
    snapshot = events[-1]
    assert snapshot.data["value"] == 0.031
    assert snapshot.data["sli"] == "error_ratio" and snapshot.data["query"] == "e"
    assert prometheus.instant_calls == [E_FRAUD]  # its model alone

    # Only the first mitigation moves it and is measured.
    assert not await after_action(
        book, incident.id, report("fallback"), CONFIG, adapters, actor="bob", at=T0 + 250
    )
    assert kinds(book.events(incident.number)).count("sli.mitigation") == 1
    assert compute_metrics(timeline(book.get(incident.number), book))["ttm"].seconds == 200.0


@pytest.mark.parametrize(
    ("action", "outcome", "incident_id"),
    [
        ("silence", Outcome.APPLIED, "INC-1"),
        ("rollback", Outcome.DRY_RUN, "INC-1"),
        ("rollback", Outcome.REFUSED, "INC-1"),
        ("rollback", Outcome.FAILED, "INC-1"),
        ("rollback", Outcome.APPLIED, None),
        ("rollback", Outcome.APPLIED, "INC-9"),
    ],
)
async def test_other_reports_do_not_mitigate(
    book: IncidentBook, action: str, outcome: Outcome, incident_id: str | None
) -> None:
    incident = opened(book)
    prometheus = Prometheus(samples=[Sample({"model": FRAUD}, 0.031, 0.0)])
    before = book.events(incident.number)

    moved = await after_action(
        book,
        incident_id,
        report(action, outcome),
        CONFIG,
        {"prometheus": prometheus},
        actor="ann",
        at=T0 + 200,
    )

    assert not moved
    assert book.get(incident.number).state == "triggered"
    assert book.events(incident.number) == before
    assert prometheus.instant_calls == []


class Alertmanager(AlertsAdapter):
    def __init__(self, alerts: Sequence[AlertRecord], *, down: bool = False) -> None:
        super().__init__("alertmanager", SETTINGS)
        self.records = tuple(alerts)
        self.down = down

    async def alerts(self) -> tuple[AlertRecord, ...]:
        if self.down:
            raise AdapterError("alertmanager", "cannot connect")
        return self.records

    async def groups(self) -> tuple[()]:
        return ()

    async def silences(self) -> tuple[SilenceRecord, ...]:
        return ()

    async def create_silence(self, *args: Any) -> str:
        raise AssertionError("not used")

    async def expire_silence(self, silence_id: str) -> None:
        raise AssertionError("not used")


async def test_sync_from_source_opens_and_measures_the_first_breach(book: IncidentBook) -> None:
    config = CONFIG.model_copy(
        update={"incidents": CONFIG.incidents.model_copy(update={"auto_open": True})}
    )
    adapters: dict[str, Any] = {
        "alertmanager": Alertmanager([alert("fp-a")]),
        "prometheus": Prometheus([series(FRAUD, [GOOD] * 8 + [BAD] * 3)]),
    }

    result = await sync_from_source(book, config, adapters, actor="ann")

    (incident,) = result.opened
    assert incident.opened_by == "ann"
    (breach,) = [e for e in book.events(incident.number) if e.kind == "sli.first_breach"]
    assert breach.at == T0 - 120

    adapters["alertmanager"] = Alertmanager([], down=True)
    before = book.events(incident.number)
    with pytest.raises(AdapterError):
        await sync_from_source(book, config, adapters)
    # An unreachable Alertmanager is not "every alert stopped".
    assert book.events(incident.number) == before
    assert book.get(incident.number).firing


def test_an_alert_ends_only_after_the_grace_and_at_the_first_miss(book: IncidentBook) -> None:
    (incident,) = sync(book, [alert("fp-1")], 60).opened
    book.acknowledge(incident.number, actor="ann", now=T0 + 70)
    # Missing once (a replica that has not heard of it, a restart): nothing ends yet.
    sync(book, [], 100, end_grace=30)
    assert book.get(incident.number).firing
    assert "alert.resolved" not in kinds(book.events(incident.number))
    # Back within the grace: it never ended.
    sync(book, [alert("fp-1")], 110, end_grace=30)
    sync(book, [], 120, end_grace=30)
    sync(book, [], 140, end_grace=30)  # 20 s missing: still within the grace
    assert book.get(incident.number).ack_active
    sync(book, [], 150, end_grace=30)  # 30 s: it ended when it was first missed
    after = book.get(incident.number)
    assert not after.firing and not after.ack_active
    resolved = [e for e in book.events(incident.number) if e.kind == "alert.resolved"]
    assert [(e.at - T0, seconds_of(e.data["noticed_at"]) - T0) for e in resolved] == [(120, 150)]


def test_an_old_read_of_an_ended_alert_is_not_a_new_firing(book: IncidentBook) -> None:
    (incident,) = sync(book, [alert("fp-1")], 60).opened
    book.acknowledge(incident.number, actor="ann", now=T0 + 70)
    book.mitigated(
        incident.number,
        actor="ann",
        action="rollback",
        summary="v4 → v3",
        audit_seq=1,
        now=T0 + 80,
    )
    sync(book, [], 100)  # this console saw it stop
    before = book.events(incident.number)
    sync(book, [alert("fp-1")], 105)  # another console's older list: same startsAt
    after = book.get(incident.number)
    assert after.state == "mitigated" and not after.firing
    assert book.events(incident.number) == before
    sync(book, [alert("fp-1", start=200)], 210)  # a later startsAt: it fired anew
    assert book.get(incident.number).state == "triggered"


def test_opening_by_hand_on_a_quiet_incident_retriggers_it(book: IncidentBook) -> None:
    (incident,) = sync(book, [alert("fp-1")], 60).opened
    book.acknowledge(incident.number, actor="ann", now=T0 + 70)
    sync(book, [], 100)
    again = book.open([alert("fp-1", start=150)], model_label="model", actor="bob", now=T0 + 160)
    assert again.number == incident.number
    assert again.firing and again.state == "triggered"
    book.acknowledge(incident.number, actor="bob", now=T0 + 170)  # it can be acked again


def test_alerts_of_a_resolved_incident_are_followed_to_their_end(book: IncidentBook) -> None:
    (incident,) = sync(book, [alert("fp-1")], 60).opened
    book.resolve(incident.number, actor="ann", now=T0 + 90)  # resolved while it still fires
    sync(book, [alert("fp-1")], 100)
    sync(book, [], 130)
    done = book.get(incident.number)
    assert done.state == "resolved" and not done.firing
    assert done.alerts[0].ended_at == T0 + 130


async def test_no_first_breach_when_breached_for_the_whole_lookback(book: IncidentBook) -> None:
    incident = opened(book)
    prometheus = Prometheus([series(FRAUD, [BAD] * 11)])
    # Its start lies before the window: an MTTD of "the lookback" would be made up.
    assert not await record_first_breach(book, incident, CONFIG, {"prometheus": prometheus})
    assert "sli.first_breach" not in kinds(book.events(incident.number))


def test_recovery_is_kept_only_for_the_incidents_own_sli(book: IncidentBook) -> None:
    from console.actions.verify import Recovery
    from console.incidents.live import record_recovery

    incident = opened(book)  # its alert names error_ratio

    def recovery(sli: str) -> Recovery:
        return Recovery(FRAUD, sli, "q", "good below 0.01", True, 0.004, 12.0, 7)

    # A latency SLI that recovered says nothing of an error-ratio page.
    assert not record_recovery(book, incident.id, recovery("latency_p99"), CONFIG, at=T0 + 90)
    assert record_recovery(book, incident.id, recovery("error_ratio"), CONFIG, at=T0 + 95)
    (kept,) = [e for e in book.events(incident.number) if e.kind == "sli.recovery"]
    assert (kept.at, kept.data["value"]) == (T0 + 95, 0.004)
    assert not record_recovery(book, "INC-99", recovery("error_ratio"), CONFIG, at=T0 + 99)


# -- impact: a range query of the SLI's own PromQL over the incident window ---------------


async def test_impact_is_the_peak_and_breach_of_the_slis_own_query_over_the_window(
    book: IncidentBook,
) -> None:
    incident = opened(book)
    book.record(incident.number, "sli.first_breach", "b", {"query": "e"}, at=T0 - 120)
    book.mitigated(incident.number, actor="ann", action="rollback", summary="v4→v3", audit_seq=1)
    sync(book, [], 700)  # the alert stopped
    book.resolve(incident.number, actor="ann", now=T0 + 800)
    #                 -120 -60   0    60   120  180 (mitigated)  240  300   360
    peaked = series(FRAUD, [BAD, 0.2, 0.45, 0.3, 0.08, 0.05, 0.02, GOOD, GOOD], start=-120)
    prometheus = Prometheus([series(CHURN, [0.9] * 9, start=-120), peaked])
    done = book.get(incident.number)

    impact = await impact_event(
        book, done, CONFIG, {"prometheus": prometheus}, book.events(done.number), now=T0 + 5000
    )

    assert impact is None  # resolved: kept in the incident, read back with its timeline
    # The SLI's own query ("e", not the burn-rate or verification query), for its
    # model alone, over the window from the first breach to the resolution.
    assert prometheus.range_calls == [(E_FRAUD, T0 - 120, T0 + 800, 1.0)]
    (kept,) = [e for e in book.events(done.number) if e.kind == "sli.impact"]
    assert kept.data["worst_value"] == 0.45 and kept.data["worst_at"] == T0  # the peak
    assert (kept.data["breached_from"], kept.data["breached_until"]) == (T0 - 120, T0 + 300)
    assert kept.data["breach_seconds"] == 420
    assert (kept.data["window_start"], kept.data["window_end"]) == (T0 - 120, T0 + 800)
    # Measured once: the window is final.
    again = Prometheus([peaked])
    events = book.events(done.number)
    assert await impact_event(book, done, CONFIG, {"prometheus": again}, events, now=T0) is None
    assert again.range_calls == []

    doc = build_document(done, timeline(done, book))
    assert doc.impact.worst_value == 0.45 and doc.impact.breach_seconds == 420
    assert doc.impact.recovered_at == utc(T0 + 300)
    assert doc.impact.measured_by is not None and doc.impact.measured_by.query == "e"
    markdown = to_markdown(doc)
    assert "- **Worst value seen:** 0.45 at " + utc(T0) in markdown
    assert (
        f"- **Measured by:** a range query of the SLI's own PromQL `e` over {utc(T0 - 120)} → "
        f"{utc(T0 + 800)}, step 1s" in markdown
    )


async def test_an_open_incidents_impact_is_measured_to_now_and_not_kept(
    book: IncidentBook,
) -> None:
    incident = opened(book)
    prometheus = Prometheus([series(FRAUD, [BAD, 0.2, 0.1], start=0)])
    impact = await impact_event(
        book, incident, CONFIG, {"prometheus": prometheus}, [], now=T0 + 150
    )
    assert impact is not None and impact.data["ongoing"] is True
    assert prometheus.range_calls == [(E_FRAUD, T0, T0 + 150, 1.0)]
    assert (impact.data["breached_from"], impact.data["breach_seconds"]) == (T0, None)
    assert "sli.impact" not in kinds(book.events(incident.number))
    doc = build_document(incident, timeline(incident, book), measured=impact)
    assert "not over: breached from" in to_markdown(doc)

    down = Prometheus(error=AdapterError("prometheus", "cannot connect"))
    failed = await impact_event(book, incident, CONFIG, {"prometheus": down}, [], now=T0 + 150)
    assert failed is not None and "cannot connect" in failed.data["error"]
    doc = build_document(incident, timeline(incident, book), measured=failed)
    assert doc.impact.measured_by is not None and doc.impact.worst_value is None
    assert "could not be read (prometheus: cannot connect)" in to_markdown(doc)


# -- resolving by itself after a quiet period -----------------------------------------


def _with_incidents(**settings: Any) -> Any:
    return CONFIG.model_copy(
        update={"incidents": CONFIG.incidents.model_copy(update={"auto_open": True, **settings})}
    )


def test_a_quiet_incident_resolves_by_itself_after_auto_resolve_after(
    book: IncidentBook,
) -> None:
    config = _with_incidents(end_grace=0.0, auto_resolve_after=3600.0)
    (incident,) = sync_alerts(book, config, [alert("fp-1")], now=T0 + 60).opened
    assert sync_alerts(book, config, [], now=T0 + 120).quiet  # ended at T0 + 120
    # Quiet, but not for long enough yet: still open.
    assert not sync_alerts(book, config, [], now=T0 + 120 + 3599).resolved
    assert book.get(incident.number).state == "triggered"

    (resolved,) = sync_alerts(book, config, [], now=T0 + 120 + 7200).resolved
    assert resolved.state == "resolved" and resolved.resolved_by == "mlconsole"
    # Resolved when the quiet period ran out, not when a console happened to look.
    assert resolved.resolved_at == T0 + 120 + 3600
    (event,) = [e for e in book.events(incident.number) if e.kind == "incident.resolved"]
    assert event.actor == "mlconsole" and event.at == T0 + 120 + 3600
    assert "quiet for 1h" in event.summary
    assert event.data["auto"] is True and event.data["why"] == "quiet for 1h"
    assert not book.incidents(open_only=True)


def test_an_alert_that_fires_again_within_the_quiet_period_keeps_it_open(
    book: IncidentBook,
) -> None:
    config = _with_incidents(end_grace=0.0, auto_resolve_after=3600.0)
    (incident,) = sync_alerts(book, config, [alert("fp-1")], now=T0 + 60).opened
    sync_alerts(book, config, [], now=T0 + 120)
    again = alert("fp-1", start=1800)
    assert sync_alerts(book, config, [again], now=T0 + 1800).retriggered
    assert not sync_alerts(book, config, [again], now=T0 + 120 + 7200).resolved
    assert book.get(incident.number).state == "triggered"


@pytest.mark.parametrize("off", [0.0, None])
def test_auto_resolve_after_0_or_null_never_resolves(book: IncidentBook, off: Any) -> None:
    config = _with_incidents(end_grace=0.0, auto_resolve_after=off)
    (incident,) = sync_alerts(book, config, [alert("fp-1")], now=T0 + 60).opened
    sync_alerts(book, config, [], now=T0 + 120)
    assert not sync_alerts(book, config, [], now=T0 + 30 * 86400).resolved
    assert book.get(incident.number).state == "triggered"


async def test_the_commands_sync_resolves_quiet_incidents_too(book: IncidentBook) -> None:
    config = _with_incidents(end_grace=0.0, auto_resolve_after=600.0)
    adapters: dict[str, Any] = {"alertmanager": Alertmanager([alert("fp-a")])}
    (incident,) = (await sync_from_source(book, config, adapters)).opened
    adapters["alertmanager"] = Alertmanager([])
    book.clock = lambda: T0 + 20_000
    assert (await sync_from_source(book, config, adapters)).quiet
    book.clock = lambda: T0 + 20_000 + 600
    (resolved,) = (await sync_from_source(book, config, adapters)).resolved
    assert resolved.number == incident.number and resolved.resolved_by == "mlconsole"
