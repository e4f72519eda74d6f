"""The action commands' argument handling: refusals and usage errors come before any request."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.cli.action import parse_matcher
from console.cli.main import main

CONFIG = Path(__file__).parent / "data" / "lab_config.yaml"


@pytest.mark.parametrize(
    "argv",
    [
        ["--read-only", "rollback", "fraud-detector", "--yes"],
        ["rollback", "fraud-detector", "--yes", "--read-only"],
        ["fallback", "fraud-detector", "on", "--read-only"],
        ["pipeline", "pause", "fraud-detector", "--read-only"],
        ["silence", "fraud-detector", "-m", "why", "--read-only"],
    ],
)
def test_read_only_refuses_wherever_the_flag_stands(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The lab config names 127.0.0.1 ports nobody listens on here: a request would fail
    # with exit 3, so exit 4 proves the refusal came first.
    assert main(["-c", str(CONFIG), *argv]) == 4
    assert "read-only" in capsys.readouterr().err


def test_a_silence_needs_a_target_and_a_comment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(CONFIG), "silence", "--comment", "x"]) == 2
    assert "say what to silence" in capsys.readouterr().err
    assert main(["-c", str(CONFIG), "silence", "fraud-detector"]) == 2
    assert "--comment is required" in capsys.readouterr().err
    assert main(["-c", str(CONFIG), "silence", "m", "-m", "x", "--match", "=v"]) == 2
    assert "no label name" in capsys.readouterr().err


def test_matchers_take_every_operator() -> None:
    assert parse_matcher("a!~x.*") == {
        "name": "a",
        "value": "x.*",
        "isRegex": True,
        "isEqual": False,
    }
    assert parse_matcher("a=~x") == {"name": "a", "value": "x", "isRegex": True, "isEqual": True}
    assert parse_matcher("a!=x") == {"name": "a", "value": "x", "isRegex": False, "isEqual": False}
    assert parse_matcher("a=b=c") == {
        "name": "a",
        "value": "b=c",
        "isRegex": False,
        "isEqual": True,
    }
    assert parse_matcher("a=x!=y")["value"] == "x!=y"
    assert parse_matcher("a!=x=y") == {
        "name": "a",
        "value": "x=y",
        "isRegex": False,
        "isEqual": False,
    }
    with pytest.raises(ValueError):
        parse_matcher("nothing")


@pytest.mark.parametrize(
    "duration",
    ["0", "0s", "-5m", "30s", "soon", "1e400", "inf", "nan", "99999999999999w", "31d", ""],
)
def test_a_silence_duration_out_of_range_is_one_error_and_exit_2(
    duration: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The lab config names closed ports: a request would exit 3, so 2 proves the refusal.
    argv = ["silence", "fraud-detector", "-m", "why", f"--duration={duration}", "--yes"]
    assert main(["-c", str(CONFIG), *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "from 1m to 30d" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("blank", [" ", "\t", " \n "])
def test_a_blank_actor_never_names_the_audit_entries(
    blank: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whitespace is no one: a blank --actor, actions.actor or $MLCONSOLE_ACTOR gives
    way to the next source, so an audit entry always names somebody."""
    from console.config.actor import resolve_actor
    from tests.test_actions import config as base_config

    config = base_config()
    config.actions.actor = blank
    monkeypatch.setenv("MLCONSOLE_ACTOR", blank)
    assert resolve_actor(config, blank).strip() != ""
    monkeypatch.setenv("MLCONSOLE_ACTOR", " ann@oncall ")
    assert resolve_actor(config, blank) == "ann@oncall"
    assert resolve_actor(config, " bob ") == "bob"
