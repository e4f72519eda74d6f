"""What a model serves, as one short styled cell: shared by the dashboard and ``status``."""

from __future__ import annotations

from rich.text import Text

from console.render.format import format_age
from console.sources.snapshot import Snapshot
from console.text import inert

#: An alias move younger than this is highlighted: a fresh deploy is a suspect.
RECENT_DEPLOY_SECONDS = 3600.0


def serving_cell(snapshot: Snapshot, model: str, now: float) -> Text:
    """What the model serves: its alias version and when that last changed, the
    fallback when it is on, and a paused pipeline."""
    text = Text()
    if snapshot.switches.get("fallback", {}).get(model):
        text.append("FALLBACK", style="bold yellow")
    else:
        deployed = snapshot.deployments.get(model)
        if deployed is None or deployed.version is None:
            text.append("·", style="dim")
        else:
            text.append(f"v{inert(deployed.version)}", style="bold")
            if not deployed.first_seen:
                age = now - deployed.since
                text.append(
                    f" {format_age(age)}",
                    style="bold magenta" if age < RECENT_DEPLOY_SECONDS else "dim",
                )
    if snapshot.switches.get("pipeline", {}).get(model):
        text.append(" ⏸", style="yellow")
    return text
