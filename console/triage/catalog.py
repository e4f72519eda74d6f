"""Find runbooks on disk and match alerts to them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from console.config.located import Issue
from console.config.models import Config
from console.triage.runbook import Runbook
from console.triage.validate import validate_runbook_file

SHIPPED = Path(__file__).resolve().parents[2] / "runbooks"


def runbook_dirs(config: Config | None) -> list[Path]:
    dirs = list(config.runbooks.paths) if config else []
    if config is None or config.runbooks.shipped:
        dirs.append(SHIPPED)
    return dirs


@dataclass
class Catalog:
    """Every runbook that loaded, by id, and the problems of those that did not."""

    runbooks: dict[str, Runbook] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)

    @classmethod
    def load(cls, dirs: list[Path]) -> Catalog:
        catalog = cls()
        for directory in dirs:
            if not directory.is_dir():
                continue
            for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
                runbook, issues = validate_runbook_file(path)
                if runbook is None:  # graph, template and schema checks all apply
                    catalog.issues.extend(issues)
                    continue
                # earlier directories win: a team's runbook replaces a shipped one
                if runbook.id not in catalog.runbooks:
                    catalog.runbooks[runbook.id] = runbook
                    catalog.sources[runbook.id] = path
        return catalog

    def for_alert(
        self, labels: Mapping[str, str], annotations: Mapping[str, str] | None = None
    ) -> list[Runbook]:
        """The runbooks for an alert: its ``runbook`` label, else annotation, else ``match``."""
        for named in (labels.get("runbook"), (annotations or {}).get("runbook")):
            if named and named in self.runbooks:
                return [self.runbooks[named]]
        return [rb for rb in self.runbooks.values() if rb.matches(labels)]
