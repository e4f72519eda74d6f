"""The models × SLIs table as columns and cells: one copy for the dashboard and ``status``.

Both front ends show the same columns in the same order, built from the same cells, and
pick how much each SLI cell shows from the width they have
(:func:`console.render.fitting.fit`): first the sparkline goes, then the burn rate, and
when even bare values do not fit, a compact ``breached`` column next to the model's name
lists what breaches, so the responder sees each model and its breached SLIs without
scrolling sideways.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text

from console.config.models import Config, SliConfig
from console.render.format import (
    STATUS_STYLE,
    format_burn,
    format_objective,
    format_value,
    sparkline,
)
from console.render.serving import serving_cell
from console.sources.sli import SliReading, SliStatus
from console.sources.snapshot import Health, Snapshot
from console.text import inert

# Read once: an enum member looked up on its class costs 15x a global, per model.
_BREACH, _NODATA = SliStatus.BREACH, SliStatus.NODATA

#: Widest SLI value (``100.00%``, ``0.00763``): values are right-aligned to it.
VALUE_WIDTH = 7
#: Widest burn rate (``61.0x``, ``100x``).
BURN_WIDTH = 5
#: The widest ``breached`` cell: further breaches are counted (``+2``).
BREACHED_WIDTH = 30
#: The longest model name shown before it is cut.
MODEL_WIDTH = 28


@dataclass(frozen=True, slots=True)
class Detail:
    """How much the table shows: each SLI cell's burn rate and sparkline, and whether
    a compact ``breached`` column sums up the breaches next to the model's name."""

    burn: bool
    spark: int
    """Sparkline points; 0 for none."""
    breached: bool

    @property
    def fixed(self) -> int:
        """How many leading columns stay in view when the SLIs scroll sideways."""
        return 3 if self.breached else 2


#: From the richest to the most compact; :func:`~console.render.fitting.fit` takes the
#: first that fits.
DETAILS = (
    Detail(burn=True, spark=6, breached=False),
    Detail(burn=True, spark=0, breached=False),
    Detail(burn=False, spark=0, breached=False),
    Detail(burn=False, spark=0, breached=True),
)
FULL, COMPACT = DETAILS[0], DETAILS[-1]


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its key (the SLI's name for SLI columns), header and whether its
    cells are right-aligned values."""

    key: str
    header: Text
    sli: SliConfig | None = None


def sli_header(sli: SliConfig) -> Text:
    objective = format_objective(sli.objective.op, sli.objective.threshold, sli.unit)
    return Text.assemble((inert(sli.label), "bold"), "\n", (objective, "dim"))


def aligned_header(column: Column, width: int) -> Text:
    """An SLI column's header right-aligned over its values; other headers as they are."""
    if column.sli is None:
        return column.header
    return Text("\n").join(
        Text(line.plain.rjust(width), style=line.spans[0].style if line.spans else "")
        for line in column.header.split("\n")
    )


def aligned_cell(column: Column, cell: Text, width: int) -> Text:
    """An SLI cell right-aligned in its column (its own padding kept); others as they are."""
    if column.sli is None or cell.cell_len >= width:
        return cell
    aligned = cell.copy()
    aligned.pad_left(width - cell.cell_len)
    return aligned


def columns(slis: Sequence[SliConfig], detail: Detail) -> list[Column]:
    """The columns in the order both front ends show them."""
    cols = [Column("model", Text("model", style="bold")), Column("alerts", Text("alerts"))]
    if detail.breached:
        cols.append(Column("breached", Text("breached")))
    cols.append(Column("serving", Text("serving")))
    cols.extend(Column(sli.name, sli_header(sli), sli) for sli in slis)
    return cols


def stale_slis(snapshot: Snapshot, config: Config, now: float) -> frozenset[str]:
    """The SLIs whose metrics source is not answering now: their values are old."""
    ok = {name for name, health in snapshot.sources.items() if health.state(now) is Health.OK}
    return frozenset(s.name for s in snapshot.slis if config.metrics_source_for(s) not in ok)


def firing_count(snapshot: Snapshot, model: str) -> int:
    return sum(1 for a in snapshot.alerts_for(model) if a.state == "active")


def breaches(snapshot: Snapshot, model: str) -> list[tuple[SliConfig, SliReading]]:
    return [
        (sli, reading)
        for sli in snapshot.slis
        if (reading := snapshot.reading(model, sli.name)) is not None and reading.status is _BREACH
    ]


def rank(snapshot: Snapshot, model: str) -> tuple[int, str]:
    """Worst first: models with firing alerts, then SLI breaches, then the rest."""
    if firing_count(snapshot, model):
        return (0, model)
    if breaches(snapshot, model):
        return (1, model)
    return (2, model)


def ordered(snapshot: Snapshot, models: Iterable[str]) -> list[str]:
    return sorted(models, key=lambda m: rank(snapshot, m))


def sli_cell(
    sli: SliConfig, reading: SliReading | None, *, stale: bool, detail: Detail = FULL
) -> Text:
    """The value in its status colour, then (if ``detail`` says so) the burn rate and a
    sparkline, each padded to its width so the column does not grow as history fills."""
    if reading is None:
        return Text("—".rjust(VALUE_WIDTH), style="dim")
    style = "dim" if stale else STATUS_STYLE[reading.status]
    text = Text(format_value(reading.value, sli.unit).rjust(VALUE_WIDTH), style=style)
    if detail.burn and sli.slo is not None:
        burn = reading.burn_rate
        burn_style = "bold magenta" if burn is not None and burn >= 1 else "dim magenta"
        shown = format_burn(burn) if burn is not None else ""
        text.append(f" {shown:>{BURN_WIDTH}}", style=burn_style)
    if detail.spark:
        spark = sparkline(reading.history, detail.spark)
        text.append(f" {spark:<{detail.spark}}", style="dim" if stale else "dim cyan")
    if reading.error:
        text.append(" !", style="bold yellow")
    return text


def sli_width(sli: SliConfig, reading: SliReading | None, detail: Detail) -> int:
    """``sli_cell(sli, reading, ...).cell_len``, without building the cell: what
    :func:`~console.render.fitting.fit` needs of every row, where only the rows in view
    are drawn."""
    return sli_widths(sli, reading)[DETAILS.index(detail)]


NO_READING = (VALUE_WIDTH,) * len(DETAILS)


def sli_widths(sli: SliConfig, reading: SliReading | None) -> tuple[int, ...]:
    """:func:`sli_width` at each of :data:`DETAILS`, for the cost of one: the details
    differ only in whether the burn rate and the sparkline are shown."""
    if reading is None:
        return NO_READING
    width = max(VALUE_WIDTH, cell_len(format_value(reading.value, sli.unit)))
    if reading.error:
        width += 2
    burn = 0
    if sli.slo is not None:
        rate = reading.burn_rate
        burn = 1 + max(BURN_WIDTH, cell_len(format_burn(rate)) if rate is not None else 0)
    return tuple(width + (burn if d.burn else 0) + (1 + d.spark if d.spark else 0) for d in DETAILS)


def breached_cell(snapshot: Snapshot, model: str, stale: frozenset[str]) -> Text:
    """``Errors 61% Avail 39%``: each breached SLI and its value; ``·`` when none is,
    ``unknown`` when no SLI of the model has a value (never read, or the metrics down),
    and ``· stale`` when none breached as last read but those readings are old."""
    found = breaches(snapshot, model)
    if not found:
        readings = [snapshot.reading(model, s.name) for s in snapshot.slis]
        if all(r is None or r.status is _NODATA for r in readings):
            return Text("unknown", style="dim")
        if stale:
            return Text("· stale", style="dim")
        return Text("·", style="dim")
    parts = [
        Text.assemble(
            (inert(sli.label), "dim" if sli.name in stale else "bold"),
            " ",
            (format_value(r.value, sli.unit), "dim" if sli.name in stale else "bold red"),
        )
        for sli, r in found
    ]
    # At most BREACHED_WIDTH cells, so the fixed columns leave room at 80 columns; the
    # rest are counted (and still red in their own columns).
    text = parts[0]
    for index, part in enumerate(parts[1:], 1):
        rest = len(parts) - index - 1
        more = f" +{rest}" if rest else ""
        if text.cell_len + 1 + part.cell_len + len(more) > BREACHED_WIDTH:
            text.append(f" +{len(parts) - index}", style="bold red")
            break
        text.append(" ")
        text.append_text(part)
    return text


def model_name(model: str) -> str:
    """The model's name as its cell shows it: inert, cut at :data:`MODEL_WIDTH`."""
    shown = inert(model)
    return shown if cell_len(shown) <= MODEL_WIDTH else shown[: MODEL_WIDTH - 1] + "…"


def cells(
    snapshot: Snapshot,
    model: str,
    now: float,
    *,
    stale: frozenset[str],
    detail: Detail,
) -> list[Text]:
    """One model's row, in the order of :func:`columns`."""
    firing = firing_count(snapshot, model)
    row = [
        Text(model_name(model), style="bold red" if firing else ""),
        Text(str(firing) if firing else "·", style="bold red" if firing else "dim"),
    ]
    if detail.breached:
        row.append(breached_cell(snapshot, model, stale))
    row.append(serving_cell(snapshot, model, now))
    row.extend(
        sli_cell(sli, snapshot.reading(model, sli.name), stale=sli.name in stale, detail=detail)
        for sli in snapshot.slis
    )
    return row


def row_widths(
    snapshot: Snapshot,
    model: str,
    now: float,
    *,
    stale: frozenset[str],
    detail: Detail,
) -> list[int]:
    """Each cell's width in ``cells(snapshot, model, ...)``; the SLI cells (most of a
    row) are measured without being built."""
    firing = firing_count(snapshot, model)
    row = [
        cell_len(model_name(model)),
        len(str(firing)) if firing else 1,
    ]
    if detail.breached:
        row.append(breached_cell(snapshot, model, stale).cell_len)
    row.append(serving_cell(snapshot, model, now).cell_len)
    row.extend(sli_width(sli, snapshot.reading(model, sli.name), detail) for sli in snapshot.slis)
    return row
