"""The models × SLIs table as columns and cells: one copy for the dashboard and ``status``.

Both front ends show the same columns in the same order, built from the same cells, and
pick how much each SLI cell shows from the width they have (:func:`fit`): first the
sparkline goes, then the burn rate, and when even bare values do not fit, a compact
``breached`` column next to the model's name lists what breaches, so the responder sees
each model and its breached SLIs without scrolling sideways.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text

from console.config.models import Config, SliConfig
from console.keys_first import in_pieces, no_key
from console.render.format import (
    STATUS_STYLE,
    format_age,
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


#: From the richest to the most compact; :func:`fit` takes the first that fits.
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
    :func:`fit` needs of every row, where only the rows in view are drawn."""
    return sli_widths(sli, reading)[DETAILS.index(detail)]


_NO_READING = (VALUE_WIDTH,) * len(DETAILS)


def sli_widths(sli: SliConfig, reading: SliReading | None) -> tuple[int, ...]:
    """:func:`sli_width` at each of :data:`DETAILS`, for the cost of one: the details
    differ only in whether the burn rate and the sparkline are shown."""
    if reading is None:
        return _NO_READING
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


@dataclass(frozen=True, slots=True)
class Survey:
    """What the whole models table of one snapshot needs, worked out where the
    snapshot is built (:meth:`WidthBook.measure`), so the dashboard's work for a new
    snapshot follows the rows in view, not the fleet: every model in table order,
    and each column's widest cell at each detail. The serving cells that show a
    deploy's age depend on the clock and are measured when asked (``aged``)."""

    snapshot: Snapshot
    order: tuple[str, ...]
    """Every model, worst first (:func:`ordered`)."""
    name: int
    firing: int
    breached: int
    """The widest ``breached`` cell of a model with breaches (0 when none has)."""
    unknown: bool
    """Whether some model has no SLI value at all (its ``breached`` cell says so)."""
    clear: bool
    """Whether some model has values and no breach (``·``, or ``· stale``)."""
    serving: int
    """The widest serving cell of the models not in ``aged``."""
    aged: tuple[str, ...]
    sli: tuple[tuple[int, ...], ...]
    """Per SLI (in the snapshot's order), its widest cell at each of :data:`DETAILS`."""

    def widths(self, detail: Detail, now: float, stale: frozenset[str]) -> list[int]:
        """The widest cell of each column at ``detail`` (headers aside), as
        :func:`row_widths` of every row would give them."""
        snapshot = self.snapshot
        row = [self.name, self.firing]
        if detail.breached:
            row.append(
                max(
                    self.breached,
                    len("unknown") if self.unknown else 0,
                    (len("· stale") if stale else 1) if self.clear else 0,
                )
            )
        row.append(
            max([self.serving, *(serving_cell(snapshot, m, now).cell_len for m in self.aged)])
        )
        index = DETAILS.index(detail)
        row.extend(widest[index] for widest in self.sli)
        return row


def survey(
    snapshot: Snapshot,
    measured: Iterable[tuple[SliReading, tuple[int, ...]]],
    give_way: Callable[[], None] = no_key,
) -> Survey:
    """The :class:`Survey` of ``snapshot``, from its readings, each with its
    :func:`sli_widths` (``measured``); ``give_way`` is called between pieces of the
    work (:func:`console.keys_first.in_pieces`)."""
    models = snapshot.models
    order = tuple(ordered(snapshot, models))
    name = max((cell_len(model_name(m)) for m in models), default=0)
    firing = max(
        (len(str(n)) for m in snapshot.alerts_by_model if (n := firing_count(snapshot, m))),
        default=1,
    )
    breached = 0
    unknown = clear = False
    serving = 0
    aged: list[str] = []
    position = {sli.name: index for index, sli in enumerate(snapshot.slis)}
    sli_widest = [list(_NO_READING) for _ in snapshot.slis]
    for piece in in_pieces(models, give_way):
        for model in piece:
            found = breaches(snapshot, model)
            if found:
                breached = max(breached, breached_cell(snapshot, model, frozenset()).cell_len)
            elif all(
                r is None or r.status is _NODATA
                for r in (snapshot.reading(model, s.name) for s in snapshot.slis)
            ):
                unknown = True
            else:
                clear = True
            deployed = snapshot.deployments.get(model)
            if deployed is not None and deployed.version is not None and not deployed.first_seen:
                aged.append(model)
            else:
                serving = max(serving, serving_cell(snapshot, model, 0.0).cell_len)
    for measured_piece in in_pieces(measured, give_way):
        for reading, sizes in measured_piece:
            index = position.get(reading.sli)
            if index is None:
                continue
            widest = sli_widest[index]
            for detail, size in enumerate(sizes):
                if size > widest[detail]:
                    widest[detail] = size
    return Survey(
        snapshot,
        order,
        name,
        firing,
        breached,
        unknown,
        clear,
        serving,
        tuple(aged),
        tuple(tuple(w) for w in sli_widest),
    )


#: Surveys a :class:`WidthBook` keeps. The UI draws a snapshot some time after the
#: state thread surveyed it, and by then the state thread may have surveyed the next
#: one or two (a snapshot held while another screen is on top, drawn when it closes):
#: a snapshot with no survey is measured row by row, on the UI's thread, which at
#: ten thousand models took a second.
SURVEYS_KEPT = 3


class WidthBook:
    """:func:`sli_widths` of each reading, measured once, by whoever asks first.

    The poller's state thread measures each snapshot's new readings as it builds it
    (:meth:`measure`), so a thousand models' worth of measuring is done before the
    dashboard, on the UI loop, asks (:meth:`widths`). Readings are known by identity
    (the poller keeps a reading that did not move as the same object); the book
    keeps the readings of the last snapshot measured, and those asked of it since.
    It is only a cache: a width that a thread's write loses is measured again."""

    __slots__ = ("_book", "_surveys", "give_way")

    def __init__(self) -> None:
        self._book: dict[int, tuple[SliReading, tuple[int, ...]]] = {}
        #: The surveys of the last :data:`SURVEYS_KEPT` snapshots measured, newest last.
        self._surveys: tuple[Survey, ...] = ()
        #: Called between pieces of :meth:`measure`'s work: a UI waits there while it
        #: answers a key (:class:`console.keys_first.KeysFirst`).
        self.give_way: Callable[[], None] = no_key

    def __len__(self) -> int:
        return len(self._book)

    def measure(self, snapshot: Snapshot) -> None:
        """Measure the readings of ``snapshot`` not measured yet, and forget those it
        no longer holds."""
        slis = {sli.name: sli for sli in snapshot.slis}
        book = self._book
        fresh: dict[int, tuple[SliReading, tuple[int, ...]]] = {}
        for piece in in_pieces(snapshot.readings.values(), self.give_way):
            for reading in piece:
                known = book.get(id(reading))
                if known is not None and known[0] is reading:
                    fresh[id(reading)] = known
                elif (sli := slis.get(reading.sli)) is not None:
                    fresh[id(reading)] = (reading, sli_widths(sli, reading))
        # The UI thread may add to the book from the moment it is handed over (and
        # while this thread gives way): the survey reads what was measured here.
        measured = list(fresh.values())
        self._book = fresh
        made = survey(snapshot, measured, self.give_way)
        self._surveys = (*self._surveys[1 - SURVEYS_KEPT :], made)

    def survey_of(self, snapshot: Snapshot) -> Survey | None:
        """The survey of ``snapshot``, if it is one of the last snapshots measured."""
        return next((s for s in reversed(self._surveys) if s.snapshot is snapshot), None)

    def widths(self, sli: SliConfig, reading: SliReading | None) -> tuple[int, ...]:
        if reading is None:
            return _NO_READING
        known = self._book.get(id(reading))
        if known is not None and known[0] is reading:
            return known[1]
        sizes = sli_widths(sli, reading)
        self._book[id(reading)] = (reading, sizes)
        return sizes


class RowMeasure:
    """One model's :func:`row_widths`, kept from one snapshot to the next: a reading
    that is the same object as last time is not measured again, nor the serving cell
    while what it shows (:func:`serving_key`) is the same. At a thousand models every
    row is measured on every snapshot (the widths of the columns are the widest
    cells), and most of a row did not change."""

    __slots__ = ("_book", "_model", "_name", "_serving", "_slis")

    def __init__(self, model: str, book: WidthBook | None = None) -> None:
        self._model = model
        self._book = book
        self._name = cell_len(model_name(model))
        self._serving: tuple[tuple[object, ...], int] | None = None
        self._slis: list[tuple[SliReading | None, tuple[int, ...]]] = []

    def widths(
        self,
        snapshot: Snapshot,
        now: float,
        *,
        stale: frozenset[str],
        detail: Detail,
        key: tuple[object, ...] | None = None,
    ) -> list[int]:
        """``row_widths(snapshot, model, now, stale=stale, detail=detail)``; ``key``
        is the row's :func:`row_key` when the caller has it already."""
        model = self._model
        if key is None:
            key = row_key(snapshot, model, now, stale)
        firing, serving, readings, _ = key
        assert isinstance(firing, int) and isinstance(readings, tuple)
        assert isinstance(serving, tuple)
        row = [self._name, len(str(firing)) if firing else 1]
        if detail.breached:
            row.append(breached_cell(snapshot, model, stale).cell_len)
        if self._serving is None or self._serving[0] != serving:
            self._serving = (serving, serving_cell(snapshot, model, now).cell_len)
        row.append(self._serving[1])
        kept = self._slis
        if len(kept) != len(readings):
            kept = self._slis = [(None, _NO_READING)] * len(readings)
        index = DETAILS.index(detail)
        for position, (sli, reading) in enumerate(zip(snapshot.slis, readings, strict=True)):
            measured, sizes = kept[position]
            if measured is not reading:
                assert reading is None or isinstance(reading, SliReading)
                book = self._book
                sizes = sli_widths(sli, reading) if book is None else book.widths(sli, reading)
                kept[position] = (reading, sizes)
            row.append(sizes[index])
        return row


def serving_key(snapshot: Snapshot, model: str, now: float) -> tuple[object, ...]:
    """What :func:`~console.render.serving.serving_cell` shows for ``model``: equal keys, equal
    cells (the deploy's age as shown, not the clock)."""
    deployed = snapshot.deployments.get(model)
    age = None
    if deployed is not None and deployed.version is not None and not deployed.first_seen:
        age = format_age(now - deployed.since)
    return (
        snapshot.switches.get("fallback", {}).get(model),
        deployed,
        age,
        snapshot.switches.get("pipeline", {}).get(model),
    )


def row_key(
    snapshot: Snapshot, model: str, now: float, stale: frozenset[str]
) -> tuple[object, ...]:
    """Everything ``model``'s row is built from: equal keys, equal rows. Cheap when
    nothing changed (the readings compare by identity first)."""
    return (
        firing_count(snapshot, model),
        serving_key(snapshot, model, now),
        tuple(snapshot.readings.get((model, sli.name)) for sli in snapshot.slis),
        stale,
    )


def header_widths(cols: Sequence[Column]) -> list[int]:
    return [max(cell_len(line) for line in c.header.plain.split("\n")) for c in cols]


def widths(cols: Sequence[Column], rows: Iterable[Sequence[Text]]) -> list[int]:
    """Each column's width in cells: its widest header line or cell."""
    return widest(cols, ([cell.cell_len for cell in row] for row in rows))


def widest(cols: Sequence[Column], rows: Iterable[Sequence[int]]) -> list[int]:
    """Each column's width in cells: its widest header line or cell (of ``rows``,
    each row its cells' widths)."""
    result = header_widths(cols)
    for row in rows:
        result = [max(pair) for pair in zip(result, row, strict=True)]
    return result


RowMaker = Callable[[Detail], Iterable[Sequence[Text]]]
WidthMaker = Callable[[Detail], Iterable[Sequence[int]]]


def fit(
    slis: Sequence[SliConfig], make_rows: RowMaker, width: int, padding: int
) -> tuple[Detail, list[int]]:
    """The richest :data:`DETAILS` whose columns all fit in ``width`` (each column
    taking ``padding`` cells besides its content), else :data:`COMPACT`; and the
    widths of its columns."""

    def make_widths(detail: Detail) -> Iterable[Sequence[int]]:
        return ([cell.cell_len for cell in row] for row in make_rows(detail))

    return fit_widths(slis, make_widths, width, padding)


def fit_widths(
    slis: Sequence[SliConfig], make_widths: WidthMaker, width: int, padding: int
) -> tuple[Detail, list[int]]:
    """:func:`fit`, from each row's cell widths (:func:`row_widths`)."""
    for detail in DETAILS:
        sizes = widest(columns(slis, detail), make_widths(detail))
        if sum(sizes) + padding * len(sizes) <= width or detail is COMPACT:
            return detail, sizes
    raise AssertionError("unreachable: COMPACT always returns")
