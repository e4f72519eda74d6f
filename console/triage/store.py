"""The console's store: SQLite (stdlib), shared by every process that opens it.

Runbook walks and their evidence live here, so a restart resumes where the
responder was, and a second responder pointed at the same file sees the same
walk. WAL lets readers and one writer work at once; every write is its own
committed transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.sqlite_file import open_sqlite, transaction
from console.times import iso

if TYPE_CHECKING:
    pass

SCHEMA = """
CREATE TABLE IF NOT EXISTS runbook_runs (
    id TEXT PRIMARY KEY,
    runbook_id TEXT NOT NULL,
    runbook_version INTEGER NOT NULL,
    alert_fingerprint TEXT,
    labels TEXT NOT NULL,
    path TEXT NOT NULL,
    status TEXT NOT NULL,
    cause TEXT,
    summary TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    incident INTEGER,
    firing_at REAL
);
CREATE INDEX IF NOT EXISTS runbook_runs_alert ON runbook_runs (alert_fingerprint, runbook_id);
CREATE TABLE IF NOT EXISTS runbook_evidence (
    run_id TEXT NOT NULL REFERENCES runbook_runs (id),
    seq INTEGER NOT NULL,
    step_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL,
    decision TEXT NOT NULL,
    actor TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""
#: A walk started this long before its alert fired still belongs to that firing
#: (pre-triage of a pending alert, clocks a little apart).
RUN_GRACE = 300.0
#: Columns added since the first store: (name, type). A store from before them is
#: brought up to date when opened; its walks read with both unset.
ADDED_COLUMNS = (("incident", "INTEGER"), ("firing_at", "REAL"))
RUN_COLUMNS = (
    "id, runbook_id, runbook_version, alert_fingerprint, labels, path, status, cause, "
    "summary, created_at, updated_at, incident, firing_at"
)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one step took in, gave out, and decided; who decided, and when."""

    step_id: str
    kind: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    decision: str
    actor: str
    at: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step_id,
            "kind": self.kind,
            "inputs": dict(self.inputs),
            "outputs": dict(self.outputs),
            "decision": self.decision,
            "actor": self.actor,
            "at": iso(self.at),
        }


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A runbook walk as stored: where it is (``path``), and how it ended."""

    id: str
    runbook_id: str
    runbook_version: int
    alert_fingerprint: str | None
    labels: Mapping[str, str]
    path: tuple[str, ...]
    """Steps visited, first to current; ``back`` pops the last one."""
    status: str
    """``active``, ``concluded`` or ``error``."""
    cause: str | None
    summary: str | None
    created_at: float
    updated_at: float
    incident: int | None = None
    """The incident (its number) the walk was opened under, if it was known then."""
    firing_at: float | None = None
    """The ``startsAt`` of the alert firing the walk triages; None for a walk started
    from labels alone, or kept by a store from before walks had one."""

    def belongs_to(self, firing_at: float) -> bool:
        """Whether this walk triages the firing that started at ``firing_at``."""
        return self.firing_at is not None and abs(self.firing_at - firing_at) < 1e-3


class StoreError(Exception):
    """The store cannot be opened or written; the message names the file."""


class Store:
    """Runbook runs and evidence in one SQLite file. One connection, shared by the
    threads of one front end (its session's): each read and each transaction holds
    the store's lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            self._db = open_sqlite(path, SCHEMA, synchronous="NORMAL")
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(runbook_runs)")}
            for name, kind in ADDED_COLUMNS:
                if name not in columns:
                    self._db.execute(f"ALTER TABLE runbook_runs ADD COLUMN {name} {kind}")
            self._db.execute(
                "CREATE INDEX IF NOT EXISTS runbook_runs_incident ON runbook_runs (incident)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._lock, transaction(self._db) as db:
                yield db
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.path}: {exc}") from exc

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    # -- runs ----------------------------------------------------------------

    def create_run(
        self,
        runbook_id: str,
        runbook_version: int,
        labels: Mapping[str, str],
        start: str,
        alert_fingerprint: str | None = None,
        *,
        incident: int | None = None,
        firing_at: float | None = None,
    ) -> RunRecord:
        """A new walk; ``incident`` and ``firing_at`` say which firing it triages."""
        now = time.time()
        run_id = uuid.uuid4().hex[:12]
        with self._tx() as db:
            db.execute(
                f"INSERT INTO runbook_runs ({RUN_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, 'active', NULL, NULL, ?, ?, ?, ?)",
                (
                    run_id,
                    runbook_id,
                    runbook_version,
                    alert_fingerprint,
                    json.dumps(dict(labels), sort_keys=True),
                    json.dumps([start]),
                    now,
                    now,
                    incident,
                    firing_at,
                ),
            )
        return self.run(run_id)

    def link_run(self, run_id: str, incident: int) -> None:
        """File a walk started before its incident was known under that incident."""
        with self._tx() as db:
            db.execute(
                "UPDATE runbook_runs SET incident = ? WHERE id = ? AND incident IS NULL",
                (incident, run_id),
            )

    def update_run(
        self,
        run_id: str,
        *,
        path: tuple[str, ...],
        status: str,
        cause: str | None = None,
        summary: str | None = None,
        evidence: Evidence | None = None,
    ) -> None:
        """Move a run and, in the same transaction, append the evidence that moved it."""
        with self._tx() as db:
            if evidence is not None:
                (seq,) = db.execute(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM runbook_evidence WHERE run_id = ?",
                    (run_id,),
                ).fetchone()
                db.execute(
                    "INSERT INTO runbook_evidence VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        seq,
                        evidence.step_id,
                        evidence.kind,
                        json.dumps(dict(evidence.inputs), sort_keys=True, default=str),
                        json.dumps(dict(evidence.outputs), sort_keys=True, default=str),
                        evidence.decision,
                        evidence.actor,
                        evidence.at,
                    ),
                )
            db.execute(
                "UPDATE runbook_runs SET path = ?, status = ?, cause = ?, summary = ?, "
                "updated_at = ? WHERE id = ?",
                (json.dumps(list(path)), status, cause, summary, time.time(), run_id),
            )

    def run(self, run_id: str) -> RunRecord:
        rows = self._rows(f"SELECT {RUN_COLUMNS} FROM runbook_runs WHERE id = ?", (run_id,))
        if not rows:
            raise KeyError(run_id)
        return _run(rows[0])

    def runs(
        self, *, alert_fingerprint: str | None = None, runbook_id: str | None = None
    ) -> list[RunRecord]:
        """Walks, oldest first: all, or those of one alert (and runbook)."""
        where, args = ["1"], []
        if alert_fingerprint is not None:
            where.append("alert_fingerprint = ?")
            args.append(alert_fingerprint)
        if runbook_id is not None:
            where.append("runbook_id = ?")
            args.append(runbook_id)
        rows = self._rows(
            f"SELECT {RUN_COLUMNS} FROM runbook_runs WHERE {' AND '.join(where)} "
            "ORDER BY created_at, rowid",
            args,
        )
        return [_run(r) for r in rows]

    def incident_runs(self, incident: int, fingerprints: Iterable[str]) -> list[RunRecord]:
        """Walks filed under ``incident``, and walks on its alerts filed under none
        (started before the incident was known, or kept by an older store), oldest
        first. Which of the unfiled ones belong to it is the caller's call."""
        prints = sorted(set(fingerprints))
        marks = ", ".join("?" * len(prints))
        rows = self._rows(
            f"SELECT {RUN_COLUMNS} FROM runbook_runs WHERE incident = ? "
            f"OR (incident IS NULL AND alert_fingerprint IN ({marks})) "
            "ORDER BY created_at, rowid",
            (incident, *prints),
        )
        return [_run(r) for r in rows]

    def evidence(self, run_id: str) -> list[Evidence]:
        rows = self._rows(
            "SELECT step_id, kind, inputs, outputs, decision, actor, at FROM runbook_evidence "
            "WHERE run_id = ? ORDER BY seq",
            (run_id,),
        )
        return [
            Evidence(r[0], r[1], json.loads(r[2]), json.loads(r[3]), r[4], r[5], r[6]) for r in rows
        ]


def _run(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        id=row[0],
        runbook_id=row[1],
        runbook_version=row[2],
        alert_fingerprint=row[3],
        labels=json.loads(row[4]),
        path=tuple(json.loads(row[5])),
        status=row[6],
        cause=row[7],
        summary=row[8],
        created_at=row[9],
        updated_at=row[10],
        incident=None if row[11] is None else int(row[11]),
        firing_at=row[12],
    )
