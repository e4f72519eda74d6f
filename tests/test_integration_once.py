"""Every action applies once, against the real lab: racing processes, another writer
between apply and read-back, and an audit log whose tail was cut off."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.actions.locks import SqliteTargetLock
from tests.httpproxy import FaultProxy
from tests.test_integration_actions import (
    MODEL,
    audit_of,
    bad_deploy,
    champion,
    kinds,
    lab_clean,
    lab_config,
    mlconsole,
    move_champion,
    wait_for,
)

pytestmark = pytest.mark.integration
__all__ = ["lab_clean"]  # the fixture, used by name


class Responder:
    """One ``mlconsole`` process, its output read as it comes."""

    def __init__(self, config: Path, *args: str, actor: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "console.cli.main", "--config", str(config), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "MLCONSOLE_ACTOR": actor},
        )
        self.out: list[str] = []
        self.err = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.append(line)

    def finish(self) -> int:
        assert self.proc.stderr is not None
        self.err = self.proc.stderr.read()
        code = self.proc.wait(timeout=180)
        self._reader.join(timeout=30)
        return code


def race(config: Path, tmp_path: Path, *args: str) -> tuple[list[Responder], list[int]]:
    """Four processes run ``args``; another console holds the target's lock while they
    plan, so all four plan v4 → v3 and race for the lock the moment it is released."""
    other = SqliteTargetLock(tmp_path / "store.db")
    held = other.try_acquire(f"alias:{MODEL}@champion", "other@console", 300)
    responders = [Responder(config, *args, "--no-verify", actor=f"r{n}@ops") for n in range(4)]
    try:
        wait_for(
            "all four responders planned and waiting for the lock",
            lambda: all(any("waiting for the lock" in line for line in r.out) for r in responders),
        )
        for r in responders:
            assert any(f"{MODEL}@champion: v4 → v3" in line for line in r.out)
    finally:
        other.release(held)
    return responders, [r.finish() for r in responders]


def test_racing_processes_roll_back_one_plan_once(lab_clean: Any, tmp_path: Path) -> None:
    lab = lab_clean
    bad_deploy(lab)
    config = lab_config(lab, tmp_path)
    responders, codes = race(config, tmp_path, "rollback", MODEL, "--to", "3", "--yes")
    assert sorted(codes) == [0, 4, 4, 4], [r.err for r in responders]
    for r, code in zip(responders, codes, strict=True):
        if code == 4:
            assert "now points at v3, not v4" in r.err
    assert champion(lab) == "3"
    log = audit_of(tmp_path)
    assert sorted(kinds(log)) == sorted(["intent"] * 4 + ["result"] + ["refusal"] * 3)
    results = [e for e in log.entries() if e.kind == "result"]
    assert results[0].body["result"]["applied"] and results[0].body["result"]["confirmed"]
    assert log.in_doubt() == [] and log.verify().ok


def test_racing_rollbacks_without_a_version_go_back_once_not_in_a_cascade(
    lab_clean: Any, tmp_path: Path
) -> None:
    lab = lab_clean
    bad_deploy(lab)
    config = lab_config(lab, tmp_path)
    # No --to: each works out "the version before" itself.
    responders, codes = race(config, tmp_path, "rollback", MODEL, "--yes")
    assert sorted(codes) == [0, 4, 4, 4], [r.err for r in responders]
    assert champion(lab) == "3"
    # Responders who arrive once it is done are not rolled on to v2, v1 unread.
    for n in range(2):
        late = mlconsole(config, "rollback", MODEL, "--yes", "--no-verify", "--actor", f"late{n}")
        assert late.returncode == 4, late.stderr
        assert "rolled champion back to v3 (from v4)" in late.stderr
        assert "--to VERSION" in late.stderr
    assert champion(lab) == "3"
    log = audit_of(tmp_path)
    assert kinds(log).count("result") == 1
    assert kinds(log).count("refusal") == 5 and log.verify().ok


def test_another_writer_between_apply_and_read_back_is_reported_as_a_conflict(
    lab_clean: Any, tmp_path: Path
) -> None:
    lab = lab_clean
    bad_deploy(lab)
    moved = threading.Event()

    def rule(method: str, path: str) -> str:
        posted = any(m == "POST" and p.endswith("/registered-models/alias") for m, p, _ in seen)
        if method == "GET" and "/registered-models/alias" in path and posted and not moved.is_set():
            move_champion(lab, "2")  # a deploy tool, straight to MLflow, before the read-back
            moved.set()
        return "forward"

    with FaultProxy(lab.mlflow_url, rule) as proxy:
        seen = proxy.seen
        run = mlconsole(lab_config(lab, tmp_path, registry=proxy.url), "rollback", MODEL, "--yes")
    assert moved.is_set()
    assert run.returncode == 4, run.stderr
    assert "CONFLICT" in run.stderr and "{'version': '2'}" in run.stderr
    assert "RECOVERED" not in run.stdout
    assert champion(lab) == "2"
    log = audit_of(tmp_path)
    assert kinds(log) == ["intent", "result"]
    assert log.entries()[1].body["result"]["conflict"] is True
    assert log.verify().ok


def test_an_action_over_a_cut_off_audit_tail_is_refused(lab_clean: Any, tmp_path: Path) -> None:
    lab = lab_clean
    config = lab_config(lab, tmp_path)

    def paused() -> bool:
        answer = httpx.get(f"{lab.service_url}/admin/pipeline", params={"model": MODEL}, timeout=10)
        return bool(answer.json()["paused"])

    assert mlconsole(config, "pipeline", "pause", MODEL, "--yes").returncode == 0
    db = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    db.execute("DELETE FROM audit WHERE seq = 2")  # the result entry is cut off
    db.close()
    run = mlconsole(config, "pipeline", "resume", MODEL, "--yes")
    assert run.returncode == 5, run.stderr
    assert "nothing was run" in run.stderr and "entry 2 is missing" in run.stderr
    assert paused()  # the action did not run
    assert [e.seq for e in audit_of(tmp_path).entries()] == [1]
    verify = mlconsole(config, "audit", "verify")
    assert verify.returncode == 1 and "truncated" in verify.stdout


ROLLBACK_RUNBOOK = """
id: rollback-test
title: Roll back the bad deploy
match: [{alertname: ModelErrorBudgetBurn}]
labels: [model]
steps:
  - id: act
    kind: action
    title: Roll back to v3
    action: rollback
    params: {model: "{{ labels.model }}", to: "3"}
    next: done
  - id: done
    kind: conclude
    cause: model
    summary: "{{ labels.model }} rolled back"
"""


def _step(walk: dict[str, Any], step: str) -> list[dict[str, Any]]:
    return [e for e in walk["evidence"] if e["step"] == step]


def test_runbook_run_confirm_runs_the_mitigation_through_the_action_path(
    lab_clean: Any, tmp_path: Path
) -> None:
    import json

    import yaml

    lab = lab_clean
    bad_deploy(lab)
    path = lab_config(lab, tmp_path)
    data = yaml.safe_load(path.read_text())
    data.setdefault("actions", {})["verify"] = {"window": 10, "every": 1, "consecutive": 2}
    path.write_text(yaml.safe_dump(data))
    runbook = tmp_path / "rollback-test.yaml"
    runbook.write_text(ROLLBACK_RUNBOOK)
    walk = ("runbook", "run", str(runbook), "--labels", f"model={MODEL}", "--answer", "act=confirm")

    refused = mlconsole(path, *walk, "--json", "--read-only")
    assert refused.returncode == 4, refused.stderr
    assert "read-only" in refused.stderr
    assert champion(lab) == "4" and not (tmp_path / "audit.db").exists()
    assert _step(json.loads(refused.stdout), "act") == []  # not recorded as confirmed

    run = mlconsole(path, *walk, "--json")
    assert run.returncode == 0, run.stderr
    assert champion(lab) == "3"
    result = json.loads(run.stdout)
    assert result["conclusion"]["summary"] == f"{MODEL} rolled back"
    (evidence,) = _step(result, "act")
    assert evidence["decision"] == "confirmed"
    outputs = evidence["outputs"]
    assert outputs["outcome"] == "applied"
    assert outputs["summary"] == f"{MODEL}@champion: v4 → v3"
    assert outputs["audit_intent"] == 1 and outputs["audit_result"] == 2
    assert outputs["recovery"]["sli"]  # the verdict it watched for
    log = audit_of(tmp_path)
    assert kinds(log)[:2] == ["intent", "result"] and "verify" in kinds(log)
    assert log.entries()[0].body["actor"] == "tester@ci"

    # Once more: v3 is served already, so nothing runs; the walk waits at the step.
    again = mlconsole(path, *walk, "--json")
    assert again.returncode == 2, again.stderr
    (waiting,) = _step(json.loads(again.stdout), "act")
    assert waiting["decision"] == "not applied: not run"
    assert "already points at v3" in waiting["outputs"]["message"]
    assert waiting["outputs"]["exit"] == 2
