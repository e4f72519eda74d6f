"""The house's rules: import-linter's contracts hold, each one catches a wrong import,
the core never prints, and a config imports only the adapters it names (checked in
fresh interpreters)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from adapters import registry


def modules_after(code: str) -> set[str]:
    probe = textwrap.dedent(code) + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = ROOT / ".venv-tools" / "bin" / "lint-imports"
PACKAGES = ("console", "screens", "adapters", "lab")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """import-linter's verdict on the tree at ``tree``, by its pyproject.toml."""
    assert LINT_IMPORTS.exists(), "import-linter is missing: run `bash scripts/setup.sh`"
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120
    )


def test_the_house_keeps_its_import_rules() -> None:
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


BREACHES = [
    # (file, the wrong import, the rule it breaks)
    ("console/sources/snapshot.py", "import textual.app", "Only the front end imports Textual"),
    ("adapters/http.py", "from textual import events", "Only the front end imports Textual"),
    ("console/incidents/book.py", "from screens import render", "Floors"),
    ("screens/table.py", "from console.cli import common", "Floors"),
    ("lab/state.py", "from console import times", "Floors"),
    ("console/actions/locks.py", "from console.incidents import book", "Floors"),
    ("console/config/models.py", "from console.sources import snapshot", "Floors"),
    ("console/text.py", "from console.config import models", "Floors"),
    ("adapters/base.py", "import lab.web", "Floors"),
    ("lab/web.py", "import adapters.base", "Floors"),
    ("console/cli/audit.py", "from console.cli.main import main", "command line's root"),
    ("screens/table.py", "from screens.app import MLConsoleApp", "A screen never imports the app"),
]


@pytest.fixture(scope="module")
def house_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The source tree and its contracts, copied, for one wrong import at a time."""
    copy = tmp_path_factory.mktemp("house")
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    for package in PACKAGES:
        for source in (ROOT / package).rglob("*.py"):
            target = copy / source.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    return copy


@pytest.mark.parametrize(("path", "wrong", "rule"), BREACHES, ids=[b[1] for b in BREACHES])
def test_a_wrong_import_breaks_its_rule(house_copy: Path, path: str, wrong: str, rule: str) -> None:
    """Each contract catches what it forbids: the tree with one wrong import added is
    refused, by that contract alone, and the report names the module."""
    source = house_copy / path
    kept = source.read_text()
    source.write_text(f"{kept}\n{wrong}\n")
    try:
        run = lint_imports(house_copy)
    finally:
        source.write_text(kept)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 broken" in run.stdout
    module = path.removesuffix(".py").replace("/", ".")
    assert module in run.stdout  # the report names the module that broke it
    broken_at = run.stdout.index("BROKEN")
    assert rule in run.stdout[max(0, broken_at - 200) : broken_at].replace("\n", " ")


def test_the_core_never_prints_or_reads_input() -> None:
    """Only the command line and the screens speak to the terminal: the core and the
    adapters return what they have to say (a Textual app would swallow a print, and a
    command's output must be only what the command prints)."""
    import ast

    said = []
    sources = [*ROOT.glob("console/**/*.py"), *ROOT.glob("adapters/**/*.py")]
    for path in sources:
        if path.is_relative_to(ROOT / "console" / "cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            called = isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            if called and node.func.id in {"print", "input", "breakpoint"}:  # type: ignore[attr-defined]
                said.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.id}()")  # type: ignore[attr-defined]
            stream = isinstance(node, ast.Attribute) and node.attr in {"stdout", "stderr", "stdin"}
            if stream and isinstance(node.value, ast.Name) and node.value.id == "sys":  # type: ignore[attr-defined]
                said.append(f"{path.relative_to(ROOT)}:{node.lineno} sys.{node.attr}")  # type: ignore[attr-defined]
    assert said == []


def test_builtin_adapters_are_entry_points() -> None:
    assert {"prometheus", "alertmanager"} <= set(registry.available())


def test_only_configured_adapters_are_imported(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("sources:\n  am: {type: alertmanager, url: 'http://127.0.0.1:9'}\n")
    loaded = modules_after(f"""
        from pathlib import Path
        from console.config.loader import load_config
        from console.sources.build import build_adapters
        build_adapters(load_config(Path({str(config)!r})))
    """)
    assert "adapters.alertmanager" in loaded
    assert "adapters.prometheus" not in loaded


def test_listing_adapters_imports_none() -> None:
    loaded = modules_after("from adapters import registry; registry.available()")
    assert not {"adapters.prometheus", "adapters.alertmanager"} & loaded


def test_cli_help_and_version_need_no_config() -> None:
    for args in (["--help"], ["--version"], ["status", "--help"], ["lab", "--help"]):
        run = subprocess.run(
            [sys.executable, "-m", "console.cli.main", *args], capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip()
    run = subprocess.run(
        [sys.executable, "-m", "console.cli.main", "--bogus"], capture_output=True, text=True
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr


def test_every_worker_is_named_and_described() -> None:
    """A worker without a name or a description makes Textual build the repr() of its
    work to stand in for them (a partial's repr holds its arguments: a whole Snapshot,
    megabytes at 1,000 models). Started directly, or from a thread through
    call_from_thread(run_worker, ...)."""
    import ast

    root = Path(__file__).resolve().parents[1]
    unnamed = []
    for path in [*root.glob("console/**/*.py"), *root.glob("screens/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            direct = isinstance(node.func, ast.Attribute) and node.func.attr == "run_worker"
            relayed = any(
                isinstance(arg, ast.Attribute) and arg.attr == "run_worker" for arg in node.args
            )
            given = {k.arg for k in node.keywords}
            if (direct or relayed) and not {"name", "description"} <= given:
                unnamed.append(f"{path.relative_to(root)}:{node.lineno}")
    assert unnamed == []
