"""Fitting the models table to a width: each snapshot's survey of the widths its cells
need, worked out where the snapshot is built (:class:`WidthBook`), each row's widths
kept until its readings change (:class:`RowMeasure`), and the columns that fit."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text

from console.config.models import SliConfig
from console.keys_first import in_pieces, no_key
from console.render.format import (
    format_age,
)
from console.render.model_table import (
    COMPACT,
    DETAILS,
    NO_READING,
    Column,
    Detail,
    breached_cell,
    breaches,
    columns,
    firing_count,
    model_name,
    ordered,
    sli_widths,
)
from console.render.serving import serving_cell
from console.sources.sli import SliReading, SliStatus
from console.sources.snapshot import Snapshot

# Read once: an enum member looked up on its class costs 15x a global, per model.
_NODATA = SliStatus.NODATA


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
    sli_widest = [list(NO_READING) for _ in snapshot.slis]
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
            return NO_READING
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
            kept = self._slis = [(None, NO_READING)] * len(readings)
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
