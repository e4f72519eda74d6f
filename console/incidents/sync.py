"""Incidents from the alerts: open one per firing group, add its alerts, retrigger,
and end what stopped firing."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.records import AlertRecord
from console.config.models import format_duration
from console.incidents.ledger import IncidentLedger
from console.incidents.model import (
    Incident,
    IncidentError,
    SyncResult,
    alert_title,
    group_key,
    incident_id,
    severity_rank,
)
from console.incidents.timeline import iso


class AlertSync(IncidentLedger):
    """The alert-driven moves: :meth:`open` and :meth:`sync`."""

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
            (model, name, severity, alert_title(alerts[0]), sli, now, actor, started, now),
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
                f"{alert.name} firing: {alert_title(alert)}",
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
