"""Text from outside is shown inert: escape sequences, bidi overrides and markup in
alert annotations, labels, notes, registry tags and actor names are made visible on
every screen and in every command's output, never interpreted."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text
from textual.content import Content

from adapters.records import AlertRecord
from console.audit.log import AuditLog
from console.export.words import md_code, md_escape
from console.sources.snapshot import Snapshot
from console.text import inert
from tests.builders import CONFIG, NOW, snapshot
from tests.test_incident_cli import config, run, store  # noqa: F401 - fixtures

ESC = "\x1b"
CLEAR = "\x1b[2J\x1b[H all good, no alerts firing"
TITLE = "\x1b]0;pwned\x07"
CLIPBOARD = "\x1b]52;c;cm0gLXJmIC8K\x07"
HOSTILE = f"{CLEAR} {TITLE} {CLIPBOARD} \x9b2J \u202eevil\u202c zero\u200bwidth [red]red[/red]"
ACTOR = f"eve{TITLE}\n    9 2026-11-23T03:00:00Z result    rollback: forged (by root)"
SHOWN = "\\x1b[2J\\x1b[H all good"

RAW_CONTROLS = (ESC, "\x07", "\x9b", "\u202e", "\u200b")


def assert_inert(text: str) -> None:
    """No control character reaches the output, and the hostile ones are visible."""
    for char in RAW_CONTROLS:
        assert char not in text, f"{char!r} reached the output"


# -- the one function -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain words", "plain words"),
        (CLEAR, "\\x1b[2J\\x1b[H all good, no alerts firing"),
        (TITLE, "\\x1b]0;pwned\\x07"),
        ("\x9b31mred", "\\x9b31mred"),
        ("del\x7f", "del\\x7f"),
        ("a\u202eb\u2066c", "a\\u202eb\\u2066c"),
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("one\ntwo\r\nthree\tfour", "one\\ntwo\\r\\nthree\\tfour"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("naïve café ✓", "naïve café ✓"),
    ],
)
def test_inert_shows_controls_as_escapes(raw: str, shown: str) -> None:
    assert inert(raw) == shown


def test_inert_keeps_newlines_only_where_lines_are_expected() -> None:
    assert inert("one\r\ntwo\rthree\n\x1b", multiline=True) == "one\ntwo\nthree\n\\x1b"
    assert inert("one\ntwo") == "one\\ntwo"


def test_every_unsafe_character_is_escaped_and_none_passes_the_printable_fast_path() -> None:
    from console.text import UNSAFE_RANGES

    for first, last in UNSAFE_RANGES:
        for code in range(first, last + 1):
            char = chr(code)
            # inert() skips its escaping for printable text: none of these may be.
            assert not char.isprintable(), hex(code)
            assert char not in inert(f"a{char}b"), hex(code)
            if char not in "\r\n":
                assert char not in inert(f"a{char}b", multiline=True), hex(code)
    # Unprintable but harmless (a no-break space) is kept as it is.
    assert inert("a\u00a0b") == "a\u00a0b"


def test_a_clean_string_is_returned_as_it_is() -> None:
    clean = "fraud-detector burns its error budget 58x"
    assert inert(clean) is clean
    assert inert(None) == "" and inert(3) == "3"


@pytest.mark.parametrize(
    "raw",
    [
        "[red]red[/red]",
        "[link=https://evil.example]click[/link]",
        "[@click=app.quit]quit[/]",
        "rate(x[5m])",
        "C:\\[x]",
        "ends in a backslash\\",
    ],
)
def test_markup_is_shown_not_applied_by_rich_and_textual(raw: str) -> None:
    markup = inert(raw, markup=True) + "[b]!" + "[/b]"
    for parse in (Text.from_markup, Content.from_markup):
        parsed = parse(markup)
        assert parsed.plain.replace("\\x5c", "\\") == raw + "!"
        assert len(parsed.spans) == 1  # only the caller's own [b]


# -- command output ----------------------------------------------------------------------


def hostile_snapshot() -> Snapshot:
    base = snapshot()
    alert = AlertRecord(
        fingerprint="fraud-detector-ModelErrorBudgetBurn",
        labels={
            "alertname": "ModelErrorBudgetBurn",
            "model": "fraud-detector",
            "severity": "page",
            "team": f"ml{TITLE}",
        },
        annotations={"summary": HOSTILE, "description": CLIPBOARD},
        starts_at=datetime.fromtimestamp(NOW - 180, UTC),
        ends_at=None,
        updated_at=None,
        state="active",
        generator_url=f"http://127.0.0.1:19090/graph{TITLE}",
    )
    sources = dict(base.sources)
    sources["prometheus"] = replace(
        sources["prometheus"],
        last_success=NOW - 42,
        last_error=f"prometheus: HTTP 500: {CLEAR}",
        last_error_at=NOW - 1,
    )
    return Snapshot.build(
        taken_at=NOW,
        slis=base.slis,
        readings=base.readings,
        alerts=(alert,),
        sources=sources,
    )


def test_status_shows_hostile_text_inert() -> None:
    from console.cli.status import render_status

    out = io.StringIO()
    render_status(hostile_snapshot(), CONFIG, NOW, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert_inert(text)
    assert SHOWN in text
    assert "[red]red[/red]" in text  # shown, not applied
    assert "\\x1b]0;pwned\\x07" in text


def test_a_huge_annotation_is_cut_in_one_line_cells() -> None:
    from console.cli.status import render_status

    huge = "x" * 200_000
    snap = hostile_snapshot()
    alert = replace(snap.alerts[0], annotations={"summary": huge})
    snap = replace(snap, alerts=(alert,))
    out = io.StringIO()
    render_status(snap, CONFIG, NOW, Console(file=out, width=120, color_system=None))
    text = out.getvalue()
    assert "(+199,500 characters)" in " ".join(text.split())
    assert len(text) < 10_000  # not 200 KB wrapped over 1,700 lines
    assert inert(huge, limit=10) == "xxxxxxxxxx… (+199,990 characters)"


@pytest.fixture
def hostile_incident(store: Path) -> Path:  # noqa: F811
    """INC-1 on an alert whose summary is hostile, noted by a hostile actor."""
    from console.incidents.book import IncidentBook

    seed_hostile(IncidentBook(store))
    return store


def seed_hostile(book: Any) -> None:
    """Open INC-1 on the hostile alert as the hostile actor, who notes and acks it."""
    try:
        book.open(list(hostile_snapshot().alerts), model_label="model", actor=ACTOR, now=NOW)
        book.note(1, f"note {CLEAR}\nforged line {CLIPBOARD}", actor=ACTOR, now=NOW + 5)
        book.acknowledge(1, actor=ACTOR, now=NOW + 6)
    finally:
        book.close()


def test_incident_show_and_list_show_hostile_text_inert(
    config: Path,  # noqa: F811
    hostile_incident: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(config, "incident", "show", "INC-1") == 0
    out = capsys.readouterr().out
    assert_inert(out)
    assert "note \\x1b[2J\\x1b[H all good, no alerts firing" in out
    assert "\\x1b]52;c;cm0gLXJmIC8K\\x07" in out
    assert not any(line.startswith("forged line") for line in out.splitlines())

    assert run(config, "incident", "list", "--no-sync") == 0
    out = capsys.readouterr().out
    assert_inert(out)
    assert len(out.splitlines()) == 2  # the header and INC-1: the actor forged no row


def test_json_keeps_the_exact_text(
    config: Path,  # noqa: F811
    hostile_incident: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(config, "incident", "show", "INC-1", "--json") == 0
    out = capsys.readouterr().out
    assert_inert(out)  # JSON escapes it
    data = json.loads(out)
    notes = [e for e in data["timeline"] if e["kind"] == "note"]
    assert notes[0]["actor"] == ACTOR
    assert CLEAR in notes[0]["summary"]


def test_markdown_export_shows_hostile_text_inert(
    config: Path,  # noqa: F811
    hostile_incident: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(config, "export", "INC-1") == 0
    markdown = capsys.readouterr().out
    assert_inert(markdown)
    assert "\\x1b\\[2J\\x1b\\[H all good" in markdown
    assert "\\[red\\]red\\[/red\\]" in markdown  # no forged link or markup
    assert not any(line.startswith("    9 2026") for line in markdown.splitlines())


def test_md_escape_and_md_code_show_controls() -> None:
    assert md_escape(TITLE) == "\\x1b\\]0;pwned\\x07"
    assert md_escape("[click](https://evil.example)") == "\\[click\\](https://evil.example)"
    assert md_code(CLEAR) == "`\\x1b[2J\\x1b[H all good, no alerts firing`"


def test_a_forged_newline_in_the_actor_forges_no_audit_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "audit.db"
    log = AuditLog(db)
    try:
        log.append("intent", actor=ACTOR, action="rollback", params={"model": "fraud-detector"})
        log.append("intent", actor="ann", action="pipeline", params={"model": HOSTILE})
    finally:
        log.close()

    assert run(tmp_path / "none.yaml", "audit", "list", "--db", str(db)) == 0
    out = capsys.readouterr().out
    assert_inert(out)
    lines = out.splitlines()
    assert len(lines) == 2
    assert "(by eve\\x1b]0;pwned\\x07\\n    9 2026-11-23T03:00:00Z result" in lines[0]


def test_runbook_run_shows_hostile_labels_inert(
    config: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runbook = tmp_path / "hostile.yaml"
    runbook.write_text(
        """\
id: hostile
title: Hostile labels
version: 1
labels: [model]
match: [{alertname: X}]
steps:
  - id: ask
    kind: ask
    question: "Is {{ labels.model }} healthy?"
    choices:
      - {label: "yes for {{ labels.model }}", next: done}
      - {label: "no", next: done}
  - id: done
    kind: conclude
    cause: unknown
    summary: "{{ labels.model }} concluded"
""",
        encoding="utf-8",
    )
    argv = ["runbook", "run", str(runbook), "--store", str(tmp_path / "rb.db")]
    code = run(config, *argv, "--labels", f"model=m{CLEAR}")
    out = capsys.readouterr().out
    assert code == 1, capsys.readouterr().err  # waiting at the question
    assert_inert(out)
    assert f"Is m{SHOWN}" in out

    code = run(config, *argv, "--labels", f"model=m{CLEAR}", "--answer", "ask=1")
    out = capsys.readouterr().out
    assert code == 0, out
    assert_inert(out)
    assert f"m{SHOWN}, no alerts firing concluded" in out


# -- screens -----------------------------------------------------------------------------

SIZE = (160, 40)


def hostile_app() -> Any:
    from screens.app import create_app
    from tests.builders import CONFIG

    app = create_app(CONFIG, poll=False, clock=lambda: NOW)
    app.snapshot = hostile_snapshot()
    return app


def test_dashboard_shows_hostile_text_inert(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(hostile_app(), terminal_size=SIZE)


def test_alert_detail_shows_hostile_text_inert(snap_compare) -> None:  # type: ignore[no-untyped-def]
    # enter: open the first row, fraud-detector, the model with the hostile alert
    assert snap_compare(hostile_app(), press=["enter"], terminal_size=SIZE)


async def test_screens_hold_no_raw_control_characters() -> None:
    from textual.widgets import DataTable, Static

    app = hostile_app()
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#alerts", DataTable)
        row = " ".join(str(cell) for cell in table.get_row_at(0))
        assert_inert(row)
        assert SHOWN in row
        bar = str(app.screen.query_one("SourceBar", Static).render())
        assert_inert(bar)
        await pilot.press("enter")  # open the first row's alert (fraud-detector's)
        out = io.StringIO()
        Console(file=out, width=160, color_system=None).print(
            app.screen.query_one("#alert", Static).content
        )
        detail = out.getvalue()
        assert_inert(detail)
        assert "\\x1b]52;c;cm0gLXJmIC8K\\x07" in detail


def test_incident_screen_shows_hostile_text_inert(tmp_path: Path, snap_compare) -> None:  # type: ignore[no-untyped-def]
    from screens.incident import IncidentScreen
    from tests.test_incident_screen import book_of, make_app, make_config, until

    cfg = make_config(tmp_path)
    seed_hostile(book_of(cfg))
    app = make_app(cfg)
    app.snapshot = hostile_snapshot()

    async def open_incident(pilot) -> None:  # type: ignore[no-untyped-def]
        await until(pilot, lambda: app.incidents is not None, "the incidents opened")
        await pilot.press("I")  # the open incidents
        await until(pilot, lambda: app.screen.query("DataTable#incidents"), "the list")
        await pilot.press("enter")  # open INC-1
        await until(
            pilot,
            lambda: isinstance(app.screen, IncidentScreen) and len(app.screen.events) == 4,
            "the timeline read",
        )
        await pilot.press("up")  # select the note
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, run_before=open_incident, terminal_size=SIZE)


def test_plan_shows_hostile_registry_tags_inert(tmp_path: Path, snap_compare) -> None:  # type: ignore[no-untyped-def]
    from screens.action import ActionScreen
    from tests.test_action_screen import app_with_fakes, until

    app, fakes = app_with_fakes(tmp_path)
    fakes["registry"].tags["3"]["git_sha"] = f"abc{TITLE}{CLIPBOARD}"
    fakes["registry"].tags["4"]["trained_on"] = CLEAR

    async def plan(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("down", "r")  # select fraud-detector; plan its rollback
        screen = await until(
            pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, "the plan"
        )
        shown = "\n".join(str(line) for line in screen._plan_text().split())
        assert_inert(shown)
        assert "abc\\x1b]0;pwned\\x07\\x1b]52;c;cm0gLXJmIC8K\\x07" in shown
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, run_before=plan, terminal_size=SIZE)


def test_check_evidence_shows_series_labels_inert() -> None:
    """A check's series are named by their labels (which feature drifted): from
    Prometheus, so outside text too."""
    from console.triage.store import Evidence
    from screens.evidence import evidence_line

    item = Evidence(
        "drift",
        "check",
        {"query": "q"},
        {"values": [{"labels": {"feature": f"amount{TITLE}"}, "value": 0.47}]},
        "true",
        ACTOR,
        NOW,
    )
    line = evidence_line(item, NOW).plain
    assert_inert(line)
    assert "feature=amount\\x1b]0;pwned\\x07 0.47" in line


async def test_a_filter_with_markup_is_shown_as_typed() -> None:
    from textual.widgets import Static

    app = hostile_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash")  # open the filter box
        await pilot.press(*"[/]")  # type what markup would read as a closing tag
        await pilot.pause()
        title = str(app.screen.query_one("#models-title", Static).render())
        assert "filter: '[/]'" in title
