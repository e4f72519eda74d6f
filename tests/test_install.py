"""The two installs the README shows, done for real from this checkout: each puts
mlconsole in an environment of its own, whose console runs; and a package of another
distribution under one of mlconsole's generic names (``adapters`` is also a widely
used ML library's) makes it refuse to start, saying which and why."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
UV = ROOT / ".venv" / "bin" / "uv"
PIPX = ROOT / ".venv-tools" / "bin" / "pipx"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkout's files as git knows them, copied: a build leaves nothing here."""
    copy = tmp_path_factory.mktemp("source")
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    return copy


def env_without_this_checkout(**extra: str) -> dict[str, str]:
    """The environment a user's shell would have: none of this venv on PATH or
    PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(ROOT))
    )
    env.update(extra)
    return env


def uv_install(source: Path, home: Path) -> Path:
    env = env_without_this_checkout(
        UV_TOOL_DIR=str(home / "tools"), UV_TOOL_BIN_DIR=str(home / "bin")
    )
    run = subprocess.run(
        [str(UV), "tool", "install", "--python", sys.executable, str(source)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return home / "bin" / "mlconsole"


def pipx_install(source: Path, home: Path) -> Path:
    env = env_without_this_checkout(
        PIPX_HOME=str(home / "pipx"), PIPX_BIN_DIR=str(home / "bin"), PIPX_MAN_DIR=str(home / "man")
    )
    run = subprocess.run(
        [str(PIPX), "install", "--python", sys.executable, str(source)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return home / "bin" / "mlconsole"


INSTALLS: dict[str, Callable[[Path, Path], Path]] = {"uv tool": uv_install, "pipx": pipx_install}


@pytest.mark.parametrize("how", INSTALLS)
def test_an_isolated_install_runs_the_console(source: Path, tmp_path: Path, how: str) -> None:
    program = INSTALLS[how](source, tmp_path)
    env = env_without_this_checkout()

    def mlconsole(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(program), *args], env={**env, **extra}, cwd=tmp_path,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    assert mlconsole("--version").stdout.strip() == "mlconsole 0.1.0"
    # Its own environment: the packages it imports are the installed ones.
    python = program.resolve().parent / "python"
    where = subprocess.run(
        [str(python), "-c", "import adapters, console.cli.main; print(adapters.__file__)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert str(ROOT) not in where and "site-packages" in where

    # The runbooks, styles and templates came along: a command that needs each works.
    shipped = mlconsole(
        "runbook", "validate", *map(str, sorted((source / "runbooks").glob("*.yaml")))
    )
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    config = tmp_path / "c.yaml"
    config.write_text(
        "sources:\n  am: {type: alertmanager, url: 'http://127.0.0.1:9', retries: 0, timeout: 1}\n"
    )
    status = mlconsole("--config", str(config), "status", "--json")
    assert status.returncode == 3, status.stderr  # the source refused: unreachable
    assert json.loads(status.stdout)["sources"]["am"]["state"] == "down"

    # Another distribution's `adapters`: refused, saying so. With uv's install it is
    # first on PYTHONPATH; pipx's scripts ignore PYTHONPATH (python -E), so there it is
    # installed into mlconsole's own environment, over mlconsole's files.
    if how == "uv tool":
        foreign = tmp_path / "foreign" / "adapters"
        foreign.mkdir(parents=True)
        (foreign / "__init__.py").write_text('"""Another library named adapters."""\n')
        refused = mlconsole("--config", str(config), "status", PYTHONPATH=str(foreign.parent))
        assert f"`adapters` is not mlconsole's package here: {foreign / '__init__.py'}" in (
            refused.stderr
        )
    else:
        inject_other_adapters(tmp_path)
        refused = mlconsole("--config", str(config), "status")
        assert "`adapters` is not mlconsole's package here:" in refused.stderr
    assert refused.returncode == 2, refused.stderr
    assert "refusing to start" in refused.stderr and "Traceback" not in refused.stderr


def inject_other_adapters(home: Path) -> None:
    """Install a distribution of another name whose package is also ``adapters`` into
    the pipx environment, as ``pipx inject`` would any library."""
    other = home / "other"
    (other / "adapters").mkdir(parents=True)
    (other / "adapters" / "__init__.py").write_text('"""Another library named adapters."""\n')
    (other / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "other-adapters"\nversion = "1.0"\n'
        '[tool.setuptools]\npackages = ["adapters"]\n'
    )
    env = env_without_this_checkout(
        PIPX_HOME=str(home / "pipx"), PIPX_BIN_DIR=str(home / "bin"), PIPX_MAN_DIR=str(home / "man")
    )
    run = subprocess.run(
        [str(PIPX), "inject", "mlconsole", str(other)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr


def test_a_foreign_package_in_the_dev_checkout_is_refused(tmp_path: Path) -> None:
    """The same check from a checkout: `screens` of another project on PYTHONPATH."""
    foreign = tmp_path / "screens"
    foreign.mkdir()
    (foreign / "__init__.py").write_text("")
    run = subprocess.run(
        [sys.executable, "-m", "console.cli.main", "status"],
        env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"},
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2
    assert "`screens` is not mlconsole's package here" in run.stderr
    assert "Traceback" not in run.stderr
