"""PromQL text: string literals, regex literals, and a query narrowed to one model's
series. Shared by the runbook templates, the actions' SLI watch and the incidents'
measures."""

from __future__ import annotations

import re


def promql_escape(value: str, quote: str = '"') -> str:
    """Escape a value for a PromQL string quoted with ``quote``: backslash, the quote,
    newline and carriage return."""
    value = value.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return value.replace("\n", "\\n").replace("\r", "\\r")


_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def select_series(query: str, label: str, value: str) -> str | None:
    """``query``, any PromQL expression, narrowed to its series whose ``label`` is
    ``value`` (with their own labels and values, at every step of a range query).

    ``label_replace(vector(1), ...)`` is one series carrying just that label, so
    ``and on(label)`` keeps the series of that value; Prometheus and VictoriaMetrics
    both evaluate it. The query ends on a line of its own, so a trailing ``#``
    comment ends there. ``$`` is doubled because ``label_replace`` expands ``$1``
    in its replacement. None when ``label`` cannot be named in ``on(...)`` (a name
    with ``.`` or ``-``) or ``value`` is empty (it would select the series without
    the label): read the whole query then."""
    if not value or _LABEL_NAME.match(label) is None:
        return None
    literal = promql_escape(value.replace("$", "$$"))
    return f'(\n{query}\n) and on({label}) label_replace(vector(1), "{label}", "{literal}", "", "")'


_REGEX_META = re.compile(r"[\\.+*?()|\[\]{}^$]")


def regex_escape(value: str) -> str:
    """``value`` as a literal in a Prometheus (RE2) regex: like Go's ``QuoteMeta``."""
    return _REGEX_META.sub(lambda m: "\\" + m.group(), value)
