"""Where an action was taken from: the alert, the runbook step, or the incident named
by hand. What it is filed under, and which SLI judges it, follow from it
(:mod:`console.incidents.filing`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from adapters.records import AlertRecord


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an action was taken from: an alert, a runbook step, ``--incident``."""

    labels: Mapping[str, str] = field(default_factory=dict)
    """The labels of the alert it was taken from (a selected alert, the alert a runbook
    walk is for); empty when it was taken from a model alone."""
    fingerprint: str | None = None
    """That alert's fingerprint."""
    incident: str | None = None
    """An incident named by hand (``--incident``; ``none`` files it under none)."""
    step_sli: str | None = None
    """The SLI a runbook action step declares its mitigation should bring back."""

    @classmethod
    def of_alert(cls, alert: AlertRecord | None) -> Origin:
        """Taken from ``alert`` (or from nothing in particular when it is None)."""
        if alert is None:
            return cls()
        return cls(labels=dict(alert.labels), fingerprint=alert.fingerprint)

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def paged_sli(self) -> str | None:
        """The alert's ``sli`` label: the SLI that paged."""
        return self.labels.get("sli") or None
