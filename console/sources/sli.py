"""An SLI's reading, judged: ok, breached or no data against its objective, and its
burn rate."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar, dataclass_transform

from console.config.models import SliConfig


class SliStatus(StrEnum):
    OK = "ok"
    BREACH = "breach"
    NODATA = "nodata"


# The members, read once: an enum member looked up on its class runs Python code
# (about 100 ns, 15x a global), and a refresh judges every model's every SLI.
_OK, _BREACH, _NODATA = SliStatus.OK, SliStatus.BREACH, SliStatus.NODATA


_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def _reading_class(cls: type[_T]) -> type[_T]:
    """A dataclass that type checkers hold frozen (assigning a field is an error), built
    without the run-time guard: a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``, about 5x the cost of a plain one, and a refresh of 1,000
    models builds up to 7,000 readings. Hashable by value, as a frozen one is."""
    return dataclass(slots=True, unsafe_hash=True)(cls)


@_reading_class
class SliReading:
    """One SLI's value for one model, judged against its objective.

    Never changed once built (the type checker holds it frozen). The poller keeps the
    same object while a reading's value, status, burn rate and history stay as they
    were, so a screen can skip an unchanged cell by identity."""

    sli: str
    model: str
    value: float | None
    status: SliStatus
    burn_rate: float | None = None
    history: tuple[float, ...] = ()
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "sli": self.sli,
            "model": self.model,
            "value": self.value,
            "status": self.status.value,
            "burn_rate": self.burn_rate,
            "history": list(self.history),
            "error": self.error,
        }


_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class Judge:
    """:func:`judge` and :func:`burn_rate` for one SLI, its objective and error budget
    read once: the refresh asks them for every model."""

    __slots__ = ("_budget", "_derived", "_higher", "_met", "_threshold")

    def __init__(self, sli: SliConfig) -> None:
        self._met = _OPERATORS[sli.objective.op]
        self._threshold = sli.objective.threshold
        self._budget = None if sli.slo is None else 1.0 - sli.slo.target
        self._derived = sli.unit == "ratio"
        self._higher = sli.objective.higher_is_better

    def status(self, value: float | None) -> SliStatus:
        if value is None or value != value:  # None or NaN
            return _NODATA
        return _OK if self._met(value, self._threshold) else _BREACH

    def burn_rate(self, value: float | None, bad_ratio: float | None) -> float | None:
        if self._budget is None:
            return None
        if bad_ratio is None:
            if not self._derived or value is None or value != value:
                return None
            bad_ratio = 1.0 - value if self._higher else value
        if bad_ratio != bad_ratio:  # NaN
            return None
        # A conditional, not max(): a builtin's call costs 10x, once per model and SLI.
        return (bad_ratio if bad_ratio > 0.0 else 0.0) / self._budget


def judge(sli: SliConfig, value: float | None) -> SliStatus:
    """OK while the value meets the SLI's objective, BREACH when not, NODATA for none
    (or NaN)."""
    return Judge(sli).status(value)


def burn_rate(sli: SliConfig, value: float | None, bad_ratio: float | None) -> float | None:
    """How fast the error budget burns: the bad-event ratio over the budget ``1 - target``.

    ``bad_ratio`` comes from the SLO's own ``error_ratio_query`` when it has one;
    otherwise a ``ratio`` SLI's value is the bad ratio (or its complement when
    higher is better). Other SLIs have no burn rate.
    """
    return Judge(sli).burn_rate(value, bad_ratio)
