"""PromQL that does not parse is caught by ``check-config`` and ``runbook validate``,
at its file:line:col, by promtool or else by a real Prometheus; with neither, the
commands say syntax was not checked."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from console.cli.main import main
from tests.conftest import TEST_PORTS

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="no promtool")

CONFIG = """\
sources:
  prometheus:
    type: prometheus
    url: {url}
    timeout: 2
    retries: 0
slis:
  - name: errors
    query: sum by (model (rate(mlc_requests_total[1m]))
    objective: "< 0.01"
    slo:
      target: 0.99
      error_ratio_query: rate(mlc_requests_total)
  - name: good
    query: sum by (model) (rate(mlc_requests_total[1m]))
    objective: "< 0.01"
"""

RUNBOOK = """\
id: broken-query
title: Broken query
labels: [model]
steps:
  - id: first
    kind: check
    query: >-
      max by (model) (mlc_feature_drift_psi{{model="{{{{ labels.model }}}}"}}) {bad}
    condition: "> 0.25"
    on_true: done
    on_false: done
  - id: done
    kind: conclude
    cause: data
    summary: done
"""

LOCATED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<key>[^:]+): (?P<rest>.+)$")


def no_promtool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def errors(out: str) -> list[tuple[int, int, str, str]]:
    return [
        (int(m["line"]), int(m["col"]), m["key"], m["rest"])
        for m in map(LOCATED.match, out.splitlines())
        if m
    ]


@needs_promtool
def test_check_config_finds_bad_promql_with_promtool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(url="http://127.0.0.1:9"))  # nobody there: promtool alone
    assert main(["check-config", str(path)]) == 2
    out = capsys.readouterr().out
    found = errors(out)
    assert [(line, col, key) for line, col, key, _ in found] == [
        (9, 12, "slis[0].query"),
        (13, 26, "slis[0].slo.error_ratio_query"),
    ]
    assert 'at 1:15: unexpected "(" in grouping opts' in found[0][3]
    assert "expected type range vector" in found[1][3]
    assert "PromQL syntax checked by promtool (3 expression(s))" in out


@needs_promtool
def test_runbook_validate_finds_bad_promql_in_a_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad, good = tmp_path / "bad.yaml", tmp_path / "good.yaml"
    bad.write_text(RUNBOOK.format(bad="> > 1"))
    good.write_text(RUNBOOK.format(bad="> 1").replace("broken-query", "fine-query"))
    assert main(["runbook", "validate", str(bad), str(good)]) == 2
    out = capsys.readouterr().out
    ((line, col, key, message),) = errors(out)
    assert (line, col, key) == (7, 12, "steps[0].query")
    assert "PromQL does not parse" in message
    assert f"{good}: OK (2 steps)" in out
    assert "PromQL syntax checked by promtool (2 expression(s))" in out


def test_without_promtool_or_prometheus_it_says_syntax_was_not_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_promtool(tmp_path, monkeypatch)
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(url="http://127.0.0.1:9"))
    assert main(["check-config", str(path)]) == 0  # nothing else is wrong with it
    out = capsys.readouterr().out
    assert "PromQL syntax NOT checked (3 expression(s)): no promtool on PATH" in out
    assert "cannot connect" in out

    runbook = tmp_path / "bad.yaml"
    runbook.write_text(RUNBOOK.format(bad="> > 1"))
    assert main(["-c", str(path), "runbook", "validate", str(runbook)]) == 0
    assert "PromQL syntax NOT checked (1 expression(s))" in capsys.readouterr().out


def test_a_real_prometheus_parses_when_promtool_is_missing(
    lab: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    no_promtool(tmp_path, monkeypatch)
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(url=f"http://127.0.0.1:{TEST_PORTS[0]}"))
    assert main(["check-config", str(path)]) == 2
    out = capsys.readouterr().out
    assert [(line, col, key) for line, col, key, _ in errors(out)] == [
        (9, 12, "slis[0].query"),
        (13, 26, "slis[0].slo.error_ratio_query"),
    ]
    assert "checked by Prometheus (prometheus)" in out

    runbook = tmp_path / "bad.yaml"
    runbook.write_text(RUNBOOK.format(bad="> > 1"))
    assert main(["-c", str(path), "runbook", "validate", str(runbook)]) == 2
    ((line, col, key, _),) = errors(capsys.readouterr().out)
    assert (line, col, key) == (7, 12, "steps[0].query")


def test_check_config_shows_a_hostile_parse_error_and_config_text_inert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The parse error is the server's text, and a config key the file's: an escape
    sequence in either is shown as its escape, never sent to the terminal."""
    import json

    from tests.faultserver import Reply, fault_server

    no_promtool(tmp_path, monkeypatch)
    hostile = "\x1b]0;pwned\x07\x1b[2J all good"
    body = {"status": "error", "errorType": "bad_data", "error": f"parse error: {hostile}"}
    path = tmp_path / "config.yaml"
    with fault_server(Reply(status=400, body=json.dumps(body).encode())) as server:
        path.write_text(CONFIG.format(url=server.url))
        assert main(["check-config", str(path)]) == 2
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;pwned\\x07\\x1b[2J all good" in out

    path.write_text(CONFIG.format(url=server.url) + '"\\e]0;pwned\\a": 1\n')
    assert main(["check-config", str(path)]) == 2
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;pwned\\x07" in out
    assert main(["-c", str(path), "status"]) == 2  # the same issues, on stderr
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b]0;pwned\\x07" in err
