"""Incidents: one per firing alert group (model + alert name), kept in the store.

An incident moves ``triggered → acknowledged → mitigated → resolved``. Every
change is an event in the same transaction as the change, so the timeline is
the incident's history. Two consoles sharing the store see the same incidents;
a partial unique index keeps them from opening the same group twice.

An acknowledgement is not a silence: it tells the other responders who is on
it, pages keep arriving, and it ends when every alert of the group stops firing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from console.incidents.model import Incident, IncidentError, incident_id
from console.incidents.sync import AlertSync
from console.incidents.timeline import Event


class IncidentBook(AlertSync):
    """Incidents and their events in the store's SQLite file: read them, sync them
    with the alerts (:class:`console.incidents.sync.AlertSync`), and the responders'
    moves: acknowledge, note, mitigated, resolve."""

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
