"""Import discipline, checked in fresh interpreters.

The core (console/ but its app module, and adapters/) never imports Textual,
and a config imports only the adapters it names.
"""

from __future__ import annotations

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


CORE = [
    "console.config",
    "console.config_loader",
    "console.poller",
    "console.snapshot",
    "console.cli.status",
    "console.cli.main",
    "console.format",
    "adapters.base",
    "adapters.prometheus",
    "adapters.alertmanager",
    "adapters.registry",
    "console.runbook",
    "console.runbook_validate",
    "console.runbook_catalog",
    "console.cli.runbook",
    "console.cli.runbook_run",
    "console.triage",
    "console.store",
    "console.audit",
    "console.cli.audit",
]


@pytest.mark.parametrize("module", CORE)
def test_core_never_imports_textual(module: str) -> None:
    loaded = modules_after(f"import {module}")
    assert not {m for m in loaded if m == "textual" or m.startswith("textual.")}


def test_builtin_adapters_are_entry_points() -> None:
    assert {"prometheus", "alertmanager"} <= set(registry.available())


def test_only_configured_adapters_are_imported(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("sources:\n  am: {type: alertmanager, url: 'http://127.0.0.1:9'}\n")
    loaded = modules_after(f"""
        from pathlib import Path
        from console.config_loader import load_config
        from console.poller import build_adapters
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
    for path in [*root.glob("console/*.py"), *root.glob("screens/*.py")]:
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
