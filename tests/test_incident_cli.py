"""``mlconsole incident …`` and ``mlconsole export`` on a real store file.

The config's Alertmanager is a closed local port: reading the alerts fails fast
(exit 3), and everything else works on what the store holds.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.records import AlertRecord
from console.audit.log import AuditLog
from console.cli.main import main
from console.incidents.book import IncidentBook

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC).timestamp()
UTC_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\b")

CONFIG_TEXT = """\
version: 1
model_label: model
sources:
  alertmanager:
    type: alertmanager
    url: http://127.0.0.1:9
    timeout: 0.2
    retries: 0
    backoff: 0
slis:
  - name: error_ratio
    query: mlc:error_ratio:rate1m
    objective: "< 0.01"
store:
  path: {store}
"""


def alert(fingerprint: str, model: str, name: str, start: float) -> AlertRecord:
    return AlertRecord(
        fingerprint=fingerprint,
        labels={"alertname": name, "model": model, "severity": "page", "sli": "error_ratio"},
        annotations={"summary": f"{model} burns its error budget"},
        starts_at=datetime.fromtimestamp(T0 + start, UTC),
        ends_at=None,
        updated_at=None,
        state="active",
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "state" / "store.db"


@pytest.fixture
def config(tmp_path: Path, store: Path) -> Path:
    path = tmp_path / "mlconsole.yaml"
    path.write_text(CONFIG_TEXT.format(store=store), encoding="utf-8")
    return path


@pytest.fixture
def seeded(store: Path) -> Path:
    """INC-1 (fraud-detector, firing) and INC-2 (churn-predictor, resolved)."""
    book = IncidentBook(store)
    try:
        book.sync(
            [
                alert("fp-1", "fraud-detector", "ModelErrorBudgetBurn", 0),
                alert("fp-2", "churn-predictor", "ModelFeatureDrift", 5),
            ],
            model_label="model",
            actor="mlconsole",
            now=T0 + 60,
        )
        book.note(1, "v4 went out at 02:55", actor="ann@oncall", now=T0 + 80)
        book.resolve(2, actor="bob@oncall", comment="false alarm", now=T0 + 90)
    finally:
        book.close()
    return store


def run(config: Path, *argv: str) -> int:
    return main(["-c", str(config), "--actor", "ann@oncall", *argv])


def reopen(store: Path) -> IncidentBook:
    return IncidentBook(store)


def test_list_with_unreachable_alerts_exits_3_and_lists_the_store(
    config: Path, seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, "incident", "list") == 3

    out, err = capsys.readouterr()
    assert "alerts not read" in err
    assert "127.0.0.1:9" in err
    lines = out.splitlines()
    assert lines[0].split() == HEADERS
    assert len(lines) == 2  # the resolved INC-2 is left out
    assert lines[1].split()[:5] == [
        "INC-1",
        "triggered",
        "page",
        "fraud-detector",
        "ModelErrorBudgetBurn",
    ]
    assert lines[1].split()[6:] == ["firing", "-"]

    assert run(config, "incident", "list", "--all") == 3
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["INC-2", "INC-1"]
    # Nothing was changed by the failed read.
    book = reopen(seeded)
    try:
        assert book.get(1).firing and book.get(1).state == "triggered"
        assert [e.kind for e in book.events(1)][-1] == "note"
    finally:
        book.close()


HEADERS = ["ID", "STATE", "SEV", "MODEL", "ALERT", "AGE", "ALERTS", "ACK"]


def column_starts(line: str) -> list[int]:
    """Where each space-separated word of ``line`` begins."""
    return [m.start() for m in re.finditer(r"\S+", line)]


def test_list_is_a_table_with_a_header_over_every_column(
    config: Path, seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = reopen(seeded)
    try:
        book.acknowledge(1, actor="ann@oncall", now=T0 + 70)
    finally:
        book.close()
    assert run(config, "incident", "list", "--no-sync", "--all") == 0

    header, *rows = capsys.readouterr().out.splitlines()  # piped: nothing is cut
    assert header.split() == HEADERS
    starts = column_starts(header)
    ends = [m.end() for m in re.finditer(r"\S+", header)]
    age = HEADERS.index("AGE")
    for row in rows:
        cells = row.split()
        assert len(cells) == len(HEADERS), row
        # Left-aligned columns start under their header; AGE ends under it.
        row_starts, row_ends = column_starts(row), [m.end() for m in re.finditer(r"\S+", row)]
        assert [s for i, s in enumerate(row_starts) if i != age] == [
            s for i, s in enumerate(starts) if i != age
        ]
        assert row_ends[age] == ends[age]
    by_id = {row.split()[0]: row.split() for row in rows}
    assert by_id["INC-1"][6:] == ["firing", "ann@oncall"]
    assert by_id["INC-2"][1] == "resolved"


def test_list_fits_80_columns_by_cutting_names_not_ids() -> None:
    from console.cli.incident import INCIDENT_COLUMNS
    from console.cli.text_table import render_table

    long = ["INC-12", "acknowledged", "ticket", "m" * 40, "A" * 40, "12m30s", "quiet", "x" * 30]
    lines = render_table(INCIDENT_COLUMNS, [long], width=80)
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0].split() == HEADERS
    assert lines[1].split()[:3] == ["INC-12", "acknowledged", "ticket"]
    assert lines[1].split()[5:7] == ["12m30s", "quiet"]
    assert lines[1].count("…") == 3
    # The demo's names fit whole at 80 columns.
    demo = [
        "INC-3", "acknowledged", "page", "churn-predictor", "ModelErrorBudgetBurn", "19m24s",
        "firing", "ann@oncall",
    ]  # fmt: skip
    lines = render_table(INCIDENT_COLUMNS, [demo], width=80)
    assert lines[1].split()[:7] == demo[:7]
    assert all(len(line) <= 80 for line in lines), lines


def test_list_with_an_empty_store(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, "incident", "list", "--no-sync") == 0
    assert capsys.readouterr().out.strip() == "no open incidents"


def test_list_no_sync_json(config: Path, seeded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, "incident", "list", "--no-sync", "--json") == 0

    out, err = capsys.readouterr()
    assert err == ""
    (incident,) = json.loads(out)
    assert incident["id"] == "INC-1"
    assert incident["state"] == "triggered"
    assert incident["model"] == "fraud-detector"
    assert incident["alert_started_at"] == "2026-11-23T03:00:00.000Z"
    assert [a["fingerprint"] for a in incident["alerts"]] == ["fp-1"]

    assert run(config, "incident", "list", "--no-sync", "--json", "--all") == 0
    assert [i["id"] for i in json.loads(capsys.readouterr().out)] == ["INC-2", "INC-1"]


def test_show_prints_the_timeline_in_utc(
    config: Path, seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit = AuditLog(seeded.with_name("audit.db"))
    try:
        audit.append(
            "intent",
            actor="ann@oncall",
            action="rollback",
            params={"model": "fraud-detector"},
            incident="INC-1",
            at=T0 + 100,
        )
        audit.append("intent", actor="bob", action="silence", params={}, incident="INC-2")
    finally:
        audit.close()

    assert run(config, "incident", "show", "INC-1") == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "INC-1: fraud-detector burns its error budget"
    assert "triggered" in lines[1] and "owner -" in lines[1]
    assert "timeline (4 events, UTC):" in out
    events = [line.split() for line in lines if UTC_TIME.search(line)]
    assert [(e[0], e[1]) for e in events] == [
        ("2026-11-23T03:00:00.000Z", "alert.firing"),
        ("2026-11-23T03:01:00.000Z", "incident.opened"),
        ("2026-11-23T03:01:20.000Z", "note"),
        ("2026-11-23T03:01:40.000Z", "action.intent"),
    ]
    assert "v4 went out at 02:55" in out
    assert "silence" not in out  # INC-2's action


def test_show_json_has_incident_metrics_and_timeline(
    config: Path, seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, "incident", "show", "2", "--json") == 0

    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"incident", "metrics", "timeline"}
    assert doc["incident"]["id"] == "INC-2"
    assert doc["incident"]["resolved_by"] == "bob@oncall"
    assert set(doc["metrics"]) == {"mttd", "mtta", "ttm", "ttr", "mttr"}
    assert doc["metrics"]["mttr"]["seconds"] == 85.0  # fired at +5, resolved at +90
    assert doc["metrics"]["mtta"]["seconds"] is None
    assert [e["kind"] for e in doc["timeline"]] == [
        "alert.firing",
        "incident.opened",
        "incident.resolved",
    ]
    assert doc["timeline"][0]["at"] == "2026-11-23T03:00:05.000Z"


def test_ack_note_and_resolve_change_the_store(
    config: Path, seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, "incident", "ack", "INC-1") == 0
    assert "INC-1 acknowledged by ann@oncall (owner ann@oncall)" in capsys.readouterr().out
    assert run(config, "incident", "note", "inc-1", "rolled", "back", "to", "v3") == 0
    assert "INC-1: note added" in capsys.readouterr().out
    assert run(config, "incident", "resolve", "1", "--comment", "recovered") == 0
    assert "INC-1 resolved by ann@oncall" in capsys.readouterr().out

    book = reopen(seeded)
    try:
        incident = book.get(1)
        assert incident.state == "resolved"
        assert (incident.owner, incident.acked_by, incident.resolved_by) == (
            "ann@oncall",
            "ann@oncall",
            "ann@oncall",
        )
        events = book.events(1)
        assert [e.kind for e in events][-3:] == [
            "incident.acknowledged",
            "note",
            "incident.resolved",
        ]
        assert events[-2].data == {"text": "rolled back to v3"}
        assert events[-1].data == {"comment": "recovered"}
    finally:
        book.close()


def test_moves_the_incident_cannot_make_exit_4(
    config: Path, seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, "incident", "ack", "INC-2") == 4
    assert "INC-2 is resolved" in capsys.readouterr().err
    assert run(config, "incident", "resolve", "INC-2") == 4
    assert "already resolved" in capsys.readouterr().err
    assert run(config, "incident", "ack", "INC-1") == 0
    assert run(config, "incident", "ack", "INC-1") == 4
    assert "already acknowledged" in capsys.readouterr().err

    book = reopen(seeded)
    try:
        assert book.get(2).acked_by is None
        assert [e.kind for e in book.events(1)].count("incident.acknowledged") == 1
    finally:
        book.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["incident", "show", "INC-99"], "no incident INC-99"),
        (["incident", "ack", "INC-99"], "no incident INC-99"),
        (["incident", "note", "99", "hello"], "no incident INC-99"),
        (["incident", "resolve", "INC-99"], "no incident INC-99"),
        (["incident", "show", "fraud"], "'fraud' is not an incident id"),
        (["export", "INC-99"], "no incident INC-99"),
    ],
)
def test_an_unknown_incident_exits_2_with_a_message(
    config: Path, seeded: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, *argv) == 2
    out, err = capsys.readouterr()
    assert message in err
    assert out == ""


def test_an_id_of_unicode_digits_exits_2(
    config: Path, seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, "incident", "show", "INC-²") == 2
    assert "not an incident id" in capsys.readouterr().err


def test_a_missing_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(tmp_path / "nope.yaml"), "incident", "list", "--no-sync"]) == 2
    assert capsys.readouterr().err != ""


# -- export --------------------------------------------------------------------------


def test_export_schema_prints_a_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("console.export.document")

    assert main(["export", "--schema"]) == 0

    schema = json.loads(capsys.readouterr().out)
    assert "$schema" in schema
    assert schema["$schema"].startswith("https://json-schema.org/")


def test_export_json_to_a_file(
    config: Path, seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("console.export.document")
    target = tmp_path / "out" / "postmortem.txt"

    assert run(config, "export", "INC-1", "--format", "json", "-o", str(target)) == 0

    out, err = capsys.readouterr()
    assert out == ""
    assert "INC-1 exported to" in err
    doc = json.loads(target.read_text(encoding="utf-8"))
    assert doc["incident"]["id"] == "INC-1"
    assert doc["incident"]["model"] == "fraud-detector"
    assert [e["kind"] for e in doc["timeline"]] == ["alert.firing", "incident.opened", "note"]


def test_export_format_follows_the_file_extension(
    config: Path, seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("console.export.document")
    target = tmp_path / "INC-2.json"

    assert run(config, "export", "INC-2", "-o", str(target)) == 0
    assert json.loads(target.read_text(encoding="utf-8"))["incident"]["state"] == "resolved"

    assert "(json)" in capsys.readouterr().err

    # No -o: Markdown on stdout.
    assert run(config, "export", "INC-2") == 0
    markdown = capsys.readouterr().out
    assert "INC-2" in markdown
    assert "\n## " in markdown
    with pytest.raises(json.JSONDecodeError):
        json.loads(markdown)


def test_export_without_an_incident_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export"]) == 2
    assert "name an incident" in capsys.readouterr().err


def test_a_second_export_never_overwrites_the_first(
    tmp_path: Path, config: Path, seeded: Path
) -> None:
    from console.config.loader import load_config
    from console.export.build import export_files
    from console.session import open_reading

    records = open_reading(load_config(config))
    try:
        incident = records.book.find("INC-1")
        first = export_files(records, incident, tmp_path / "out")
        (tmp_path / "out" / "INC-1.md").write_text("edited draft")
        second = export_files(records, incident, tmp_path / "out")
    finally:
        records.close_stores()
    assert [p.name for p in first] == ["INC-1.md", "INC-1.json"]
    assert all(p.name.startswith("INC-1-") and p.exists() for p in second)
    assert (tmp_path / "out" / "INC-1.md").read_text() == "edited draft"


def test_an_action_is_not_filed_under_an_unknown_incident(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from console.actions.origin import Origin
    from console.config.loader import load_config
    from console.incidents.model import IncidentError
    from console.session import open_session_sync

    space = open_session_sync(load_config(config), actor="ann")
    try:
        with pytest.raises(IncidentError, match="no incident INC-99"):
            space.filing("fraud-detector", Origin(incident="INC-99"))
    finally:
        space.close_stores()


def test_export_links_open_where_the_config_says(
    seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Graph and registry links use each source's external_url (else its url, less any
    user:password@), never a fixed lab address."""
    config = tmp_path / "linked.yaml"
    text = CONFIG_TEXT.format(store=seeded).replace(
        "sources:\n",
        "sources:\n"
        "  prometheus:\n"
        "    type: prometheus\n"
        "    url: http://ann:secret@127.0.0.1:9\n"
        "    external_url: https://prom.example.com/\n"
        "    timeout: 0.2\n"
        "    retries: 0\n"
        "    backoff: 0\n"
        "  registry:\n"
        "    type: mlflow\n"
        "    url: http://127.0.0.1:9\n"
        "    external_url: https://mlflow.example.com\n",
    )
    config.write_text(text, encoding="utf-8")
    target = tmp_path / "INC-1.json"

    assert run(config, "export", "INC-1", "-o", str(target)) == 0

    doc = json.loads(target.read_text(encoding="utf-8"))
    graphs = [link["url"] for link in doc["links"] if link["kind"] == "graph"]
    assert graphs and all(u.startswith("https://prom.example.com/graph?g0.expr=") for u in graphs)
    assert "mlc%3Aerror_ratio%3Arate1m" in graphs[0]  # the SLI's own query, measured
    assert "127.0.0.1" not in json.dumps(doc["links"]) and "secret" not in json.dumps(doc)


def test_a_note_of_several_lines_is_shown_and_exported_whole(
    config: Path, seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every line of a note reaches ``incident show`` and the Markdown export (newlines
    shown, never forging a line), not only its first line."""
    note = "rolled back to v3\nv4 stays blocked until the schema is fixed"
    assert run(config, "incident", "note", "INC-1", note) == 0
    capsys.readouterr()

    assert run(config, "incident", "show", "INC-1") == 0
    shown = capsys.readouterr().out
    (line,) = [row for row in shown.splitlines() if "rolled back to v3" in row]
    assert line.endswith("rolled back to v3\\nv4 stays blocked until the schema is fixed")

    assert run(config, "export", "INC-1") == 0
    markdown = capsys.readouterr().out
    assert "rolled back to v3 v4 stays blocked until the schema is fixed" in markdown


def test_an_incident_number_too_large_for_the_store_is_one_message(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from console.incidents.model import IncidentError, parse_incident_id

    with pytest.raises(IncidentError, match="is not an incident id"):
        parse_incident_id("INC-99999999999999999999999")
    assert run(config, "incident", "show", "99999999999999999999999") == 2
    assert "'99999999999999999999999' is not an incident id" in capsys.readouterr().err
