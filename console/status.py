"""``mlconsole status``: the snapshot as rich tables, and its exit code."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from console.cli import EXIT_FIRING, EXIT_OK, EXIT_UNREACHABLE
from console.format import (
    HEALTH_STYLE,
    STATUS_STYLE,
    format_age,
    format_burn,
    format_objective,
    format_value,
    sparkline,
)
from console.serving import serving_cell
from console.snapshot import Health, Snapshot


def exit_code(snapshot: Snapshot, now: float) -> int:
    """3 if a source is unreachable (the picture is incomplete), else 1 if alerts fire, else 0."""
    if any(h.state(now) in (Health.DOWN, Health.PENDING) for h in snapshot.sources.values()):
        return EXIT_UNREACHABLE
    if snapshot.firing:
        return EXIT_FIRING
    return EXIT_OK


def render_status(snapshot: Snapshot, now: float, console: Console | None = None) -> None:
    console = console or Console()
    sources = Table(title="Sources", title_justify="left")
    for column in ("source", "type", "state", "age", "last error"):
        sources.add_column(column)
    for health in snapshot.sources.values():
        state = health.state(now)
        sources.add_row(
            health.name,
            health.type,
            Text(state.value, style=HEALTH_STYLE[state]),
            format_age(health.age(now)),
            health.last_error or "",
        )
    console.print(sources)

    slis = Table(title="SLIs", title_justify="left")
    slis.add_column("model", no_wrap=True)
    spark = console.width >= 40 + 22 * len(snapshot.slis)  # only when there is room
    for sli in snapshot.slis:
        slis.add_column(
            f"{sli.label}\n{format_objective(sli.objective.op, sli.objective.threshold, sli.unit)}"
        )
    serving = bool(snapshot.deployments or snapshot.switches)
    if serving:
        slis.add_column("serving", no_wrap=True)
    for model in snapshot.models:
        cells: list[Text | str] = [model]
        if serving:
            cells.append(serving_cell(snapshot, model, now))
        for sli in snapshot.slis:
            reading = snapshot.reading(model, sli.name)
            if reading is None:
                cells.append(Text("—", style="dim"))
                continue
            text = Text(format_value(reading.value, sli.unit), style=STATUS_STYLE[reading.status])
            if reading.burn_rate is not None:
                text.append(f" {format_burn(reading.burn_rate)}", style="magenta")
            if spark:
                text.append(f" {sparkline(reading.history, 8)}", style="dim")
            cells.append(text)
        slis.add_row(*cells)
    console.print(slis)

    # Alerts as two-line entries: summaries stay readable at any terminal width.
    console.print(Text.assemble(("Alerts ", "italic"), f"({len(snapshot.firing)} firing)"))
    if not snapshot.alerts:
        console.print(Text("  none", style="green"))
    for alert in snapshot.alerts:
        started = alert.starts_at.astimezone(UTC)
        firing = alert.state == "active"
        console.print(
            Text.assemble(
                ("● " if firing else "○ ", "bold red" if firing else "dim"),
                (alert.model or "-", "bold"),
                "  ",
                alert.name,
                "  ",
                (alert.severity, "yellow"),
                "  ",
                ("firing" if firing else alert.state, "bold red" if firing else "dim"),
                f" since {started:%H:%M:%S} UTC ({format_age(now - started.timestamp())})",
            )
        )
        if alert.summary:
            console.print(Text(f"    {alert.summary}", style="dim"))
    console.print(
        Text(f"as of {datetime.fromtimestamp(now, UTC):%Y-%m-%d %H:%M:%S} UTC", style="dim")
    )
