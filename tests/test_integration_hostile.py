"""Hostile text from a real registry: escape sequences in an MLflow version tag and in
``--actor`` reach the action commands' output inert (see test_hostile_text for the
screens and the other commands)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_integration_actions import API, MODEL, lab_clean, lab_config, mlconsole  # noqa: F401

TAG = "\x1b]0;pwned\x07\x1b]52;c;cm0gLXJmIC8K\x07\x1b[2J\x1b[H all good"
ACTOR = "eve\x1b]0;pwned\x07\nforged line"


@pytest.fixture
def hostile_tag(lab_clean: Any) -> Iterator[Any]:  # noqa: F811
    """Versions 2 and 3 of the model carry a hostile ``git_sha`` tag (removed after)."""
    lab = lab_clean
    for version in ("2", "3"):
        httpx.post(
            f"{lab.mlflow_url}{API}/model-versions/set-tag",
            json={"name": MODEL, "version": version, "key": "hostile", "value": TAG},
            timeout=10,
        ).raise_for_status()
    yield lab
    for version in ("2", "3"):
        httpx.request(
            "DELETE",
            f"{lab.mlflow_url}{API}/model-versions/delete-tag",
            json={"name": MODEL, "version": version, "key": "hostile"},
            timeout=10,
        )


def test_a_plan_shows_a_hostile_tag_and_actor_inert(hostile_tag: Any, tmp_path: Path) -> None:
    config = lab_config(hostile_tag, tmp_path)

    done = mlconsole(config, "--actor", ACTOR, "rollback", MODEL, "--dry-run")

    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    for char in ("\x1b", "\x07"):
        assert char not in out
    assert "hostile=\\x1b]0;pwned\\x07\\x1b]52;c;cm0gLXJmIC8K\\x07\\x1b[2J\\x1b[H all good" in out
    assert "as eve\\x1b]0;pwned\\x07\\nforged line" in out
    assert not any(line.startswith("forged line") for line in out.splitlines())
