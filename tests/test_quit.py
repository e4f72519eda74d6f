"""Quitting the real dashboard: the process ends at once, whatever a source still owes
it, with its terminal restored, its exit code kept and its files complete."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import yaml

from bench.quit import Terminal
from console.incidents.book import IncidentBook
from lab.configs import Ports, mlconsole_config
from tests.faultserver import serving

pytestmark = pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")

#: Only a failure guard: the process is expected to end at once, long before.
GUARD = 120
#: What Textual writes last when it gives the terminal back: leave the alternate
#: screen, show the cursor.
RESTORED = b"\x1b[?1049l\x1b[?25h"


@dataclass
class HangingSources:
    """Prometheus and Alertmanager on one real socket: one alert firing, every query
    answered (no data) but the range query of the firing model's first breach (the
    only one that selects a model), which is accepted and never answered."""

    url: str = ""
    range_asked: threading.Event = field(default_factory=threading.Event)
    #: Set when the test is over: only then are the held connections let go.
    release: threading.Event = field(default_factory=threading.Event)
    held: list[threading.Thread] = field(default_factory=list)


def _alert() -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "labels": {
            "alertname": "ModelErrorBudgetBurn",
            "model": "model-0001",
            "severity": "page",
            "sli": "error_ratio",
        },
        "annotations": {"summary": "model-0001 is burning its error budget"},
        "startsAt": (now - timedelta(minutes=10)).isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
        "updatedAt": now.isoformat(),
        "fingerprint": "0123456789abcdef",
        "generatorURL": "http://127.0.0.1/graph",
        "receivers": [{"name": "default"}],
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
    }


@contextmanager
def hanging_sources() -> Iterator[HangingSources]:
    state = HangingSources()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            path, _, query = self.path.partition("?")
            if self.command == "POST":
                query = self.rfile.read(int(self.headers["Content-Length"] or 0)).decode()
            asked = parse_qs(query).get("query", [""])[0]
            if path.endswith("/query_range") and "model-0001" in asked:
                state.held.append(threading.current_thread())
                state.range_asked.set()
                state.release.wait()  # the connection stays open, unanswered
                return
            if path == "/api/v2/alerts":
                body: object = [_alert()]
            elif path.startswith("/api/v2/"):
                body = []
            else:
                kind = "matrix" if path.endswith("/query_range") else "vector"
                body = {"status": "success", "data": {"resultType": kind, "result": []}}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as state.url:
        try:
            yield state
        finally:
            state.release.set()


def _config(sources: HangingSources, directory: Path) -> Path:
    port = int(sources.url.rsplit(":", 1)[1])
    text = mlconsole_config(
        Ports(port, port, port, port, port), directory, registry=False, scale=True
    )
    data = yaml.safe_load(text)
    # A query is given five minutes, once: what ends the process must not be a timeout.
    data["sources"]["prometheus"].update({"timeout": 300, "retries": 0})
    path = directory / "mlconsole.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@dataclass
class Ran:
    code: int
    terminal: bytes
    stdout: str


def _command() -> list[str]:
    """The installed ``mlconsole`` command, as a user runs it."""
    script = shutil.which("mlconsole", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "console.cli.main"]


def _run_until_quit(config: Path, ready: threading.Event) -> Ran:
    """The real command in a terminal: ``q`` once ``ready`` is set."""
    terminal = Terminal([*_command(), "--config", str(config)], stdout=subprocess.PIPE)
    try:
        assert ready.wait(GUARD), "the console never got as far as the test needs"
        terminal.press(b"q")  # q: quit
        stdout, _ = terminal.process.communicate(timeout=GUARD)
    finally:
        terminal.close()
    return Ran(terminal.process.returncode, bytes(terminal.screen), stdout.decode())


def test_q_ends_the_process_while_a_first_breach_read_is_still_unanswered(
    tmp_path: Path,
) -> None:
    """A page opens an incident, whose first breach is read in a worker thread from a
    Prometheus that accepted the range query and never answers. ``q`` ends the process
    while the server still holds that connection open, not when the query times out:
    the loop's join of its worker threads does not wait on the source."""
    with hanging_sources() as sources:
        ran = _run_until_quit(_config(sources, tmp_path), sources.range_asked)
        still_held = [t for t in sources.held if t.is_alive()]
        assert still_held and not sources.release.is_set()  # the answer never came
    assert ran.code == 0, ran.terminal[-2000:]
    # The terminal was given back after the last frame: nothing drew after it.
    assert ran.terminal.rfind(RESTORED) > ran.terminal.rfind(b"\x1b[?1049h") >= 0
    assert b"\x1b[?1049h" not in ran.terminal[ran.terminal.rfind(RESTORED) :]
    assert ran.stdout == ""


def test_what_the_session_wrote_is_complete_after_q(tmp_path: Path) -> None:
    """After ``q`` every store the session opened is closed: the incident the page
    opened is committed, no write-ahead log is left to replay, and the audit log
    verifies."""
    with hanging_sources() as sources:
        config = _config(sources, tmp_path)
        ran = _run_until_quit(config, sources.range_asked)
    assert ran.code == 0, ran.terminal[-2000:]
    store = Path(yaml.safe_load(config.read_text())["store"]["path"])
    left = sorted(p.name for p in store.parent.glob("*-wal"))
    left += sorted(p.name for p in Path(os.environ["XDG_STATE_HOME"]).rglob("*-wal"))
    assert left == []  # every connection closed, its log checkpointed
    book = IncidentBook(store)
    try:
        (incident,) = book.incidents(open_only=True)
    finally:
        book.close()
    assert (incident.model, incident.alertname) == ("model-0001", "ModelErrorBudgetBurn")
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    verify = subprocess.run(
        [*_command(), "--config", str(config), "audit", "verify"],
        capture_output=True,
        text=True,
        timeout=GUARD,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
