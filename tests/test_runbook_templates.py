"""Template values are escaped for the position they stand in, or the runbook is refused
with a located message: PromQL single-quoted strings, regex matchers, backtick strings,
label values outside strings, and link hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.cli.main import main
from console.promql import regex_escape
from console.triage.runbook import TemplateError, promql_placements, render
from console.triage.validate import validate_runbook_text

INJECT_DOUBLE = 'x" or vector(1) or "'
INJECT_SINGLE = "x' or vector(1) or '"


def promql(text: str, **labels: str) -> str:
    return render(text, labels, {"window": "5m"}, promql=True)


def test_a_single_quoted_value_cannot_close_its_string() -> None:
    query = "up{model='{{ labels.model }}'}"
    assert promql(query, model=INJECT_SINGLE) == "up{model='x\\' or vector(1) or \\''}"
    # Every quote of the value is escaped: the string still ends where the runbook ends it.
    assert promql("up{model='{{ labels.model }}'} == 1", model="a'b\\'c\nd") == (
        "up{model='a\\'b\\\\\\'c\\nd'} == 1"
    )


def test_a_double_quoted_value_cannot_close_its_string() -> None:
    assert promql('up{model="{{ labels.model }}"}', model=INJECT_DOUBLE) == (
        'up{model="x\\" or vector(1) or \\""}'
    )
    # A single quote inside a double-quoted string needs no escape.
    assert promql('up{model="{{ labels.model }}"}', model="it's") == 'up{model="it\'s"}'


@pytest.mark.parametrize(
    ("query", "rendered"),
    [
        ('up{model=~"{{ labels.model }}"}', 'up{model=~"\\\\.\\\\*"}'),
        ("up{model!~ '{{ labels.model }}'}", "up{model!~ '\\\\.\\\\*'}"),
        ('up{model=~"{{ labels.model }}|canary"}', 'up{model=~"\\\\.\\\\*|canary"}'),
        ('up{model="{{ labels.model }}"}', 'up{model=".*"}'),  # not a regex: literal already
    ],
)
def test_a_regex_matcher_value_matches_only_itself(query: str, rendered: str) -> None:
    assert promql(query, model=".*") == rendered


def test_regex_escape_quotes_every_re2_metacharacter() -> None:
    assert regex_escape("a.b*c+d?(e)[f]{g}|h^i$j\\k") == (
        "a\\.b\\*c\\+d\\?\\(e\\)\\[f\\]\\{g\\}\\|h\\^i\\$j\\\\k"
    )


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("up{model=`{{ labels.model }}`}", "backtick string"),
        ("up + {{ labels.model }}", "outside any string"),
        ("up # {{ labels.model }}", "in a comment"),
    ],
)
def test_no_safe_escape_means_no_render(query: str, why: str) -> None:
    with pytest.raises(TemplateError, match=why):
        promql(query, model="x")


def test_vars_may_stand_bare_and_strings_end_where_they_end() -> None:
    query = 'rate(x{a="\\"{{ labels.model }}", b=`{`}[{{ vars.window }}]) # "'
    placements = promql_placements(query)
    assert [(p.scope, p.position) for p in placements] == [("labels", "double"), ("vars", "bare")]
    assert promql(query, model="m") == 'rate(x{a="\\"m", b=`{`}[5m]) # "'


def test_a_link_label_is_url_encoded_and_never_the_host() -> None:
    url = "https://grafana.example/d/abc?var-model={{ labels.model }}"
    assert render(url, {"model": "a b&c=d"}, {}, url=True) == (
        "https://grafana.example/d/abc?var-model=a%20b%26c%3Dd"
    )
    with pytest.raises(TemplateError, match="scheme or host"):
        render("https://{{ labels.model }}/x", {"model": "evil.example"}, {}, url=True)
    with pytest.raises(TemplateError, match="scheme or host"):
        render("https://grafana.{{ labels.model }}.io/x", {"model": "a"}, {}, url=True)
    # The runbook's own vars, and the configured metrics source, may name the host.
    assert render("{{ vars.grafana }}/d", {}, {"grafana": "https://g.example"}, url=True) == (
        "https://g.example/d"
    )
    graph = '{{ metrics.url }}/graph?g0.expr=up{model="{{ labels.model }}"}'
    metrics = {"url": "http://prom.example:9090"}
    assert render(graph, {"model": 'a"b'}, {}, url=True, metrics=metrics) == (
        'http://prom.example:9090/graph?g0.expr=up{model="a%22b"}'
    )


RUNBOOK = """\
id: positions
title: Templates in every position
labels: [model, host]
match:
  - alertname: X
steps:
  - id: single
    kind: check
    query: "up{{model='{{{{ labels.model }}}}'}}"
    condition: "> 0"
    on_true: {next}
    on_false: {next}
{extra}
  - id: done
    kind: conclude
    cause: unknown
    summary: done
"""


def runbook(extra: str) -> str:
    return RUNBOOK.format(next="bad" if extra else "done", extra=extra)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            "    kind: check\n    query: 'up{model=`{{ labels.model }}`}'\n"
            '    condition: "> 0"\n    on_true: done\n    on_false: done',
            "steps[1].query: template {{ labels.model }} stands in a backtick string",
        ),
        (
            "    kind: check\n    query: 'up > {{ labels.model }}'\n"
            '    condition: "> 0"\n    on_true: done\n    on_false: done',
            "steps[1].query: template {{ labels.model }} stands outside any string",
        ),
        (
            "    kind: link\n    url: 'https://{{ labels.host }}/dashboards'\n    next: done",
            "steps[1].url: template {{ labels.host }} stands in the URL's scheme or host",
        ),
    ],
)
def test_validate_refuses_an_unsafe_position_with_its_location(
    step: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "positions.yaml"
    path.write_text(runbook(f"  - id: bad\n{step}"), encoding="utf-8")

    assert main(["runbook", "validate", str(path)]) == 2

    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if message in line)
    assert line.startswith(f"{path}:15:")  # the line of the offending field
    assert "hint:" in line or "(hint" in line


def test_validate_accepts_escapable_positions() -> None:
    extra = (
        "  - id: bad\n    kind: check\n"
        "    query: 'up{model=~\"{{ labels.model }}\"}'\n"
        '    condition: "> 0"\n    on_true: link\n    on_false: link\n'
        "  - id: link\n    kind: link\n"
        "    url: 'https://grafana.example/d?model={{ labels.model }}'\n    next: done"
    )
    found, issues = validate_runbook_text(runbook(extra), "positions.yaml")
    assert issues == []
    assert found is not None
