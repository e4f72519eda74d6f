"""Config loading: located errors for broken files, env refs, lookup order, fuzzing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.cli.main import main
from console.config.loader import load_config, load_text
from console.config.located import ConfigError
from console.config.models import Config, parse_duration
from console.config.paths import find_config

GOOD = """\
sources:
  prometheus:
    type: prometheus
    url: http://127.0.0.1:9090
  alertmanager:
    type: alertmanager
    url: http://127.0.0.1:9093
slis:
  - name: errors
    query: sum by (model) (rate(x[1m]))
    objective: "< 0.01"
    slo: {target: 0.99}
"""

LOCATED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<rest>.+)$")

# (name, broken file, expected line, a word the message or key must contain)
BROKEN = [
    ("yaml-syntax", "sources:\n  prometheus: [unclosed\n", 3, "YAML syntax"),
    ("bad-indent", "sources:\n  prometheus:\n    type: prometheus\n   url: x\n", 4, "YAML"),
    (
        "unknown-key",
        GOOD.replace(
            "    url: http://127.0.0.1:9090", "    url: http://127.0.0.1:9090\n    intervall: 5"
        ),
        5,
        "interval",
    ),
    ("missing-url", GOOD.replace("    url: http://127.0.0.1:9093\n", ""), 6, "url"),
    ("bad-url", GOOD.replace("http://127.0.0.1:9093", "localhost:9093"), 7, "URL"),
    ("bad-objective", GOOD.replace('"< 0.01"', '"below 1%"'), 11, "objective"),
    ("slo-target-range", GOOD.replace("target: 0.99", "target: 99"), 12, "target"),
    (
        "bad-duration",
        GOOD.replace("    type: prometheus\n", "    type: prometheus\n    interval: soon\n"),
        4,
        "duration",
    ),
    ("unknown-adapter", GOOD.replace("type: alertmanager", "type: alertmangler"), 6, "adapter"),
    (
        "duplicate-key",
        GOOD.replace("    type: prometheus\n", "    type: prometheus\n    type: prometheus\n"),
        4,
        "duplicate",
    ),
    (
        "unset-env",
        GOOD.replace("http://127.0.0.1:9090", "${MLCONSOLE_TEST_UNSET_VAR}"),
        4,
        "MLCONSOLE_TEST_UNSET_VAR",
    ),
    ("wrong-unit", GOOD.replace("    slo: {target: 0.99}", "    unit: furlongs"), 12, "unit"),
    ("not-a-mapping", "- just\n- a list\n", 1, "mapping"),
    ("empty", "", 1, "empty"),
    ("no-sources", "sources: {}\n", 1, "sources"),
    (
        "duplicate-sli",
        GOOD + "  - name: errors\n    query: up\n    objective: '> 0'\n",
        13,
        "twice",
    ),
    ("bad-sli-source", GOOD.replace("    slo: {target: 0.99}", "    source: thanos"), 12, "thanos"),
]


@pytest.mark.parametrize(("name", "text", "line", "word"), BROKEN, ids=[b[0] for b in BROKEN])
def test_check_config_locates_every_kind_of_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, line: int, word: str
) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    code = main(["check-config", str(path)])
    out = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in out.out + out.err
    located = [m for m in map(LOCATED.match, out.out.splitlines()) if m]
    assert located, out.out
    first = located[0]
    assert first["file"] == str(path)
    assert int(first["line"]) == line, out.out
    assert word.lower() in out.out.lower()


def test_check_config_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    assert main(["check-config", str(path)]) == 0
    assert "OK (2 sources, 1 SLIs)" in capsys.readouterr().out


def test_example_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    example = Path(__file__).parent.parent / "config.example.yaml"
    assert main(["check-config", str(example)]) == 0


def test_unknown_key_hint_suggests_the_right_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        GOOD.replace(
            "    url: http://127.0.0.1:9093", "    url: http://127.0.0.1:9093\n    timout: 3"
        )
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (issue,) = info.value.issues
    assert (issue.line, issue.col, issue.key) == (8, 5, "sources.alertmanager.timout")
    assert "did you mean `timeout`" in str(issue)


def test_env_references_resolve_and_stay_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROM_TOKEN", "s3cret")
    path = tmp_path / "c.yaml"
    path.write_text(
        GOOD.replace(
            "    url: http://127.0.0.1:9090",
            "    url: http://127.0.0.1:9090\n    bearer_token: ${PROM_TOKEN}\n    headers: {X-Org: '${ORG:-acme}'}",
        )
    )
    config = load_config(path)
    source = config.sources["prometheus"]
    assert source.http_headers() == {"X-Org": "acme", "Authorization": "Bearer s3cret"}
    assert "s3cret" not in repr(config) and "s3cret" not in config.model_dump_json()


def test_lookup_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "mlconsole").mkdir(parents=True)
    (xdg / "mlconsole" / "config.yaml").write_text(GOOD)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    monkeypatch.delenv("MLCONSOLE_CONFIG", raising=False)
    assert find_config(None)[0] == xdg / "mlconsole" / "config.yaml"
    monkeypatch.setenv("MLCONSOLE_CONFIG", str(tmp_path / "env.yaml"))
    assert find_config(None)[0] == tmp_path / "env.yaml"
    assert find_config(str(tmp_path / "flag.yaml"))[0] == tmp_path / "flag.yaml"
    monkeypatch.delenv("MLCONSOLE_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    assert find_config(None)[0] is None


def test_missing_config_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MLCONSOLE_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert main(["status"]) == 2
    assert "no config found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(5, 5.0), ("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("30d", 2592000.0)],
)
def test_durations(raw: object, seconds: float) -> None:
    assert parse_duration(raw) == seconds


# Any text at all: the loader answers with a Config or a ConfigError, never anything else.
yaml_ish = st.text(
    alphabet=st.sampled_from(list("sourceslis:-[]{}\"'#&*!|>%@`\n\t ,.?=<01urltypeprometheus${}")),
    max_size=300,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(yaml_ish, st.text(max_size=200)))
def test_fuzz_loader_never_raises_anything_else(text: str) -> None:
    try:
        load_text(text, "fuzz.yaml", Config)
    except ConfigError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.line >= 0 and issue.col >= 0 and issue.message


# Structured fuzzing: valid YAML of the right shape with wrong values in it.
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


@settings(max_examples=200, deadline=None)
@given(
    source=st.dictionaries(
        st.sampled_from(["type", "url", "interval", "timeout", "retries", "headers", "tls", "x"]),
        values,
        max_size=6,
    ),
    sli=st.dictionaries(
        st.sampled_from(["name", "query", "objective", "unit", "slo", "y"]), values, max_size=6
    ),
)
def test_fuzz_structured_config(source: dict[str, object], sli: dict[str, object]) -> None:
    import yaml

    text = yaml.safe_dump({"sources": {"p": source}, "slis": [sli]})
    try:
        load_text(text, "fuzz.yaml", Config)
    except ConfigError as exc:
        for issue in exc.issues:
            assert issue.line >= 1, issue


def test_alias_bombs_stop_with_one_located_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ["a0: &a0 [x,x,x,x,x,x,x,x,x,x]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    (tmp_path / "self.yaml").write_text("a: &a [*a, *a]\n")
    for name, says in (
        ("bomb.yaml", "YAML aliases (*name) expand the file by more than 100000 values"),
        ("self.yaml", "a YAML alias (*name) refers to a value that contains it"),
    ):
        assert main(["check-config", str(tmp_path / name)]) == 2
        out = capsys.readouterr().out
        assert out.count(says) == 1 and "1 error(s)" in out


def _special_file(tmp_path: Path, kind: str) -> Path:
    """A path that is not a regular file: a FIFO, a device, a directory, a big file."""
    import os

    match kind:
        case "fifo":
            path = tmp_path / "pipe.yaml"
            os.mkfifo(path)
        case "device":
            path = Path("/dev/zero")
        case "directory":
            path = tmp_path / "dir.yaml"
            path.mkdir()
        case _:
            path = tmp_path / "huge.yaml"
            with path.open("wb") as handle:
                handle.truncate(5 * 1024 * 1024)  # sparse: 5 MiB of NULs
    return path


SPECIAL = {
    "fifo": "is a FIFO (named pipe), not a regular file",
    "device": "is a character device, not a regular file",
    "directory": "is a directory, not a regular file",
    "huge": "larger than 4 MiB",
}


COMMANDS = {
    "check-config": ["check-config", "{path}"],
    "status": ["-c", "{path}", "status"],
    "runbook-validate": ["runbook", "validate", "{path}"],
}


@pytest.mark.parametrize(
    ("kind", "argv"),
    [
        pytest.param(kind, argv, id=f"{name}-{kind}")
        for name, argv in COMMANDS.items()
        for kind in SPECIAL
        # `runbook validate DIR` checks the runbook files in DIR.
        if not (name == "runbook-validate" and kind == "directory")
    ],
)
def test_only_regular_files_are_read(tmp_path: Path, kind: str, argv: list[str]) -> None:
    # In a child process, so a FIFO that would block the read fails the test at the
    # deadline instead of hanging the suite.
    import subprocess
    import sys

    path = _special_file(tmp_path, kind)
    done = subprocess.run(
        [sys.executable, "-m", "console.cli.main", *(a.format(path=path) for a in argv)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert output.count(SPECIAL[kind]) == 1, output
    assert f"{path}:0:0:" in output


def _with(key_block: str) -> str:
    """GOOD plus a top-level block, after the prometheus source's url (line 4)."""
    return GOOD + key_block


# (id, config text, line, col, the key named, a word of the message)
NOT_FINITE = [
    ("interval-inf", GOOD.replace("9090\n", "9090\n    interval: .inf\n"), 5, 15, "sources.prometheus.interval", "finite"),
    ("interval-nan", GOOD.replace("9090\n", "9090\n    interval: .nan\n"), 5, 15, "sources.prometheus.interval", "finite"),
    ("interval-negative", GOOD.replace("9090\n", "9090\n    interval: -5\n"), 5, 15, "sources.prometheus.interval", "greater than 0"),
    ("interval-huge", GOOD.replace("9090\n", "9090\n    interval: 1.0e+12\n"), 5, 15, "sources.prometheus.interval", "longer than"),
    ("stale-after-inf", GOOD.replace("9090\n", "9090\n    stale_after: .inf\n"), 5, 18, "sources.prometheus.stale_after", "finite"),
    ("slo-window-inf", GOOD.replace("target: 0.99}", "target: 0.99, window: .inf}"), 12, 33, "slis[0].slo.window", "finite"),
    ("history-nan", _with("ui:\n  history: .nan\n"), 14, 12, "ui.history", "finite"),
    ("verify-window-inf", _with("actions:\n  verify: {window: .inf}\n"), 14, 20, "actions.verify.window", "finite"),
    ("verify-every-negative", _with("actions:\n  verify: {every: -2}\n"), 14, 19, "actions.verify.every", "greater than 0"),
    ("end-grace-inf", _with("incidents:\n  end_grace: .inf\n"), 14, 14, "incidents.end_grace", "finite"),
    ("lookback-nan", _with("incidents:\n  breach_lookback: .nan\n"), 14, 20, "incidents.breach_lookback", "finite"),
    ("silence-inf", _with("actions:\n  silence_duration: .inf\n"), 14, 21, "actions.silence_duration", "from 1m to 30d"),
    ("silence-zero", _with("actions:\n  silence_duration: 0\n"), 14, 21, "actions.silence_duration", "from 1m to 30d"),
    ("objective-inf", GOOD.replace('"< 0.01"', '"< inf"'), 11, 16, "slis[0].objective", "finite"),
    ("objective-nan", GOOD.replace('"< 0.01"', '"> nan"'), 11, 16, "slis[0].objective", "finite"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "line", "col", "key", "word"),
    [b[1:] for b in NOT_FINITE],
    ids=[b[0] for b in NOT_FINITE],
)
def test_infinite_nan_and_negative_durations_are_refused_where_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    line: int,
    col: int,
    key: str,
    word: str,
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert main(["check-config", str(path)]) == 2
    out = capsys.readouterr().out
    errors = [m for m in map(LOCATED.match, out.splitlines()) if m]
    assert len(errors) == 1, out
    assert (int(errors[0]["line"]), int(errors[0]["col"])) == (line, col), out
    assert errors[0]["rest"].startswith(f"{key}: "), out
    assert word in out


def test_store_path_must_name_a_file_not_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    cases = [
        (f"store:\n  path: {state}\n", "store.path", "is a directory"),
        (f"store:\n  path: {tmp_path / 'new'}/\n", "store.path", "names a directory"),
        (f"actions:\n  audit_path: {state}\n", "actions.audit_path", "is a directory"),
    ]
    for block, key, says in cases:
        path = tmp_path / "config.yaml"
        path.write_text(GOOD + block)
        assert main(["check-config", str(path)]) == 2
        out = capsys.readouterr().out
        assert f"{path}:14:" in out and f"{key}: " in out and says in out, out
        assert main(["-c", str(path), "incident", "list", "--no-sync"]) == 2
        capsys.readouterr()
    # Nothing was created beside or in it.
    assert list(state.iterdir()) == [] and not (tmp_path / "audit.db").exists()
