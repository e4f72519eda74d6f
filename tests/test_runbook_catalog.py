"""Finding an alert's runbook: its runbook label, then annotation, then match rules."""

from __future__ import annotations

from pathlib import Path

from console.triage.catalog import SHIPPED, Catalog

RUNBOOK = """
id: {id}
title: {id}
match: [{{alertname: {alert}}}]
labels: [model]
steps:
  - {{id: done, kind: conclude, cause: data, summary: done}}
"""


def catalog(tmp_path: Path) -> Catalog:
    for rb_id, alert in (("a", "Drift"), ("b", "Drift"), ("c", "Other")):
        (tmp_path / f"{rb_id}.yaml").write_text(RUNBOOK.format(id=rb_id, alert=alert))
    (tmp_path / "broken.yaml").write_text("id: [\n")
    return Catalog.load([tmp_path])


def test_label_then_annotation_then_match(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    drift = {"alertname": "Drift", "model": "m"}
    assert [r.id for r in cat.for_alert(drift)] == ["a", "b"]  # several: the picker asks
    assert [r.id for r in cat.for_alert(drift, {"runbook": "c"})] == ["c"]
    assert [r.id for r in cat.for_alert({**drift, "runbook": "b"}, {"runbook": "c"})] == ["b"]
    assert cat.for_alert({"alertname": "Nothing"}) == []
    assert cat.issues and cat.issues[0].file.endswith("broken.yaml")  # reported, not fatal


def test_team_directory_overrides_a_shipped_runbook(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(RUNBOOK.format(id="data-drift", alert="Mine"))
    cat = Catalog.load([tmp_path, SHIPPED])
    assert cat.sources["data-drift"] == tmp_path / "mine.yaml"
    assert "model-regression" in cat.runbooks  # the rest still come from the shipped set
