"""Exporting an incident of 100,000 events against dumping the same rows raw.

An incident with N events (the mixture ``bench/timeline.py`` uses) is written to
a store, with N/100 actions in an audit log filed under it. Then, in one process,
alternating:

* **export json** / **export md**: what ``mlconsole export`` does: read the
  incident and its timeline (store events, runbook evidence, audit entries),
  compute the metrics, build the document and render it;
* **raw**: the least a script could do with the same data: ``SELECT`` the
  incident's event rows and the audit rows, and ``json.dumps`` them as they are.

It prints the medians and the ratios of each export to the raw dump.

    python bench/export.py [--events 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.records import AlertRecord
from bench.timeline import synthetic
from console.audit.log import AuditLog
from console.export.derive import build_document
from console.export.document import to_json
from console.export.markdown import to_markdown
from console.incidents.assembly import timeline
from console.incidents.book import IncidentBook
from console.triage.store import Store


def seed(directory: Path, count: int) -> int:
    """A store holding one incident with ``count`` events, and an audit log whose
    actions (one per hundred events) are filed under it. Returns its number."""
    events = synthetic(count)
    start = events[0].at
    book = IncidentBook(directory / "store.db")
    alert = AlertRecord(
        fingerprint="f00d",
        labels={"alertname": "ModelErrorBudgetBurn", "model": "fraud-detector", "sli": "e"},
        annotations={"summary": "fraud-detector is burning its error budget"},
        starts_at=datetime.fromtimestamp(start, UTC),
        ends_at=None,
        updated_at=None,
        state="active",
    )
    incident = book.open([alert], model_label="model", actor="bench", now=start)
    book.close()
    db = sqlite3.connect(directory / "store.db")
    with db:
        db.executemany(
            "INSERT INTO incident_events VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (incident.number, 100 + n, e.at, e.kind, e.actor, e.summary, json.dumps(e.data))
                for n, e in enumerate(events)
            ),
        )
    db.close()
    audit = AuditLog(directory / "audit.db")
    for n in range(count // 100):
        audit.append(
            "intent" if n % 2 == 0 else "result",
            actor="bench@oncall",
            action="rollback",
            params={"model": "fraud-detector", "to": "3"},
            incident=incident.id,
            plan={"summary": "fraud-detector@champion: v4 → v3", "before": {"version": "4"}},
            result={"applied": True} if n % 2 else None,
            at=start + n,
        )
    audit.close()
    return incident.number


def export(directory: Path, number: int, render: Callable[..., str]) -> int:
    book = IncidentBook(directory / "store.db")
    store = Store(directory / "store.db")
    audit = AuditLog(directory / "audit.db")
    try:
        incident = book.get(number)
        events = timeline(incident, book, store=store, audit=audit)
        doc = build_document(incident, events, prometheus_url="http://127.0.0.1:9090")
        return len(render(doc))
    finally:
        book.close()
        store.close()
        audit.close()


def raw(directory: Path, number: int) -> int:
    store = sqlite3.connect(directory / "store.db")
    audit = sqlite3.connect(directory / "audit.db")
    try:
        rows = store.execute(
            "SELECT * FROM incident_events WHERE number = ? ORDER BY seq", (number,)
        ).fetchall()
        entries = audit.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        return len(json.dumps({"events": rows, "audit": entries}))
    finally:
        store.close()
        audit.close()


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    size = fn()
    return time.perf_counter() - start, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        number = seed(directory, args.events)
        cases: dict[str, Callable[[], int]] = {
            "raw rows → json.dumps": lambda: raw(directory, number),
            "export json": lambda: export(directory, number, to_json),
            "export md": lambda: export(directory, number, to_markdown),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        sizes: dict[str, int] = {}
        for _ in range(args.runs):
            for name, fn in cases.items():
                seconds, sizes[name] = timed(fn)
                times[name].append(seconds)
    base = statistics.median(times["raw rows → json.dumps"])
    print(
        f"incident of {args.events:,} events (+{args.events // 100:,} audit entries), "
        f"median of {args.runs} runs"
    )
    print(f"{'':<24}{'seconds':>10}{'MB':>8}{'ratio':>8}")
    for name in cases:
        median = statistics.median(times[name])
        print(f"{name:<24}{median:>10.3f}{sizes[name] / 1e6:>8.1f}{median / base:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
