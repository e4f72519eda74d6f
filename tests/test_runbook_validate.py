"""Runbooks: located errors for broken files, the step graph, templates, the CLI, fuzzing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.cli.main import main
from console.config.located import ConfigError
from console.triage.runbook import (
    LinkStep,
    Runbook,
    TemplateError,
    evaluate,
    parse_condition,
    promql_escape,
    render,
)
from console.triage.validate import (
    find_runbook_files,
    load_runbook,
    validate_runbook_file,
    validate_runbook_text,
)

# Line numbers matter: the broken cases below point at them.
GOOD = """\
id: model-errors
title: Model error rate is high
owner: ml-platform
match:
  - alertname: ModelErrorBudgetBurn
  - alertname: {regex: "Model.*Errors"}
labels: [model]
vars:
  window: 5m
steps:
  - id: start
    kind: check
    title: Errors by version
    query: sum by (version) (rate(model_errors_total{model="{{ labels.model }}"}[{{ vars.window }}]))
    condition: "> 0.05"
    on_true: ask-deploy
    on_false: data
  - id: ask-deploy
    kind: ask
    question: Was there a deploy in the last hour?
    choices:
      - {label: "Yes", next: rollback}
      - {label: "No", next: dashboard}
  - id: rollback
    kind: action
    action: rollback
    params: {model: "{{ labels.model }}"}
    next: model
  - id: dashboard
    kind: link
    url: https://grafana.example/d/model?var-model={{ labels.model }}
    next: recheck
  - id: recheck
    kind: ask
    question: Still failing?
    choices:
      - {label: "Yes, check again", next: start}
      - {label: "No, it was data", next: data}
  - id: model
    kind: conclude
    cause: model
    summary: A bad model version; rolled back.
  - id: data
    kind: note
    text: |
      Check the feature pipeline for {{ labels.model }}.
    next: data-end
  - id: data-end
    kind: conclude
    cause: data
    summary: Upstream data problem.
"""

LOCATED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<rest>.+)$")


def _replace(old: str, new: str) -> str:
    assert GOOD.count(old) == 1, old
    return GOOD.replace(old, new)


# (name, broken runbook, expected line, a word the message on that line must contain)
# fmt: off
BROKEN = [
    ("yaml-syntax", _replace("    summary: Upstream data problem.", "    summary: [oops"), 52, "YAML syntax"),
    ("not-a-mapping", "- id: x\n- title: y\n", 1, "mapping"),
    ("empty", "# nothing yet\n", 1, "empty"),
    ("unknown-top-key", _replace("owner: ml-platform", "ownr: ml-platform"), 3, "owner"),
    ("unknown-step-key", _replace("    on_false: data\n", "    on_false: data\n    on_flase: x\n"), 18, "on_false"),
    ("unknown-choice-key", _replace('{label: "Yes", next: rollback}', '{label: "Yes", nxt: rollback}'), 22, "next"),
    ("missing-field", _replace("    summary: A bad model version; rolled back.\n", ""), 39, "summary"),
    ("unknown-kind", _replace("    kind: link", "    kind: lnk"), 30, "link"),
    ("missing-kind", _replace("    kind: link\n", ""), 29, "kind"),
    ("bad-condition", _replace('"> 0.05"', '"above 5%"'), 15, "condition"),
    ("bad-step-id", _replace("  - id: recheck", "  - id: Re Check"), 33, "name"),
    ("bad-url", _replace("url: https://grafana", "url: grafana"), 31, "URL"),
    ("too-few-choices", _replace('      - {label: "No", next: dashboard}\n', ""), 22, "at least 2"),
    ("var-not-a-string", _replace("  window: 5m", "  window: 5"), 9, "quotes"),
    ("match-not-a-string", _replace("  - alertname: ModelErrorBudgetBurn", "  - alertname: [a, b]"), 5, "string"),
    ("dangling-branch", _replace("    on_false: data", "    on_false: dta"), 17, "not a step"),
    ("dangling-choice", _replace("next: dashboard}", "next: dashbord}"), 23, "dashboard"),
    ("dangling-next", _replace("    next: data-end", "    next: the-end"), 47, "not a step"),
    ("duplicate-step-id", _replace("  - id: data-end", "  - id: model"), 48, "duplicate"),
    ("unreachable-step", GOOD + "  - id: orphan\n    kind: conclude\n    cause: infra\n    summary: x\n", 52, "unreachable"),
    ("loop-without-ask", _replace("    next: data-end", "    next: data"), 47, "loop"),
    ("loop-of-two-without-ask", _replace("    next: recheck", "    next: start").replace("next: dashboard}", "next: start}").replace("    on_true: ask-deploy", "    on_true: dashboard"), 32, "no ask step"),
    (
        "never-concludes",
        _replace("    next: data-end", "    next: confirm")
        + '  - id: confirm\n    kind: ask\n    question: Fixed?\n    choices:\n      - {label: "No", next: data}\n      - {label: "Not yet", next: confirm}\n',
        43,
        "conclude",
    ),
    ("undefined-var", _replace("{{ vars.window }}", "{{ vars.windw }}"), 14, "windw"),
    ("undefined-label", _replace("      Check the feature pipeline for {{ labels.model }}.", "      Check the feature pipeline for {{ labels.team }}."), 45, "team"),
    ("template-expression", _replace("{{ vars.window }}", "{{ 1+1 }}"), 14, "not allowed"),
    ("template-attribute", _replace('params: {model: "{{ labels.model }}"}', 'params: {model: "{{ labels.model.__class__ }}"}'), 27, "not allowed"),
    ("template-unclosed", _replace("var-model={{ labels.model }}", "var-model={{ labels.model }"), 31, "{{"),
    ("invalid-regex", _replace('"Model.*Errors"', '"Model(.*Errors"'), 6, "regex"),
    ("empty-match-alternative", _replace("  - alertname: ModelErrorBudgetBurn", "  - {}"), 5, "every alert"),
    ("env-reference", _replace("    summary: Upstream data problem.", "    summary: Upstream ${HOME} problem."), 51, "environment"),
    ("duplicate-yaml-key", _replace("    cause: model\n", "    cause: model\n    cause: data\n"), 42, "duplicate key"),
    ("alias-bomb", "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}' if i > 1 else '*a'] * 9)}]\n" for i in range(1, 7)), 6, "aliases"),
]
# fmt: on


@pytest.mark.parametrize(("name", "text", "line", "word"), BROKEN, ids=[b[0] for b in BROKEN])
def test_validate_locates_every_kind_of_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, line: int, word: str
) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    code = main(["runbook", "validate", str(path)])
    out = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in out.out + out.err
    located = [m for m in map(LOCATED.match, out.out.splitlines()) if m]
    assert located, out.out
    assert all(m["file"] == str(path) for m in located)
    on_line = [m["rest"] for m in located if int(m["line"]) == line]
    assert on_line, out.out
    assert any(word.lower() in rest.lower() for rest in on_line), out.out
    assert "OK" not in out.out


def test_issues_are_sorted_and_hinted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rb.yaml"
    path.write_text(
        _replace("{{ vars.window }}", "{{ vars.windw }}").replace("on_false: data", "on_false: dta")
    )
    assert main(["runbook", "validate", str(path)]) == 2
    lines = [m for m in map(LOCATED.match, capsys.readouterr().out.splitlines()) if m]
    assert [int(m["line"]) for m in lines] == sorted(int(m["line"]) for m in lines)
    text = "\n".join(m["rest"] for m in lines)
    assert "did you mean `window`?" in text
    assert "did you mean `data`?" in text


def test_good_runbook_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    assert main(["runbook", "validate", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"{path}: OK (8 steps)"
    runbook = load_runbook(path)
    assert runbook.id == "model-errors" and runbook.start == "start"
    assert validate_runbook_file(path) == (runbook, [])


def test_runbook_without_match_is_fine(tmp_path: Path) -> None:
    # Nothing matches it, but an alert can name it by id.
    text = _replace("  - alertname: ModelErrorBudgetBurn\n", "").replace(
        '  - alertname: {regex: "Model.*Errors"}\n', ""
    )
    text = text.replace("match:\n", "")
    path = tmp_path / "byid.yaml"
    path.write_text(text)
    runbook, issues = validate_runbook_file(path)
    assert issues == [] and runbook is not None and runbook.match == []


def test_load_runbook_raises_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(_replace("    on_false: data", "    on_false: dta"))
    with pytest.raises(ConfigError) as info:
        load_runbook(path)
    (issue, *_) = info.value.issues
    assert (issue.line, issue.col, issue.key) == (17, 15, "steps[0].on_false")
    with pytest.raises(ConfigError, match="not found"):
        load_runbook(tmp_path / "missing.yaml")


def test_directories_and_duplicate_runbook_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    team, shipped = tmp_path / "team", tmp_path / "shipped"
    (team / "sub").mkdir(parents=True)
    shipped.mkdir()
    (team / "a.yaml").write_text(GOOD)
    (team / "b.yml").write_text(GOOD.replace("id: model-errors", "id: other"))
    (team / "sub" / "c.yaml").write_text("not: a runbook")  # the catalog does not look here
    (team / "notes.txt").write_text("ignored")
    (shipped / "a.yaml").write_text(GOOD)  # same id in another directory: an override
    assert find_runbook_files(team) == [team / "a.yaml", team / "b.yml"]
    assert main(["runbook", "validate", str(team), str(shipped), str(team / "a.yaml")]) == 0
    assert capsys.readouterr().out.count("OK (8 steps)") == 3

    (team / "copy.yaml").write_text(GOOD)
    assert main(["runbook", "validate", str(team)]) == 2
    out = capsys.readouterr().out
    assert f"{team / 'copy.yaml'}:1:5: id: runbook id 'model-errors' is also used by" in out

    (tmp_path / "empty").mkdir()
    assert main(["runbook", "validate", str(tmp_path / "empty"), str(tmp_path / "nope.yaml")]) == 2
    out = capsys.readouterr().out
    assert "no runbook files" in out and "runbook file not found" in out


def test_shipped_runbooks_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    shipped = Path(__file__).parent.parent / "runbooks"
    if not find_runbook_files(shipped) or not shipped.is_dir():
        pytest.skip("no shipped runbooks")
    assert main(["runbook", "validate", str(shipped)]) == 0, capsys.readouterr().out


def test_unreadable_files_are_issues(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    assert main(["runbook", "validate", str(tmp_path / "bin.yaml")]) == 2
    out = capsys.readouterr()
    assert "cannot read" in out.out and "Traceback" not in out.out + out.err


def test_runbook_needs_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["runbook"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["runbook", "validate"])
    assert info.value.code == 2


def test_schema_is_json_with_steps(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runbook", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"] == "mlconsole runbook"
    assert "steps" in schema["properties"] and "steps" in schema["required"]
    kinds = {name for name in schema["$defs"] if name.endswith("Step")}
    assert kinds == {"CheckStep", "AskStep", "ActionStep", "NoteStep", "LinkStep", "ConcludeStep"}
    # Field docs reach editors.
    assert "first step" in schema["properties"]["steps"]["description"]


def test_importing_the_cli_module_is_cheap() -> None:
    probe = (
        "import console.cli.runbook, sys; "
        "print(' '.join(m for m in sys.modules if m.startswith(('console.triage.runbook', 'console.cli.runbook', 'textual'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["console.cli.runbook"]


# --- templates, conditions, matching --------------------------------------------------------


def test_render_substitutes_and_escapes_for_promql() -> None:
    query = 'up{model="{{ labels.model }}", w="{{vars.w}}"}'
    labels = {"model": 'a"b\\c\nd'}
    assert render(query, labels, {"w": "5m"}, promql=True) == 'up{model="a\\"b\\\\c\\nd", w="5m"}'
    assert render(query, labels, {"w": "5m"}) == 'up{model="a"b\\c\nd", w="5m"}'
    assert promql_escape('\\"') == '\\\\\\"'


def test_render_raises_for_undefined_variables() -> None:
    with pytest.raises(TemplateError, match=r"labels\.model"):
        render("{{ labels.model }}", {}, {})
    with pytest.raises(TemplateError, match=r"vars\.window"):
        render("{{ vars.window }}", {"window": "5m"}, {})


def test_render_evaluates_nothing() -> None:
    for text in ("{{ 1+1 }}", "{{ labels.model.__class__ }}", "{{ labels['model'] }}", "{{}}"):
        assert render(text, {"model": "m"}, {}) == text
    # Substitution is one pass: a value that looks like a template stays as it is.
    assert render("{{ labels.a }}", {"a": "{{ vars.b }}"}, {"b": "x"}) == "{{ vars.b }}"
    _, issues = validate_runbook_text(_replace("{{ vars.window }}", "{{ 1+1 }}"), "rb.yaml")
    assert any("not allowed" in i.message for i in issues)


@pytest.mark.parametrize(
    ("condition", "parsed"),
    [
        ("> 0.25", (">", 0.25)),
        ("==0", ("==", 0.0)),
        ("  >= 1e-3 ", (">=", 0.001)),
        ("!= -2", ("!=", -2.0)),
        ("< .5", ("<", 0.5)),
        ("absent", ("absent", None)),
        ("present", ("present", None)),
    ],
)
def test_parse_condition(condition: str, parsed: tuple[str, float | None]) -> None:
    assert parse_condition(condition) == parsed


@pytest.mark.parametrize("condition", ["", "big", "> x", "=> 1", "> 1 and < 2", "absent > 1"])
def test_parse_condition_rejects(condition: str) -> None:
    with pytest.raises(ValueError):
        parse_condition(condition)


@pytest.mark.parametrize(
    ("condition", "values", "holds"),
    [
        ("> 0.25", [0.1, 0.3], True),
        ("> 0.25", [0.1, 0.25], False),
        ("> 0.25", [], False),
        ("== 0", [0.0], True),
        ("!= 0", [0.0, 0.0], False),
        ("<= 1", [2.0, 1.0], True),
        ("absent", [], True),
        ("absent", [0.0], False),
        ("present", [0.0], True),
        ("present", [], False),
    ],
)
def test_evaluate(condition: str, values: list[float], holds: bool) -> None:
    assert evaluate(condition, values) is holds


def test_runbook_matches_exact_and_regex() -> None:
    runbook = Runbook.model_validate(
        {
            "id": "rb",
            "title": "t",
            "match": [
                {"alertname": "ModelErrors", "severity": "page"},
                {"alertname": {"regex": "Drift.*"}},
            ],
            "steps": [{"id": "end", "kind": "conclude", "cause": "unknown", "summary": "s"}],
        }
    )
    assert runbook.matches({"alertname": "ModelErrors", "severity": "page", "model": "m"})
    assert not runbook.matches({"alertname": "ModelErrors", "severity": "ticket"})
    assert not runbook.matches({"alertname": "ModelErrors"})
    assert runbook.matches({"alertname": "DriftHigh"})
    assert not runbook.matches({"alertname": "FeatureDriftHigh"})  # full match, not search
    assert not runbook.matches({})
    assert not Runbook.model_validate({**runbook.model_dump(), "match": []}).matches({"a": "b"})
    broken = Runbook.model_validate({**runbook.model_dump(), "match": [{"a": {"regex": "("}}]})
    assert not broken.matches({"a": "("})  # an invalid regex matches nothing


# --- fuzzing -----------------------------------------------------------------------------------

yaml_ish = st.text(
    alphabet=st.sampled_from(list("idtlsepkn:-[]{}\"'#&*!|>%@`\n\t ,.?=<01${}_abcvrqu")),
    max_size=300,
)


def _check_result(text: str) -> None:
    runbook, issues = validate_runbook_text(text, "fuzz.yaml")
    assert (runbook is None) == bool(issues)
    for issue in issues:
        assert issue.line >= 1 and issue.col >= 1 and issue.message, issue
        str(issue)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(yaml_ish, st.text(max_size=200)))
def test_fuzz_text_never_raises(text: str) -> None:
    _check_result(text)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
STEP_KEYS = [
    "id", "kind", "title", "query", "condition", "on_true", "on_false", "question", "choices",
    "action", "params", "text", "url", "next", "cause", "summary", "x",
]  # fmt: skip
KINDS = ["check", "ask", "action", "note", "link", "conclude", "other"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    top=st.dictionaries(
        st.sampled_from(["id", "title", "match", "labels", "vars", "version", "owner", "y"]),
        values,
        max_size=6,
    ),
    steps=st.lists(
        st.fixed_dictionaries(
            {"kind": st.sampled_from(KINDS)},
            optional={
                k: st.one_of(values, st.sampled_from(["a", "b", "> 1", "{{ x }}"]))
                for k in STEP_KEYS
                if k != "kind"
            },
        ),
        max_size=4,
    ),
)
def test_fuzz_structured_wrong_runbooks(top: dict[str, object], steps: list[object]) -> None:
    _check_result(yaml.safe_dump({**top, "steps": steps}))


def _step(kind: str, step_id: str, targets: list[str]) -> dict[str, object]:
    base: dict[str, object] = {"id": step_id, "kind": kind}
    if kind == "check":
        return {
            **base,
            "query": "up",
            "condition": "> 0",
            "on_true": targets[0],
            "on_false": targets[1],
        }
    if kind == "ask":
        return {**base, "question": "?", "choices": [{"label": t, "next": t} for t in targets]}
    if kind == "conclude":
        return {**base, "cause": "infra", "summary": "s"}
    return {**base, "text": "t", "next": targets[0]}


ids = st.sampled_from(["a", "b", "c", "d", "e", "zz"])  # "zz" is never defined


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    graph=st.lists(
        st.tuples(
            st.sampled_from(["check", "ask", "note", "conclude"]),
            st.sampled_from(["a", "b", "c", "d", "e"]),
            st.lists(ids, min_size=2, max_size=3),
        ),
        min_size=1,
        max_size=7,
    )
)
def test_fuzz_step_graphs(graph: list[tuple[str, str, list[str]]]) -> None:
    """Any graph of well-formed steps is checked without error, and the checker agrees with
    a naive one: a runbook passes exactly when its ids are unique, every branch names a
    step, every step is reachable and can reach a conclude step, and no loop lacks an ask."""
    document = {"id": "g", "title": "g", "steps": [_step(k, i, t) for k, i, t in graph]}
    runbook, issues = validate_runbook_text(yaml.safe_dump(document, sort_keys=False), "g.yaml")
    assert (runbook is None) == bool(issues)
    for issue in issues:
        assert issue.line >= 1, issue
    assert (runbook is not None) == _naive_verdict(graph), issues


def _naive_verdict(graph: list[tuple[str, str, list[str]]]) -> bool:
    kinds = {step_id: kind for kind, step_id, _ in graph}
    edges = {
        step_id: ([] if kind == "conclude" else targets[:2] if kind != "ask" else targets)
        for kind, step_id, targets in graph
    }
    edges = {s: ts[:1] if kinds[s] == "note" else ts for s, ts in edges.items()}
    if len(edges) != len(graph) or any(t not in edges for ts in edges.values() for t in ts):
        return False

    def reach(start: str) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for target in edges[todo.pop()]:
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    concludes = {s for s, k in kinds.items() if k == "conclude"}
    if reach(graph[0][1]) != set(edges) or not all(reach(s) & concludes for s in edges):
        return False
    # With the ask steps taken out, the graph must have no cycle: peel off the leaves.
    auto = {s: [t for t in ts if kinds[t] != "ask"] for s, ts in edges.items() if kinds[s] != "ask"}
    while auto:
        leaves = {s for s, ts in auto.items() if not ts}
        if not leaves:
            return False
        auto = {s: [t for t in ts if t not in leaves] for s, ts in auto.items() if s not in leaves}
    return True


def _long_runbook(steps: int) -> str:
    """A runbook of ``steps`` note steps in a row, then a conclusion: big, no aliases."""
    lines = ["id: long", "title: Long", "steps:"]
    for i in range(steps - 1):
        lines += [f"  - id: s{i}", "    kind: note", f"    text: step {i}", f"    next: s{i + 1}"]
    lines += [f"  - id: s{steps - 1}", "    kind: conclude", "    cause: data", "    summary: done"]
    return "\n".join(lines) + "\n"


def test_a_big_runbook_without_aliases_is_not_refused_for_aliases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(_long_runbook(10_001))
    code = main(["runbook", "validate", str(path)])
    out = capsys.readouterr().out
    assert "alias" not in out, out
    assert code == 0, out
    assert out.strip() == f"{path}: OK (10001 steps)"


def test_aliases_are_counted_by_what_they_add_not_by_the_file_size() -> None:
    from console.config.loader import MAX_ALIAS_VALUES, alias_problem

    # 120,000 values written out and six aliases to a small list: nothing to refuse.
    honest = "big: [" + ", ".join(["x"] * 120_000) + "]\nsmall: &s [a, b]\n"
    honest += "".join(f"r{i}: *s\n" for i in range(6))
    assert alias_problem(yaml.compose(honest)) is None
    # One alias that repeats MAX_ALIAS_VALUES + 1 values is one too many.
    repeated = "one: &one [" + ", ".join(["x"] * MAX_ALIAS_VALUES) + "]\ntwo: *one\n"
    problem = alias_problem(yaml.compose(repeated))
    assert problem is not None and "more than 100000 values" in problem[1]


def test_links_on_the_metrics_source_follow_the_config() -> None:
    shipped = Path(__file__).resolve().parents[1] / "runbooks"
    links = 0
    for path in sorted(shipped.glob("*.yaml")):
        runbook, issues = validate_runbook_file(path)
        assert runbook is not None, issues
        for step in runbook.steps:
            if isinstance(step, LinkStep) and "/graph?" in step.url:
                links += 1
                url = render(
                    step.url,
                    {name: "m" for name in runbook.known_labels()},
                    runbook.vars,
                    metrics={"url": "https://prom.example.com"},
                )
                # No shipped runbook names a host or port: the config's source does.
                assert url.startswith("https://prom.example.com/graph?"), (path.name, step.id)
    assert links >= 8


GRAFANA = "url: https://grafana.example/d/model?var-model={{ labels.model }}"


def test_metrics_templates_are_checked() -> None:
    good = validate_runbook_text(
        _replace(GRAFANA, "url: '{{ metrics.url }}/graph?g0.expr=up'"),
        "rb.yaml",
    )
    assert good[0] is not None and good[1] == []
    _, issues = validate_runbook_text(
        _replace(GRAFANA, "url: '{{ metrics.url }}/{{ metrics.x }}/g'"),
        "rb.yaml",
    )
    assert any("offers only {{ metrics.url }}" in i.message for i in issues)
    with pytest.raises(TemplateError, match="no metrics source"):
        render("{{ metrics.url }}/graph", {}, {})
