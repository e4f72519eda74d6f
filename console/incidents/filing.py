"""Which incident an action is filed under, and which SLI judges it: one decision for
the dashboard's keys, a runbook's action steps and the action commands.

An action taken from an alert belongs to that alert's incident, whatever other
incidents the model has open. An action on a model alone is filed under the model's
one firing incident; with none, or with several (which one would be a guess), it is
filed under none, and the plan says so before anything runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from console.actions.origin import Origin
from console.incidents.model import Incident, IncidentError

#: ``--incident none``: file the action under no incident.
NO_INCIDENT = frozenset({"none", "-"})


@dataclass(frozen=True, slots=True)
class Filing:
    """The incident an action is filed under (or none), why, and the SLI that paged."""

    incident: str | None
    why: str
    paged_sli: str | None = None
    """The alert's ``sli`` label, else the incident's: what verification watches."""

    def line(self) -> str:
        if self.incident is None:
            return f"Filed under no incident: {self.why}."
        return f"Filed under {self.incident}: {self.why}."


def decide_filing(
    open_incidents: Sequence[Incident],
    model: str,
    origin: Origin,
    *,
    model_label: str,
    named: Incident | None = None,
) -> Filing:
    """The one rule for filing an action (see the module's docstring).

    ``open_incidents`` are the store's open incidents; ``named`` is the incident
    ``origin.incident`` names, already looked up (IncidentError when it is of another
    model than the one acted on).
    """
    if origin.incident is not None and origin.incident.strip().lower() in NO_INCIDENT:
        return Filing(None, "--incident none", origin.paged_sli)
    if named is not None:
        if model and named.model != model:
            raise IncidentError(
                f"{named.id} is an incident of {named.model or 'no model'}, not of {model}"
            )
        return Filing(named.id, "named by hand", origin.paged_sli or named.sli)
    if origin.alertname:
        name, alert_model = origin.alertname, origin.labels.get(model_label, "")
        # The open incident holding this very alert, else the one of its group.
        mine = [i for i in open_incidents if i.model == alert_model and i.alertname == name]
        exact = [i for i in mine if any(a.fingerprint == origin.fingerprint for a in i.alerts)]
        found = next(iter(exact or mine), None)
        what = f"{name} on {alert_model or 'no model'}"
        if found is None:
            return Filing(None, f"{what} has no open incident", origin.paged_sli)
        return Filing(found.id, f"the incident of {what}", origin.paged_sli or found.sli)
    if not model:
        return Filing(None, "the action names no model")
    firing = [i for i in open_incidents if i.model == model and i.firing]
    if len(firing) == 1:
        only = firing[0]
        return Filing(only.id, f"the one firing incident of {model} ({only.alertname})", only.sli)
    if not firing:
        return Filing(None, f"{model} has no open incident with a firing alert")
    names = ", ".join(f"{i.id} {i.alertname}" for i in sorted(firing, key=lambda i: i.number))
    return Filing(
        None,
        f"{model} has {len(firing)} firing incidents ({names}); act from the alert, "
        "or name one with --incident",
    )
