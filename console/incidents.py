"""Incidents: one per firing alert group (model + alert name), kept in the store.

An incident moves ``triggered → acknowledged → mitigated → resolved``. Every
change is an event in the same transaction as the change, so the timeline is
the incident's history. Two consoles sharing the store see the same incidents;
a partial unique index keeps them from opening the same group twice.

An acknowledgement is not a silence: it tells the other responders who is on
it, pages keep arriving, and it ends when every alert of the group stops firing.
"""

from __future__ import annotations

import calendar
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters.base import AlertRecord
from console.audit import TIME_FORMAT as AUDIT_TIME_FORMAT
from console.audit import AuditEntry, AuditLog
from console.config import format_duration
from console.sqlite_file import open_sqlite, transaction
from console.store import RUN_GRACE, Evidence, RunRecord, Store
from console.timeline import Event, iso, ordered

STATES = ("triggered", "acknowledged", "mitigated", "resolved")
#: Severity labels, most urgent first; anything else ranks after them.
SEVERITY_ORDER = ("critical", "page", "high", "error", "warning", "ticket", "info")
ID_PREFIX = "INC-"

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


class IncidentError(Exception):
    """The incident does not exist, cannot move that way, or the store failed."""


def incident_id(number: int) -> str:
    return f"{ID_PREFIX}{number}"


def parse_incident_id(text: str) -> int:
    """``INC-7``, ``inc-7`` or ``7`` → 7."""
    raw = text.strip()
    if raw.upper().startswith(ID_PREFIX):
        raw = raw[len(ID_PREFIX) :]
    # SQLite keeps numbers up to 2**63 - 1: a longer one names no incident.
    if not (raw.isascii() and raw.isdigit()) or int(raw) >= 2**63:
        raise IncidentError(f"{text!r} is not an incident id (like {ID_PREFIX}7)")
    return int(raw)


def severity_rank(severity: str) -> int:
    try:
        return SEVERITY_ORDER.index(severity.lower())
    except ValueError:
        return len(SEVERITY_ORDER)


def pick_open(
    incidents: Iterable[Incident], model: str, alertname: str | None = None
) -> Incident | None:
    """Of open ``incidents``, the one of ``model`` (and ``alertname``): the most
    severe, then the newest. The dashboard asks it of the incidents it last read."""
    candidates = [
        i
        for i in incidents
        if i.is_open and i.model == model and (alertname is None or i.alertname == alertname)
    ]
    candidates.sort(key=lambda i: (severity_rank(i.severity), -i.number))
    return candidates[0] if candidates else None


@dataclass(frozen=True, slots=True)
class IncidentAlert:
    """One alert (by fingerprint) of an incident's group."""

    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    generator_url: str
    starts_at: float
    ended_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "generator_url": self.generator_url,
            "starts_at": iso(self.starts_at),
            "ended_at": iso(self.ended_at),
        }


@dataclass(frozen=True, slots=True)
class Incident:
    """One incident as stored."""

    number: int
    model: str
    alertname: str
    severity: str
    title: str
    """The first alert's summary annotation (or its name)."""
    sli: str | None
    """The SLI the alert is about (its ``sli`` label), if known."""
    state: str
    """One of :data:`STATES`."""
    owner: str | None
    """Who took it: the first responder to acknowledge it."""
    opened_at: float
    opened_by: str
    alert_started_at: float
    """The earliest ``startsAt`` of the group's alerts."""
    acked_at: float | None
    acked_by: str | None
    ack_active: bool
    """Acknowledged, and no alert has stopped firing since."""
    mitigated_at: float | None
    resolved_at: float | None
    resolved_by: str | None
    firing: bool
    """Whether any alert of the group fires now (as last seen)."""
    updated_at: float
    alerts: tuple[IncidentAlert, ...] = ()

    @property
    def id(self) -> str:
        return incident_id(self.number)

    @property
    def is_open(self) -> bool:
        return self.state != "resolved"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "alertname": self.alertname,
            "severity": self.severity,
            "title": self.title,
            "sli": self.sli,
            "state": self.state,
            "owner": self.owner,
            "opened_at": iso(self.opened_at),
            "opened_by": self.opened_by,
            "alert_started_at": iso(self.alert_started_at),
            "acked_at": iso(self.acked_at),
            "acked_by": self.acked_by,
            "ack_active": self.ack_active,
            "mitigated_at": iso(self.mitigated_at),
            "resolved_at": iso(self.resolved_at),
            "resolved_by": self.resolved_by,
            "firing": self.firing,
            "alerts": [a.as_dict() for a in self.alerts],
        }


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one look at the alerts changed."""

    opened: tuple[Incident, ...] = ()
    retriggered: tuple[Incident, ...] = ()
    quiet: tuple[Incident, ...] = ()
    """Incidents whose every alert stopped firing just now."""
    resolved: tuple[Incident, ...] = ()
    """Incidents resolved by themselves: quiet for ``incidents.auto_resolve_after``."""

    @property
    def changed(self) -> bool:
        return bool(self.opened or self.retriggered or self.quiet or self.resolved)


def group_key(alert: AlertRecord, model_label: str) -> tuple[str, str]:
    """The alert group an incident is opened for: (model, alert name)."""
    return alert.labels.get(model_label, ""), alert.name


def _title(alert: AlertRecord) -> str:
    return alert.summary or alert.name


def _ts(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


class IncidentBook:
    """Incidents and their events in the store's SQLite file."""

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
        return [_incident(row, tuple(alerts.get(int(row[0]), ()))) for row in rows]

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

    def open(
        self,
        alerts: Sequence[AlertRecord],
        *,
        model_label: str,
        actor: str,
        now: float | None = None,
    ) -> Incident:
        """Open (or return the open) incident for one alert group."""
        if not alerts:
            raise IncidentError("an incident is opened for at least one alert")
        now = self.clock() if now is None else now
        model, name = group_key(alerts[0], model_label)
        with self._tx() as db:
            number = self._open_in(db, model, name, alerts, actor, now)
        return self.get(number)

    def _open_in(
        self,
        db: sqlite3.Connection,
        model: str,
        name: str,
        alerts: Sequence[AlertRecord],
        actor: str,
        now: float,
    ) -> int:
        row = db.execute(
            "SELECT number, firing, state FROM incidents WHERE model = ? AND alertname = ? "
            "AND state != 'resolved'",
            (model, name),
        ).fetchone()
        if row is not None:
            number, firing, state = int(row[0]), bool(row[1]), str(row[2])
            if self._add_alerts(db, number, alerts) and not firing:
                self._retrigger(db, number, state, now)
            return number
        severity = min((a.severity for a in alerts), key=severity_rank, default="")
        started = min(a.starts_at.timestamp() for a in alerts)
        sli = next((a.labels["sli"] for a in alerts if a.labels.get("sli")), None)
        cursor = db.execute(
            "INSERT INTO incidents (model, alertname, severity, title, sli, state, opened_at, "
            "opened_by, alert_started_at, updated_at) VALUES (?, ?, ?, ?, ?, 'triggered', ?, ?, "
            "?, ?)",
            (model, name, severity, _title(alerts[0]), sli, now, actor, started, now),
        )
        number = int(cursor.lastrowid or 0)
        self._event(
            db,
            number,
            "incident.opened",
            actor,
            f"{incident_id(number)} opened for {name} on {model or '(no model)'}"
            f" (severity {severity or 'unset'})",
            {"model": model, "alertname": name, "severity": severity, "sli": sli},
            now,
        )
        self._add_alerts(db, number, alerts)
        return number

    def _add_alerts(
        self, db: sqlite3.Connection, number: int, alerts: Sequence[AlertRecord]
    ) -> list[str]:
        """Record the alerts the incident has not seen, and those firing anew (a later
        ``startsAt`` than the firing that ended). The same firing reported again after
        it ended is an old read (another console's, or a replica's), not news."""
        added = []
        for alert in alerts:
            known = db.execute(
                "SELECT starts_at, ended_at FROM incident_alerts "
                "WHERE number = ? AND fingerprint = ?",
                (number, alert.fingerprint),
            ).fetchone()
            starts = alert.starts_at.timestamp()
            if known is not None and (known[1] is None or starts <= known[0]):
                continue
            db.execute(
                "INSERT OR REPLACE INTO incident_alerts VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
                (
                    number,
                    alert.fingerprint,
                    json.dumps(dict(alert.labels), sort_keys=True),
                    json.dumps(dict(alert.annotations), sort_keys=True),
                    alert.generator_url,
                    starts,
                ),
            )
            self._event(
                db,
                number,
                "alert.firing",
                "alertmanager",
                f"{alert.name} firing: {_title(alert)}",
                {
                    "fingerprint": alert.fingerprint,
                    "labels": dict(alert.labels),
                    "annotations": dict(alert.annotations),
                    "generator_url": alert.generator_url,
                    "starts_at": iso(starts),
                },
                starts,
            )
            added.append(alert.fingerprint)
        return added

    def sync(
        self,
        alerts: Sequence[AlertRecord],
        *,
        model_label: str,
        auto_open: bool = True,
        severities: Sequence[str] = (),
        actor: str = "mlconsole",
        now: float | None = None,
        end_grace: float = 0.0,
        auto_resolve_after: float | None = None,
    ) -> SyncResult:
        """Bring the incidents in line with the alerts firing now.

        ``alerts`` must be everything the alert sources report (call this only after
        every source answered: an unreachable Alertmanager is not "every alert
        resolved"). Active alert groups with no open incident open one (when
        ``auto_open``, and their severity is among ``severities`` if given); an open
        incident's new alerts are recorded at their ``startsAt``. Silenced alerts
        neither open nor start anything, but count as still firing. An alert no
        longer reported ends once it has been missing for ``end_grace`` seconds, at
        the moment it was first missed; when the last one ends the acknowledgement
        ends with it. Alerts of resolved incidents are followed to their end too.

        With ``auto_resolve_after`` (seconds; None or 0: never), an open incident
        whose every alert has been quiet that long is resolved by ``mlconsole``, at
        the moment the quiet period ran out, with an event that says so.
        """
        now = self.clock() if now is None else now
        groups: dict[tuple[str, str], list[AlertRecord]] = {}
        for alert in alerts:
            groups.setdefault(group_key(alert, model_label), []).append(alert)
        wanted = {s.lower() for s in severities}
        opened: list[int] = []
        retriggered: list[int] = []
        quiet: list[int] = []
        with self._tx() as db:
            open_rows = db.execute(
                "SELECT number, model, alertname, firing, state FROM incidents "
                "WHERE state != 'resolved'"
            ).fetchall()
            known = {(m, n): (num, bool(f), s) for num, m, n, f, s in open_rows}
            for key, members in groups.items():
                loud = [a for a in members if a.state != "suppressed"]
                if key in known:
                    number, firing, state = known[key]
                    if self._add_alerts(db, number, loud) and not firing:
                        self._retrigger(db, number, state, now)
                        retriggered.append(number)
                    continue
                # An alert that fired on through a resolved incident opens no new one.
                active = [a for a in loud if a.state == "active" and not self._closed_before(db, a)]
                if not auto_open or not active:
                    continue
                if wanted and not any(a.severity.lower() in wanted for a in active):
                    continue
                opened.append(self._open_in(db, key[0], key[1], active, actor, now))
            reported = {a.fingerprint for a in alerts}
            for number, firing, _state in known.values():
                if self._end_alerts(db, number, reported, now, end_grace) and firing:
                    quiet.append(number)
            for (number,) in db.execute(
                "SELECT DISTINCT number FROM incident_alerts JOIN incidents USING (number) "
                "WHERE state = 'resolved' AND ended_at IS NULL"
            ).fetchall():
                self._end_alerts(db, number, reported, now, end_grace)
            resolved = self._resolve_quiet(db, now, auto_resolve_after or 0.0)
        return SyncResult(
            tuple(self.get(n) for n in opened),
            tuple(self.get(n) for n in retriggered),
            tuple(self.get(n) for n in quiet),
            tuple(self.get(n) for n in resolved),
        )

    def _resolve_quiet(self, db: sqlite3.Connection, now: float, after: float) -> list[int]:
        """Resolve open incidents whose alerts all ended at least ``after`` seconds
        ago (``after`` 0: none); their numbers."""
        if after <= 0:
            return []
        rows = db.execute(
            "SELECT number, MAX(ended_at), SUM(ended_at IS NULL) FROM incidents "
            "JOIN incident_alerts USING (number) WHERE state != 'resolved' AND firing = 0 "
            "GROUP BY number"
        ).fetchall()
        done: list[int] = []
        quiet = format_duration(after)
        for number, last_end, still_firing in rows:
            if still_firing or last_end is None or now - float(last_end) < after:
                continue
            self._resolve_in(
                db,
                number,
                "mlconsole",
                f"resolved by mlconsole: quiet for {quiet} (incidents.auto_resolve_after)",
                {
                    "auto": True,
                    "why": f"quiet for {quiet}",
                    "quiet_seconds": after,
                    "quiet_since": iso(last_end),
                },
                min(now, float(last_end) + after),
            )
            done.append(number)
        return done

    @staticmethod
    def _closed_before(db: sqlite3.Connection, alert: AlertRecord) -> bool:
        """Whether this very firing (fingerprint and start) belonged to a resolved incident."""
        return bool(
            db.execute(
                "SELECT 1 FROM incident_alerts JOIN incidents USING (number) "
                "WHERE state = 'resolved' AND fingerprint = ? AND starts_at >= ? LIMIT 1",
                (alert.fingerprint, alert.starts_at.timestamp()),
            ).fetchone()
        )

    def _retrigger(self, db: sqlite3.Connection, number: int, state: str, now: float) -> None:
        db.execute(
            "UPDATE incidents SET firing = 1, state = 'triggered', updated_at = ? WHERE number = ?",
            (now, number),
        )
        self._event(
            db,
            number,
            "incident.retriggered",
            "mlconsole",
            f"fired again while {state}: back to triggered, acknowledge it again",
            {"was": state},
            now,
        )

    def _end_alerts(
        self, db: sqlite3.Connection, number: int, reported: set[str], now: float, grace: float
    ) -> bool:
        """End the incident's alerts missing for ``grace`` seconds. True when none fires."""
        live = db.execute(
            "SELECT fingerprint, labels, missing_since FROM incident_alerts "
            "WHERE number = ? AND ended_at IS NULL",
            (number,),
        ).fetchall()
        ended: list[float] = []
        for fingerprint, labels, missing_since in live:
            if fingerprint in reported:
                if missing_since is not None:  # back within the grace: it never ended
                    db.execute(
                        "UPDATE incident_alerts SET missing_since = NULL "
                        "WHERE number = ? AND fingerprint = ?",
                        (number, fingerprint),
                    )
                continue
            since = now if missing_since is None else float(missing_since)
            if now - since < grace:
                if missing_since is None:
                    db.execute(
                        "UPDATE incident_alerts SET missing_since = ? "
                        "WHERE number = ? AND fingerprint = ?",
                        (now, number, fingerprint),
                    )
                continue
            db.execute(
                "UPDATE incident_alerts SET ended_at = ?, missing_since = NULL "
                "WHERE number = ? AND fingerprint = ?",
                (since, number, fingerprint),
            )
            self._event(
                db,
                number,
                "alert.resolved",
                "alertmanager",
                f"{json.loads(labels).get('alertname', '?')} stopped firing",
                {"fingerprint": fingerprint, "observed": True, "noticed_at": iso(now)},
                since,
            )
            ended.append(since)
        if len(ended) < len(live) or not live:
            return False
        _state, _acked, ack_active, firing, _owner = self._state_row(db, number)
        db.execute(
            "UPDATE incidents SET firing = 0, ack_active = 0, updated_at = ? WHERE number = ?",
            (now, number),
        )
        if ack_active:
            self._event(
                db,
                number,
                "incident.ack_expired",
                "mlconsole",
                "acknowledgement ended: every alert stopped firing",
                {},
                max(ended),
            )
        return bool(firing)

    def acknowledge(self, number: int, *, actor: str, now: float | None = None) -> Incident:
        """Acknowledge: the responder is on it. Takes ownership if nobody has it."""
        now = self.clock() if now is None else now
        with self._tx() as db:
            state, _acked_at, ack_active, firing, owner = self._state_row(db, number)
            if state == "resolved":
                raise IncidentError(f"{incident_id(number)} is resolved")
            if ack_active:
                raise IncidentError(f"{incident_id(number)} is already acknowledged")
            if not firing:
                raise IncidentError(
                    f"{incident_id(number)} has no alert firing: nothing to acknowledge"
                )
            db.execute(
                "UPDATE incidents SET acked_at = COALESCE(acked_at, ?), acked_by = ?, "
                "ack_active = 1, owner = COALESCE(owner, ?), updated_at = ?, "
                "state = CASE WHEN state = 'triggered' THEN 'acknowledged' ELSE state END "
                "WHERE number = ?",
                (now, actor, actor, now, number),
            )
            self._event(
                db,
                number,
                "incident.acknowledged",
                actor,
                f"acknowledged by {actor}"
                + ("" if owner in (None, actor) else f" ({owner} owns it)"),
                {},
                now,
            )
        return self.get(number)

    def note(self, number: int, text: str, *, actor: str, now: float | None = None) -> Event:
        text = text.strip()
        if not text:
            raise IncidentError("a note needs some text")
        now = self.clock() if now is None else now
        with self._tx() as db:
            self._state_row(db, number)
            # The summary is the whole note: shown on one line, its newlines are made
            # visible, and a later line is never left out of `show` or the export.
            self._event(db, number, "note", actor, text, {"text": text}, now)
            db.execute("UPDATE incidents SET updated_at = ? WHERE number = ?", (now, number))
        return self.events(number)[-1]

    def mitigated(
        self,
        number: int,
        *,
        actor: str,
        action: str,
        summary: str,
        audit_seq: int | None,
        now: float | None = None,
    ) -> bool:
        """A mitigation was applied under the incident. True the first time only."""
        now = self.clock() if now is None else now
        with self._tx() as db:
            state, *_ = self._state_row(db, number)
            if state not in ("triggered", "acknowledged"):
                return False
            db.execute(
                "UPDATE incidents SET state = 'mitigated', "
                "mitigated_at = COALESCE(mitigated_at, ?), updated_at = ? WHERE number = ?",
                (now, now, number),
            )
            self._event(
                db,
                number,
                "incident.mitigated",
                actor,
                f"mitigated: {summary}",
                {"action": action, "audit_seq": audit_seq},
                now,
            )
        return True

    def resolve(
        self, number: int, *, actor: str, comment: str = "", now: float | None = None
    ) -> Incident:
        now = self.clock() if now is None else now
        with self._tx() as db:
            state, *_ = self._state_row(db, number)
            if state == "resolved":
                raise IncidentError(f"{incident_id(number)} is already resolved")
            self._resolve_in(
                db,
                number,
                actor,
                f"resolved by {actor}" + (f": {comment}" if comment else ""),
                {"comment": comment} if comment else {},
                now,
            )
        return self.get(number)

    def _resolve_in(
        self,
        db: sqlite3.Connection,
        number: int,
        actor: str,
        summary: str,
        data: Mapping[str, Any],
        at: float,
    ) -> None:
        db.execute(
            "UPDATE incidents SET state = 'resolved', resolved_at = ?, resolved_by = ?, "
            "ack_active = 0, updated_at = ? WHERE number = ?",
            (at, actor, at, number),
        )
        self._event(db, number, "incident.resolved", actor, summary, data, at)

    def record(
        self,
        number: int,
        kind: str,
        summary: str,
        data: Mapping[str, Any],
        *,
        actor: str = "mlconsole",
        at: float | None = None,
        once: bool = False,
    ) -> bool:
        """Keep an event such as an SLI snapshot. ``once``: not if one of ``kind`` exists."""
        with self._tx() as db:
            self._state_row(db, number)
            if (
                once
                and db.execute(
                    "SELECT 1 FROM incident_events WHERE number = ? AND kind = ? LIMIT 1",
                    (number, kind),
                ).fetchone()
            ):
                return False
            self._event(db, number, kind, actor, summary, data, self.clock() if at is None else at)
        return True


def _incident(row: tuple[Any, ...], alerts: tuple[IncidentAlert, ...]) -> Incident:
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


# -- the whole timeline ---------------------------------------------------------


def timeline(
    incident: Incident,
    book: IncidentBook,
    *,
    store: Store | None = None,
    audit: AuditLog | None = None,
) -> list[Event]:
    """The incident's events, its alerts' runbook evidence and its actions, in order."""
    events = book.events(incident.number)
    if store is not None:
        events.extend(runbook_events(incident, store))
    if audit is not None:
        events.extend(audit_events(audit.entries(incident=incident.id)))
    return ordered(events)


def runbook_events(incident: Incident, store: Store) -> list[Event]:
    """The evidence of the incident's own walks: those filed under it, and those on its
    alerts filed under none that triage one of its firings. A walk of an earlier
    firing of the same alert (an earlier incident's) is never one of them."""
    out: list[Event] = []
    for run in store.incident_runs(incident.number, (a.fingerprint for a in incident.alerts)):
        if run.incident is not None and run.incident != incident.number:
            continue
        evidence = store.evidence(run.id)
        if run.incident is None and not _triages(incident, run, evidence):
            continue
        out.extend(_run_events(run, evidence))
    return out


def _triages(incident: Incident, run: RunRecord, evidence: Sequence[Evidence]) -> bool:
    """Whether a walk filed under no incident triages one of ``incident``'s firings."""
    start, end = incident.alert_started_at, incident.resolved_at
    if run.firing_at is not None:
        return run.firing_at >= start - 1e-3 and (end is None or run.firing_at <= end)
    # A walk from a store that kept no firing: judged by when it ran.
    if run.created_at < start - RUN_GRACE or (end is not None and run.created_at > end):
        return False
    ended_before = run.status == "concluded" and all(e.at < start for e in evidence)
    return not ended_before


def _run_events(run: RunRecord, items: Sequence[Evidence]) -> list[Event]:
    out = []
    for seq, evidence in enumerate(items, start=1):
        base = {
            "run": run.id,
            "runbook": run.runbook_id,
            "runbook_version": run.runbook_version,
            "step": evidence.step_id,
            "step_kind": evidence.kind,
            "inputs": dict(evidence.inputs),
            "outputs": dict(evidence.outputs),
            "decision": evidence.decision,
        }
        ref = f"runbook:{run.id}/{seq}"
        if evidence.kind == "conclude":
            cause = str(evidence.outputs.get("cause", ""))
            summary = str(evidence.outputs.get("summary", ""))
            out.append(
                Event(
                    evidence.at,
                    "runbook.concluded",
                    evidence.actor,
                    f"{run.runbook_id}: cause {cause}: {summary}",
                    {**base, "cause": cause, "summary": summary},
                    ref,
                )
            )
            continue
        out.append(
            Event(
                evidence.at,
                "runbook.step",
                evidence.actor,
                _step_line(run.runbook_id, evidence),
                base,
                ref,
            )
        )
    return out


def _step_line(runbook: str, evidence: Evidence) -> str:
    outputs = evidence.outputs
    detail = ""
    if evidence.kind == "check":
        if "error" in outputs:
            detail = f" error: {outputs['error']}"
        else:
            values = [v.get("value") for v in outputs.get("values", []) if isinstance(v, dict)]
            shown = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values[:3])
            detail = f" (value {shown or 'none'}; {evidence.inputs.get('condition', '')})"
    elif evidence.kind == "ask":
        detail = f" ({evidence.inputs.get('question', '')})"
    return f"{runbook}/{evidence.step_id} {evidence.kind}: {evidence.decision}{detail}"


def audit_events(entries: Sequence[AuditEntry]) -> list[Event]:
    """Audit entries as timeline events; the entry's seq and hash stay with it."""
    out = []
    for entry in entries:
        body = entry.body
        at = body.get("ts")
        if not isinstance(at, int | float):
            at = _audit_time(str(body.get("at", "")))
        line = entry.summary()
        out.append(
            Event(
                float(at),
                f"action.{entry.kind}",
                str(body.get("actor", "")),
                line,
                {
                    "seq": entry.seq,
                    "hash": entry.hash,
                    "action": body.get("action"),
                    "params": body.get("params"),
                    "plan": body.get("plan"),
                    "result": body.get("result"),
                    "error": body.get("error"),
                    "intent_seq": body.get("intent_seq"),
                },
                f"audit:{entry.seq}",
            )
        )
    return out


def _audit_time(text: str) -> float:
    try:
        return calendar.timegm(time.strptime(text, AUDIT_TIME_FORMAT))
    except ValueError:
        return 0.0
