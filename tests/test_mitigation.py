"""One flow for every front end (console.mitigation): the dashboard's keys and the
action commands take the same steps and judge the outcome the same way. Before,
each had its own copy, and they had drifted: only the command read the registry
before planning a rollback, and only the command took an unconfirmed read-back for
a failure (the dashboard went on to watch the SLI and could say RECOVERED)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from console import mitigation
from console.actions.kinds import build_action
from console.actions.origin import Origin
from console.cli.main import main
from console.config.models import Config, StoreConfig
from console.session import Session, open_session_sync
from console.sources.alias_history import AliasHistory
from screens.action import ActionScreen
from tests.test_action_screen import SIZE, app_with_fakes
from tests.test_actions import Alerts, Metrics, Registry, Switch, config
from tests.waits import until


def fakes() -> dict[str, Any]:
    return {
        "registry": Registry(),
        "serving": Switch("serving"),
        "pipelines": Switch("pipelines"),
        "alertmanager": Alerts(),
        "prometheus": Metrics([0.5, 0.2, 0.004, 0.003]),
    }


def command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adapters: dict[str, Any]
) -> tuple[Config, list[Session]]:
    """The action commands, on the fakes: their config and the sessions they open."""
    cfg = config().model_copy(update={"store": StoreConfig(path=tmp_path / "store.db")})
    opened: list[Session] = []

    async def open_session(config: Config, **kwargs: Any) -> Session:
        kwargs.setdefault("actor", "cli@ops")
        space = open_session_sync(config, adapters=adapters, **kwargs)
        space.owns_adapters = False
        opened.append(space)
        return space

    monkeypatch.setattr("console.cli.action.config_for", lambda args: cfg)
    monkeypatch.setattr("console.session.open_session", open_session)
    return cfg, opened


def champion_seen(space: Session) -> object:
    assert space.history is not None
    return space.history.deployment("fraud-detector", "champion")


async def test_the_keys_read_the_registry_before_a_rollback(tmp_path: Path) -> None:
    app, _ = app_with_fakes(tmp_path)
    space = app.session
    assert space is not None and champion_seen(space) is None
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "r")
        await until(pilot, lambda: isinstance(app.screen, ActionScreen), "the plan")
        seen = champion_seen(space)
        assert seen is not None and seen.version == "4"  # type: ignore[attr-defined]


def test_the_command_reads_the_registry_before_a_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, opened = command(tmp_path, monkeypatch, fakes())
    assert main(["rollback", "fraud-detector", "--dry-run"]) == 0
    assert "fraud-detector@champion: v4 → v3" in capsys.readouterr().out
    assert opened[0].history is not None
    history = AliasHistory(opened[0].history.path)  # the command closed its own
    try:
        seen = history.deployment("fraud-detector", "champion")
    finally:
        history.close()
    assert seen is not None and seen.version == "4"


async def test_the_keys_take_an_unconfirmed_read_back_for_what_it_is(tmp_path: Path) -> None:
    """The registry goes away between the apply and the read-back: the alias may have
    moved, or not. Nothing is watched and nothing is called recovered."""
    app, adapters = app_with_fakes(tmp_path)
    registry = adapters["registry"]
    registry.after_set = lambda: setattr(registry, "down", True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "r")
        screen = await until(
            pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, "the plan"
        )
        await pilot.press("y")
        await until(pilot, lambda: screen.stage == "done", "the outcome")
        assert screen.recovery is None  # no SLI was watched
        assert screen.undo is None  # nor an undo planned on a state nobody read back
        status = str(screen.query_one("#status").render())
        assert mitigation.UNCONFIRMED in status
        assert "RECOVERED" not in status.upper().replace("NOT RECOVERED", "")


def test_the_command_takes_an_unconfirmed_read_back_for_what_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    adapters = fakes()
    registry = adapters["registry"]
    registry.after_set = lambda: setattr(registry, "down", True)
    command(tmp_path, monkeypatch, adapters)
    assert main(["rollback", "fraud-detector", "--yes"]) == 3
    said = capsys.readouterr()
    assert mitigation.UNCONFIRMED in said.err
    assert "Watching" not in said.out


async def test_one_proposal_is_what_both_front_ends_show(tmp_path: Path) -> None:
    """The flow's proposal holds what a front end shows before asking: the plan, the
    incident it is filed under and the SLI that judges it."""
    cfg = config().model_copy(update={"store": StoreConfig(path=tmp_path / "store.db")})
    space = open_session_sync(cfg, adapters=fakes(), actor="ana@ops")
    try:
        proposal = await mitigation.propose(space, "rollback", {"model": "fraud-detector"})
        assert proposal.plan.summary() == "fraud-detector@champion: v4 → v3"
        assert proposal.filing.incident is None and proposal.origin == Origin()
        assert proposal.watches and proposal.target.sli
        with pytest.raises(mitigation.MitigationStopped) as stopped:
            await mitigation.propose(space, "rollback", {"model": "no-such-model"})
        assert stopped.value.stop is mitigation.Stop.CANNOT_PLAN
    finally:
        await space.close()


def test_the_command_says_what_was_in_doubt_even_when_its_plan_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A console died between a rollback's intent and its result. The next command
    settles it before planning, and says so, even when its own plan then fails."""
    adapters = fakes()
    cfg, _ = command(tmp_path, monkeypatch, adapters)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    space = open_session_sync(cfg, adapters=adapters, actor="gone@ops")
    try:
        plan = asyncio.run(build_action(space.ctx, "rollback", {"model": "fraud-detector"}).plan())
        space.audit.append(
            "intent",
            actor="gone@ops",
            action="rollback",
            params=plan.params,
            plan=plan.as_dict(),
            process={"host": socket.gethostname(), "pid": dead.pid},
        )
    finally:
        asyncio.run(space.close())
    assert main(["rollback", "no-such-model", "--yes"]) == 2
    said = capsys.readouterr().err
    assert "an earlier action was in doubt" in said and "not applied" in said
    assert "no-such-model" in said
