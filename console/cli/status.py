"""``mlconsole status``: the snapshot as rich tables, and its exit code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from console.cli.common import ExitCode
from console.sources.snapshot import Health, Snapshot

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from console.config.models import Config
    from console.render.model_table import Detail

# Rich and the table's cells are imported by the renderers only: `status --json` and
# the exit code need neither (rich.console alone costs about a bare interpreter).

#: Cells between two columns of the status tables (one space each side).
STATUS_PADDING = 2


def exit_code(snapshot: Snapshot, now: float) -> int:
    """3 if a source is unreachable (the picture is incomplete), else 1 if alerts fire, else 0."""
    if any(h.state(now) in (Health.DOWN, Health.PENDING) for h in snapshot.sources.values()):
        return ExitCode.UNREACHABLE
    if snapshot.firing:
        return ExitCode.FIRING
    return ExitCode.OK


def render_slis(snapshot: Snapshot, config: Config, now: float, console: Console) -> None:
    """The dashboard's models table, cell for cell, at the console's width.

    Columns never shrink (a value is never cut to ``99.…``): the table drops what the
    dashboard drops when narrow, and when the SLIs still do not fit, they continue in
    further blocks, each led by the model's name."""
    from rich.table import Table
    from rich.text import Text

    from console.render import fitting, model_table
    from console.render.model_table import stale_slis

    stale = stale_slis(snapshot, config, now)
    models = model_table.ordered(snapshot, snapshot.models)

    def make_rows(detail: Detail) -> list[list[Text]]:
        return [model_table.cells(snapshot, m, now, stale=stale, detail=detail) for m in models]

    detail, sizes = fitting.fit(snapshot.slis, make_rows, console.width, STATUS_PADDING)
    cols = model_table.columns(snapshot.slis, detail)
    rows = make_rows(detail)
    first_sli = len(cols) - len(snapshot.slis)
    blocks: list[list[int]] = [list(range(first_sli))]
    used = sum(sizes[:first_sli]) + STATUS_PADDING * first_sli
    for index in range(first_sli, len(cols)):
        need = sizes[index] + STATUS_PADDING
        if used + need > console.width and len(blocks[-1]) > 1:
            blocks.append([0])  # a new block, led by the model's name
            used = sizes[0] + STATUS_PADDING
        blocks[-1].append(index)
        used += need
    for number, block in enumerate(blocks):
        title = "SLIs" if number == 0 else f"SLIs (continued {number + 1}/{len(blocks)})"
        table = Table(title=title, title_justify="left", box=None, padding=(0, 1), pad_edge=False)
        for index in block:
            column = cols[index]
            # Cells come padded to their width: left-justified, they stay aligned.
            table.add_column(
                model_table.aligned_header(column, sizes[index]),
                no_wrap=True,
                min_width=sizes[index],
            )
        for row in rows:
            table.add_row(*(model_table.aligned_cell(cols[i], row[i], sizes[i]) for i in block))
        console.print(table)
    if not models:
        console.print(Text("  no models known yet", style="dim"))


def render_status(
    snapshot: Snapshot, config: Config, now: float, console: Console | None = None
) -> None:
    from rich.console import Console
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    from console.render.format import HEALTH_STYLE, format_age
    from console.text import CELL_LIMIT, inert

    console = console or Console()
    sources = Table(title="Sources", title_justify="left")
    for column in ("source", "type", "state", "age", "last error"):
        sources.add_column(column)
    for health in snapshot.sources.values():
        state = health.state(now)
        sources.add_row(
            Text(inert(health.name)),
            Text(inert(health.type)),
            Text(state.value, style=HEALTH_STYLE[state]),
            format_age(health.age(now)),
            Text(inert(health.last_error)),
        )
    console.print(sources)

    render_slis(snapshot, config, now, console)

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
                (inert(alert.model) or "-", "bold"),
                "  ",
                inert(alert.name),
                "  ",
                (inert(alert.severity), "yellow"),
                "  ",
                ("firing" if firing else inert(alert.state), "bold red" if firing else "dim"),
                f" since {started:%H:%M:%S} UTC ({format_age(now - started.timestamp())})",
            )
        )
        if alert.summary:
            console.print(
                Padding(Text(inert(alert.summary, limit=CELL_LIMIT), style="dim"), (0, 0, 0, 4))
            )
    console.print(
        Text(f"as of {datetime.fromtimestamp(now, UTC):%Y-%m-%d %H:%M:%S} UTC", style="dim")
    )
