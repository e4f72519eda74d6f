"""Did it help? Which SLI judges a mitigation, and the watch that gives the verdict."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from adapters.base import (
    AdapterError,
    MetricsAdapter,
)
from console.actions.contracts import ActionContext
from console.config.models import Config
from console.promql import select_series

# -- did it help? -------------------------------------------------------------------

#: Where the SLI verification watches came from, in the words a verdict uses.
FROM_ALERT = "the SLI that paged, from the alert's sli label"
FROM_STEP = "the SLI the runbook step names"
FROM_CONFIG = "actions.verify.sli, as the page names no SLI"


@dataclass(frozen=True, slots=True)
class WatchTarget:
    """The SLI verification watches after a mitigation, and why that one.

    ``problem`` is set when nothing can be watched (the page names an SLI the config
    does not have, or its metrics source is not loaded): the verdict then says so
    instead of judging another SLI.
    """

    sli: str
    origin: str
    """Why this SLI: :data:`FROM_ALERT`, :data:`FROM_STEP` or :data:`FROM_CONFIG`."""
    query: str = ""
    threshold: str = ""
    good: Callable[[float], bool] | None = None
    source: str | None = None
    problem: str | None = None
    measure: str = ""
    """What is read when it is not the SLI's own value (its SLO's bad-event ratio):
    a latency SLI judged on the share of slow requests must not read as seconds."""

    def describe(self) -> str:
        """One line for a plan: what will be watched, or that nothing can be."""
        if self.problem:
            return f"nothing can be watched: {self.problem}"
        measure = f" ({self.measure})" if self.measure else ""
        return f"{self.sli}{measure}, {self.origin}: {self.threshold}"


def watch_target(
    config: Config, *, paged_sli: str | None = None, step_sli: str | None = None
) -> WatchTarget:
    """The SLI verification watches: the one that paged (the alert's ``sli`` label),
    else the runbook step's declared ``sli``, else ``actions.verify.sli``.

    A page that names an SLI the config lacks is not judged on another SLI: the target
    carries the problem, and the verdict says nothing could be watched.
    """
    if paged_sli:
        name, origin = paged_sli, FROM_ALERT
    elif step_sli:
        name, origin = step_sli, FROM_STEP
    else:
        name, origin = config.actions.verify.sli, FROM_CONFIG
    sli = next((s for s in config.slis if s.name == name), None)
    if sli is None:
        return WatchTarget(
            name, origin, problem=f"{origin} names {name!r}, which is not among `slis`"
        )
    source = config.metrics_source_for(sli)
    if sli.slo is not None and sli.slo.error_ratio_query:
        budget = 1.0 - sli.slo.target
        return WatchTarget(
            sli.name,
            origin,
            sli.slo.error_ratio_query,
            f"good below {budget:g}, the error budget rate",
            lambda v: v < budget,
            source,
            measure=f"bad-event ratio `{sli.slo.error_ratio_query}`",
        )
    return WatchTarget(
        sli.name, origin, sli.query, f"good when {sli.objective}", sli.objective.met, source
    )


@dataclass(frozen=True, slots=True)
class Recovery:
    """What the SLI did while it was watched after an action."""

    model: str
    sli: str
    query: str
    threshold: str
    recovered: bool
    value: float | None
    elapsed: float
    reads: int
    error: str | None = None
    origin: str = FROM_CONFIG
    """Why this SLI was watched (see :class:`WatchTarget`)."""
    watched: bool = True
    """False when nothing could be watched; ``error`` says why."""
    measure: str = ""
    """See :attr:`WatchTarget.measure`."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "sli": self.sli,
            "origin": self.origin,
            "watched": self.watched,
            "query": self.query,
            "threshold": self.threshold,
            "recovered": self.recovered,
            "value": self.value,
            "elapsed": round(self.elapsed, 1),
            "reads": self.reads,
            "error": self.error,
        }

    def line(self) -> str:
        if not self.watched:
            return f"NOT VERIFIED: {self.model}: nothing was watched: {self.error}"
        value = "no data" if self.value is None else f"{self.value:.4g}"
        verdict = "RECOVERED" if self.recovered else "NOT RECOVERED"
        return (
            f"{verdict}: {self.model} {self.sli}{' ' + self.measure if self.measure else ''}"
            f" = {value} ({self.threshold}) after "
            f"{self.elapsed:.0f}s, {self.reads} reads; watched {self.origin}"
        )


ProgressCallback = Callable[[float | None, float, float], None]
"""Called after every read with (value, seconds elapsed, window)."""


async def watch_recovery(
    ctx: ActionContext,
    model: str,
    target: WatchTarget | None = None,
    *,
    on_read: ProgressCallback | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Recovery:
    """Read ``target`` (default: ``actions.verify.sli``) every ``verify.every`` seconds
    for up to ``verify.window``; recovered once ``verify.consecutive`` reads in a row
    are good. When nothing can be watched, the verdict says so at once."""
    cfg = ctx.config.actions.verify
    target = target or watch_target(ctx.config)
    adapter = ctx.adapters.get(target.source or "")
    problem = target.problem
    if problem is None and (target.good is None or not isinstance(adapter, MetricsAdapter)):
        problem = f"the metrics source {target.source!r} of {target.sli} is not loaded"
    if problem is not None or target.good is None or not isinstance(adapter, MetricsAdapter):
        return Recovery(
            model,
            target.sli,
            target.query,
            target.threshold,
            recovered=False,
            value=None,
            elapsed=0.0,
            reads=0,
            error=problem,
            origin=target.origin,
            watched=False,
            measure=target.measure,
        )
    good = target.good
    label = ctx.config.model_label
    # The model's series alone, not every model's, at each read of the watch.
    query = select_series(target.query, label, model) or target.query
    start = clock()
    streak = reads = 0
    value: float | None = None
    error: str | None = None
    while True:
        elapsed = clock() - start
        try:
            result = await adapter.query(query)
            error = None
            value = next((s.value for s in result.samples if s.labels.get(label) == model), None)
        except AdapterError as exc:
            value, error = None, ctx.redact(str(exc))
        reads += 1
        ok = value is not None and not math.isnan(value) and good(value)
        streak = streak + 1 if ok else 0
        if on_read is not None:
            on_read(value, elapsed, cfg.window)
        done = streak >= cfg.consecutive
        if done or elapsed >= cfg.window:
            return Recovery(
                model,
                target.sli,
                target.query,
                target.threshold,
                recovered=done,
                value=value,
                elapsed=elapsed,
                reads=reads,
                error=None if done else error,
                origin=target.origin,
                measure=target.measure,
            )
        await sleep(min(cfg.every, max(0.0, cfg.window - elapsed)) or cfg.every)
