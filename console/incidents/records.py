"""What an incident's timeline is built from, opened together: the incidents, the
runbook walks and the audit log (when there is one).

The read side for every front end: the incident command, the incident screen and
the export (:mod:`console.export.build`) all open their records here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.audit.log import AuditLog
    from console.config.models import Config
    from console.incidents.book import IncidentBook
    from console.incidents.model import Incident
    from console.incidents.timeline import Event
    from console.triage.store import Store


@dataclass
class Records:
    """Everything an incident's timeline is built from."""

    config: Config
    book: IncidentBook
    store: Store
    audit: AuditLog | None
    audit_problem: str | None = None
    """Why the audit log is left out (it exists but cannot be read): its actions are
    missing from the timeline, which the front end says."""

    def timeline(self, incident: Incident) -> list[Event]:
        from console.incidents.assembly import timeline

        return timeline(incident, self.book, store=self.store, audit=self.audit)

    def close(self) -> None:
        self.book.close()
        self.store.close()
        if self.audit is not None:
            self.audit.close()


def open_records(config: Config) -> Records:
    """Open the store's incidents and walks, and the audit log if there is one."""
    from console.audit.chain import AuditError
    from console.audit.log import AuditLog
    from console.config.paths import audit_path, store_path
    from console.incidents.book import IncidentBook
    from console.triage.store import Store

    book = IncidentBook(store_path(config))
    try:
        store = Store(store_path(config))
    except BaseException:
        book.close()
        raise
    audit: AuditLog | None = None
    problem: str | None = None
    path = audit_path(config)
    if path.exists():
        try:
            audit = AuditLog(path)
        except AuditError as exc:
            problem = f"{exc}; actions are left out"
    return Records(config, book, store, audit, problem)
