"""The incidents' SQL: the schema, and reading incidents and their events back.

Every change is an event in the same transaction as the change, so the timeline is
the incident's history. A partial unique index keeps two consoles sharing the store
from opening the same group twice."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from console.incidents.model import (
    Incident,
    IncidentAlert,
    IncidentError,
    incident_id,
    parse_incident_id,
    pick_open,
)
from console.incidents.timeline import Event
from console.sqlite_file import open_sqlite, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    alertname TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    sli TEXT,
    state TEXT NOT NULL,
    owner TEXT,
    opened_at REAL NOT NULL,
    opened_by TEXT NOT NULL,
    alert_started_at REAL NOT NULL,
    acked_at REAL,
    acked_by TEXT,
    ack_active INTEGER NOT NULL DEFAULT 0,
    mitigated_at REAL,
    resolved_at REAL,
    resolved_by TEXT,
    firing INTEGER NOT NULL DEFAULT 1,
    updated_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS incidents_open_group
    ON incidents (model, alertname) WHERE state != 'resolved';
CREATE TABLE IF NOT EXISTS incident_alerts (
    number INTEGER NOT NULL REFERENCES incidents (number),
    fingerprint TEXT NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    generator_url TEXT NOT NULL,
    starts_at REAL NOT NULL,
    ended_at REAL,
    missing_since REAL,
    PRIMARY KEY (number, fingerprint)
);
CREATE TABLE IF NOT EXISTS incident_events (
    number INTEGER NOT NULL REFERENCES incidents (number),
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    summary TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (number, seq)
);
"""


class IncidentLedger:
    """Incidents and their events in the store's SQLite file: opening it, reading."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        try:
            self._db = open_sqlite(path, SCHEMA, synchronous="NORMAL")
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(incident_alerts)")}
            if "missing_since" not in columns:  # a store from before alerts had a grace
                self._db.execute("ALTER TABLE incident_alerts ADD COLUMN missing_since REAL")
        except (OSError, sqlite3.Error) as exc:
            raise IncidentError(f"cannot open the incidents in {path}: {exc}") from exc
        self._lock = threading.Lock()
        #: The open incidents last read by :meth:`open_incidents`, and the store's
        #: change mark they were read at.
        self._open: tuple[tuple[int, int], tuple[Incident, ...]] | None = None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                with transaction(self._db) as db:
                    yield db
            except sqlite3.Error as exc:
                raise IncidentError(f"store {self.path}: {exc}") from exc

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise IncidentError(f"store {self.path}: {exc}") from exc

    # -- reading -------------------------------------------------------------

    def get(self, number: int) -> Incident:
        found = self._select("number = ?", (number,))
        if not found:
            raise IncidentError(f"no incident {incident_id(number)} in {self.path}")
        return found[0]

    def find(self, text: str) -> Incident:
        """An incident by id (``INC-7`` or ``7``); IncidentError names what is wrong."""
        return self.get(parse_incident_id(text))

    def incidents(self, *, open_only: bool = False, limit: int | None = None) -> list[Incident]:
        """Newest first."""
        return self._select("state != 'resolved'" if open_only else "1", (), limit)

    def open_incidents(self) -> tuple[Incident, ...]:
        """The open incidents, newest first; the same tuple as the last call when the
        store has not changed since, by this book or any other connection (another
        console, a command, another part of this one).

        The dashboard asks after every sync, and at hundreds of open incidents a read
        costs milliseconds of the interpreter the keys wait on (11 ms at 600); asking
        SQLite whether anything changed costs a tenth of one."""
        mark = self._change_mark()
        cached = self._open  # once: another thread may store its own meanwhile
        if cached is not None and cached[0] == mark:
            return cached[1]
        found = tuple(self.incidents(open_only=True))  # read after the mark: never older
        with self._lock:
            kept = self._open
            # Both counts only grow: a read that began earlier than the one kept (two
            # threads asking at once) does not replace it.
            if kept is None or (kept[0][0] <= mark[0] and kept[0][1] <= mark[1]):
                self._open = (mark, found)
        return found

    def _change_mark(self) -> tuple[int, int]:
        """What tells one state of the store from the next: ``PRAGMA data_version``
        moves when another connection commits a change, ``total_changes`` when this
        one does."""
        with self._lock:
            try:
                (version,) = self._db.execute("PRAGMA data_version").fetchone()
                return int(version), self._db.total_changes
            except sqlite3.Error as exc:
                raise IncidentError(f"store {self.path}: {exc}") from exc

    def open_for(self, model: str, alertname: str | None = None) -> Incident | None:
        """The open incident of a model (and alert name): see :func:`pick_open`."""
        return pick_open(self.open_incidents(), model, alertname)

    def previous_end(self, incident: Incident) -> float | None:
        """When the same alert group's earlier incidents last ended (their alerts'
        ends and their resolutions), up to ``incident``'s firing; None if it has no
        earlier incident. What the SLI did before then belongs to those incidents."""
        rows = self._read(
            "SELECT MAX(i.resolved_at), MAX(a.ended_at) FROM incidents i "
            "LEFT JOIN incident_alerts a ON a.number = i.number "
            "WHERE i.model = ? AND i.alertname = ? AND i.number < ?",
            (incident.model, incident.alertname, incident.number),
        )
        ends = [float(t) for t in (rows[0] if rows else ()) if t is not None]
        return min(max(ends), incident.alert_started_at) if ends else None

    def _select(self, where: str, args: Sequence[Any], limit: int | None = None) -> list[Incident]:
        """The incidents ``where`` picks, newest first, with their alerts: two queries
        however many there are (the dashboard reads the open ones at every sync)."""
        picked = f"SELECT * FROM incidents WHERE {where} ORDER BY number DESC"
        if limit is not None:
            picked += f" LIMIT {int(limit)}"
        rows = self._read(picked, args)
        alerts: dict[int, list[IncidentAlert]] = {}
        for r in self._read(
            f"SELECT * FROM incident_alerts WHERE number IN (SELECT number FROM ({picked})) "
            "ORDER BY starts_at, fingerprint",
            args,
        ):
            alerts.setdefault(int(r[0]), []).append(
                IncidentAlert(r[1], json.loads(r[2]), json.loads(r[3]), r[4], r[5], r[6])
            )
        return [incident_from_row(row, tuple(alerts.get(int(row[0]), ()))) for row in rows]

    def events(self, number: int) -> list[Event]:
        """The incident's own events (not runbook evidence or actions), in order."""
        rows = self._read(
            "SELECT seq, at, kind, actor, summary, data FROM incident_events "
            "WHERE number = ? ORDER BY seq",
            (number,),
        )
        # One parse for every event's data: a long timeline reads ~2x faster.
        datas = json.loads("[" + ",".join(row[5] for row in rows) + "]")
        return [
            Event(at, kind, actor, summary, data, f"event:{seq}")
            for (seq, at, kind, actor, summary, _), data in zip(rows, datas, strict=True)
        ]

    # -- writing -------------------------------------------------------------

    @staticmethod
    def _event(
        db: sqlite3.Connection,
        number: int,
        kind: str,
        actor: str,
        summary: str,
        data: Mapping[str, Any] | None = None,
        at: float | None = None,
    ) -> None:
        (seq,) = db.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM incident_events WHERE number = ?", (number,)
        ).fetchone()
        db.execute(
            "INSERT INTO incident_events VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                number,
                seq,
                time.time() if at is None else at,
                kind,
                actor,
                summary,
                json.dumps(dict(data or {}), sort_keys=True, default=str),
            ),
        )

    def _state_row(self, db: sqlite3.Connection, number: int) -> tuple[Any, ...]:
        row = db.execute(
            "SELECT state, acked_at, ack_active, firing, owner FROM incidents WHERE number = ?",
            (number,),
        ).fetchone()
        if row is None:
            raise IncidentError(f"no incident {incident_id(number)} in {self.path}")
        return tuple(row)


def incident_from_row(row: tuple[Any, ...], alerts: tuple[IncidentAlert, ...]) -> Incident:
    return Incident(
        number=row[0],
        model=row[1],
        alertname=row[2],
        severity=row[3],
        title=row[4],
        sli=row[5],
        state=row[6],
        owner=row[7],
        opened_at=row[8],
        opened_by=row[9],
        alert_started_at=row[10],
        acked_at=row[11],
        acked_by=row[12],
        ack_active=bool(row[13]),
        mitigated_at=row[14],
        resolved_at=row[15],
        resolved_by=row[16],
        firing=bool(row[17]),
        updated_at=row[18],
        alerts=alerts,
    )
