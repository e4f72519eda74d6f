"""PromQL syntax, checked before a page needs it: ``check-config`` and ``runbook
validate`` parse every expression of the config's SLIs and the runbooks' checks.

Two parsers can do it, both Prometheus' own:

* ``promtool`` on PATH: every expression becomes a recording rule of one generated
  rules file, and one ``promtool check rules`` run reports each that does not parse
  (a few milliseconds for hundreds of expressions, and no server needed);
* else a reachable Prometheus: ``/api/v1/format_query`` parses without evaluating
  (Prometheus 2.42 has no ``parse_query``), falling back to an instant query at
  time 0 where that endpoint is missing; a parse error is a 400 ``bad_data``.

When neither is there, :class:`SyntaxReport` says that syntax was not checked.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from console.config.located import Issue

if TYPE_CHECKING:
    from adapters.base import MetricsAdapter
    from console.config.located import Located
    from console.config.models import Config
    from console.triage.runbook import Runbook

PROMTOOL_TIMEOUT = 60.0
"""Seconds one ``promtool check rules`` run may take before it counts as unavailable."""
_RULE = "mlconsole_check_"
_PROMTOOL_ERROR = re.compile(
    rf'"{_RULE}(\d+)": could not parse expression: (?:(\d+:\d+): )?(?:parse error: )?(.*)$'
)
_INVALID_PARAMETER = re.compile(r'^invalid parameter "query": (?:(\d+:\d+): )?(?:parse error: )?')
HINT = "fix the PromQL; the position after 'at' counts within the expression"


@dataclass(frozen=True, slots=True)
class Expression:
    """One PromQL expression and where it is written."""

    file: str
    line: int
    col: int
    key: str
    text: str


@dataclass(slots=True)
class SyntaxReport:
    """The expressions that do not parse, and what parsed them (None: not checked)."""

    issues: list[Issue] = field(default_factory=list)
    checked_by: str | None = None
    why_not: str = ""
    """Why syntax was not checked, when it was not."""

    def line(self, count: int) -> str:
        """One line for the command's output: what was checked, by what, or why not."""
        if self.checked_by is None:
            return f"PromQL syntax NOT checked ({count} expression(s)): {self.why_not}"
        return f"PromQL syntax checked by {self.checked_by} ({count} expression(s))"


def _issue(expression: Expression, where: str | None, message: str) -> Issue:
    at = f" at {where}" if where else ""
    return Issue(
        expression.file,
        expression.line,
        expression.col,
        expression.key,
        f"PromQL does not parse{at}: {message.strip()}",
        HINT,
    )


def check_with_promtool(expressions: Sequence[Expression], promtool: str) -> SyntaxReport | None:
    """One ``promtool check rules`` run for every expression; None if it cannot run."""
    rules = "\n".join(
        f"      - record: {_RULE}{i}\n        expr: {json.dumps(e.text)}"
        for i, e in enumerate(expressions)
    )
    with tempfile.TemporaryDirectory(prefix="mlconsole-promql-") as tmp:
        path = Path(tmp) / "rules.yml"
        path.write_text(f"groups:\n  - name: mlconsole\n    rules:\n{rules}\n", encoding="utf-8")
        try:
            done = subprocess.run(
                [promtool, "check", "rules", str(path)],
                capture_output=True,
                text=True,
                timeout=PROMTOOL_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
    issues = []
    for text in (done.stdout + "\n" + done.stderr).splitlines():
        found = _PROMTOOL_ERROR.search(text)
        if found and int(found.group(1)) < len(expressions):
            issues.append(_issue(expressions[int(found.group(1))], found.group(2), found.group(3)))
    if done.returncode != 0 and not issues:
        return None  # it failed for a reason of its own: say syntax was not checked
    return SyntaxReport(issues, "promtool")


async def check_with_prometheus(
    expressions: Sequence[Expression], metrics: MetricsAdapter
) -> SyntaxReport:
    """Ask a Prometheus to parse each expression. Raises AdapterError when it cannot
    be asked (down, or it has no parser to offer)."""
    issues = []
    for expression in expressions:
        error = await metrics.parse_error(expression.text)
        if error is not None:
            found = _INVALID_PARAMETER.match(error)
            where = found.group(1) if found else None
            issues.append(_issue(expression, where, error[found.end() :] if found else error))
    return SyntaxReport(issues, f"Prometheus ({metrics.name})")


async def check_syntax(
    expressions: Sequence[Expression],
    *,
    config: Config | None = None,
    promtool: str | None = None,
) -> SyntaxReport:
    """Parse every expression once: with ``promtool`` (found on PATH unless given),
    else with the config's first Prometheus; a report saying why not when neither can."""
    if not expressions:
        return SyntaxReport(checked_by="nothing to check")
    tool = promtool if promtool is not None else shutil.which("promtool")
    reasons = []
    if tool:
        report = await asyncio.to_thread(check_with_promtool, expressions, tool)
        if report is not None:
            return report
        reasons.append(f"{tool} check rules failed")
    else:
        reasons.append("no promtool on PATH")
    report = await _with_config_prometheus(expressions, config, reasons)
    return report or SyntaxReport(why_not="; ".join(reasons))


async def _with_config_prometheus(
    expressions: Sequence[Expression], config: Config | None, reasons: list[str]
) -> SyntaxReport | None:
    from adapters.base import AdapterError, MetricsAdapter
    from console.sources.build import build_adapters

    if config is None:
        reasons.append("no config, so no Prometheus to ask")
        return None
    adapters, _ = build_adapters(config)
    try:
        metrics = [a for a in adapters.values() if isinstance(a, MetricsAdapter)]
        if not metrics:
            reasons.append("no Prometheus configured")
            return None
        try:
            return await check_with_prometheus(expressions, metrics[0])
        except (AdapterError, NotImplementedError) as exc:
            reasons.append(f"Prometheus not usable: {exc}")
            return None
    finally:
        for adapter in adapters.values():
            await adapter.aclose()


def config_expressions(config: Config, located: Located) -> list[Expression]:
    """Every SLI's ``query`` and SLO ``error_ratio_query``, at its place in the file."""
    out = []
    for index, sli in enumerate(config.slis):
        fields = [("query", sli.query)]
        if sli.slo is not None and sli.slo.error_ratio_query:
            fields.append(("slo.error_ratio_query", sli.slo.error_ratio_query))
        for name, text in fields:
            loc: tuple[str | int, ...] = ("slis", index, *name.split("."))
            line, col = located.position(loc)
            out.append(Expression(located.file, line, col, f"slis[{index}].{name}", text))
    return out


def runbook_expressions(runbook: Runbook, located: Located) -> list[Expression]:
    """Every check step's query, rendered with stand-in labels and the runbook's own
    vars (a template is escaped for where it stands, so the rest parses as written)."""
    from console.triage.runbook import TEMPLATE, CheckStep, TemplateError, render

    out = []
    for index, step in enumerate(runbook.steps):
        if not isinstance(step, CheckStep):
            continue
        labels = {m.group(2): "x" for m in TEMPLATE.finditer(step.query) if m.group(1) == "labels"}
        try:
            text = render(step.query, labels, runbook.vars, promql=True)
        except TemplateError:
            continue  # runbook validate reports the template itself
        line, col = located.position(("steps", index, "query"))
        out.append(Expression(located.file, line, col, f"steps[{index}].query", text))
    return out
