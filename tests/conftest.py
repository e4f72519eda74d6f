"""Shared fixtures. ``lab`` starts the real lab once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Tests use their own ports, so a demo lab on the default ones can stay up.
TEST_PORTS = (28090, 28093, 28100, 28500)


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's default store and audit log live in its own directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A running lab (model service, Prometheus, Alertmanager, MLflow) on test ports."""
    from lab import control
    from lab.configs import Ports

    state_dir = Path(os.environ.get("MLCONSOLE_TEST_LAB_DIR") or tmp_path_factory.mktemp("lab"))
    # Six models, so every lab fault can break a model of its own at the same time.
    info = control.up(state_dir, models=6, ports=Ports(*TEST_PORTS), timeout=90)
    try:
        yield info
    finally:
        control.down(state_dir)
