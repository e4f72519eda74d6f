"""How values look, shared by the dashboard and ``mlconsole status``."""

from __future__ import annotations

import math

from console.config.models import format_duration
from console.sources.sli import SliStatus
from console.sources.snapshot import Health

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"

# Rich style names for each state, shared by `mlconsole status` and the screens.
STATUS_STYLE = {SliStatus.OK: "green", SliStatus.BREACH: "bold red", SliStatus.NODATA: "dim"}
HEALTH_STYLE = {
    Health.OK: "green",
    Health.STALE: "yellow",
    Health.DOWN: "bold red",
    Health.PENDING: "dim",
}


def format_value(value: float | None, unit: str) -> str:
    """An SLI value in its unit: ratios as percentages, seconds as ms or s."""
    if value is None or math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    match unit:
        case "ratio":
            pct = value * 100
            return f"{pct:.3g}%" if abs(pct) < 99.9 else f"{pct:.2f}%"
        case "percent":
            return f"{value:.3g}%"
        case "seconds":
            if abs(value) < 1:
                return f"{value * 1000:.0f}ms"
            return format_duration(value) if value >= 60 else f"{value:.2f}s"
        case "count":
            return f"{value:,.0f}"
        case _:
            return f"{value:.3g}"


def format_objective(op: str, threshold: float, unit: str) -> str:
    return f"{op} {format_value(threshold, unit)}"


def format_burn(burn: float | None) -> str:
    if burn is None or math.isnan(burn):
        return "—"
    return f"{burn:.1f}x" if burn < 100 else f"{burn:.0f}x"


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return format_duration(seconds)


def reading_age(at: float, now: float) -> str:
    """How old a piece of evidence is: ``42s old`` (the screens and ``runbook run``)."""
    return f"{format_duration(max(0.0, now - at))} old"


def sparkline(values: tuple[float, ...] | list[float], width: int = 12) -> str:
    """Unicode block sparkline of the last ``width`` finite values."""
    finite = [v for v in values if not (math.isnan(v) or math.isinf(v))][-width:]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    span = high - low
    if span <= 0:
        return SPARK_BLOCKS[0] * len(finite)
    top = len(SPARK_BLOCKS) - 1
    return "".join(SPARK_BLOCKS[round((v - low) / span * top)] for v in finite)
