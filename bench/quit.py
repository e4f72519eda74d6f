"""Quit (``q``) in a real terminal: ``mlconsole`` at 1,000 models with 500 alerts firing
against the same command at 3 models.

Each run starts the command (``python -m console.cli.main --config ...``, as the installed
``mlconsole`` runs it) in a pseudo-terminal of 160x48, reading a synthetic fleet
(:mod:`bench.fleet`, served from this process). Once the dashboard is steady (the
fleet has been asked its SLIs, every alert's incident is open in the store, then
``--settle`` seconds more), ``q`` is typed, and two moments are timed from the key:

* the terminal given back (Textual's leaving the alternate screen reaches it);
* the process's end: what a user waits for before the shell prompt comes back.

The sides take turns (small, big, small, ...) so the machine's noise falls on both.

    python bench/quit.py [--models 1000] [--alerts 500] [--runs 3] [--settle 3]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What Textual writes when it gives the terminal back: leave the alternate screen.
RESTORED = b"\x1b[?1049l"


def open_incidents(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute("SELECT count(*) FROM incidents WHERE state != 'resolved'")
            return int(row.fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


class Terminal:
    """``command`` in a pseudo-terminal of 160x48 (its stdin and stderr, where Textual
    draws; stdout too unless given), its output drained as a terminal would."""

    def __init__(
        self,
        command: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stdout: int | None = None,
    ) -> None:
        self._master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
        self.process = subprocess.Popen(
            command,
            stdin=slave,
            stdout=slave if stdout is None else stdout,
            stderr=slave,
            env={**(os.environ if env is None else env), "TERM": "xterm-256color"},
            cwd=cwd,
        )
        os.close(slave)
        #: Everything written to the terminal.
        self.screen = bytearray()
        #: When the terminal was given back (``perf_counter``), once it was.
        self.restored_at: float | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.screen.extend(chunk)
            if self.restored_at is None and RESTORED in self.screen[-4096:]:
                self.restored_at = time.perf_counter()

    def press(self, keys: bytes) -> float:
        """Type ``keys``; when (``perf_counter``)."""
        os.write(self._master, keys)
        return time.perf_counter()

    def close(self) -> None:
        """After the process has ended: the rest of its output read, the terminal shut."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(30)
        os.close(self._master)


def one_run(fleet: object, config: Path, alerts: int, settle: float) -> tuple[float, float]:
    """Start, wait until steady, press q: seconds to the terminal back and to the end."""
    store = config.parent / "store.db"
    for leftover in config.parent.glob("store.db*"):
        leftover.unlink()
    state = tempfile.mkdtemp(prefix="mlconsole-quit-state-")
    asked = fleet.requests  # type: ignore[attr-defined]
    terminal = Terminal(
        [sys.executable, "-m", "console.cli.main", "--config", str(config)],
        env={**os.environ, "XDG_STATE_HOME": state},
        cwd=ROOT,
    )
    process = terminal.process
    try:
        deadline = time.monotonic() + 300
        while fleet.requests < asked + 20 or open_incidents(store) < alerts:  # type: ignore[attr-defined]
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the console never got steady (exit {process.poll()})")
            time.sleep(0.2)
        time.sleep(settle)
        pressed = terminal.press(b"q")
        process.wait(timeout=300)
        ended = time.perf_counter()
    finally:
        terminal.close()
    if process.returncode != 0:
        raise SystemExit(f"the console exited {process.returncode}")
    back = (terminal.restored_at or float("nan")) - pressed
    return back, ended - pressed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=500)
    parser.add_argument("--small", type=int, default=3, help="models of the small fleet")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds steady before q")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench.fleet import Fleet, write_config

    with tempfile.TemporaryDirectory(prefix="mlconsole-quit-") as tmp:
        sides = {}
        fleets = []
        for name, models, alerts in (
            ("small", args.small, 0),
            ("big", args.models, args.alerts),
        ):
            fleet = Fleet(models, seed=2).start()
            fleet.fire(alerts)
            fleets.append(fleet)
            directory = Path(tmp, name)
            directory.mkdir()
            sides[name] = (fleet, write_config(fleet, directory), alerts, models)
        times: dict[str, list[tuple[float, float]]] = {"small": [], "big": []}
        try:
            for turn in range(args.runs):
                for name, (fleet, config, alerts, _) in sides.items():
                    times[name].append(one_run(fleet, config, alerts, args.settle))
                    back, end = times[name][-1]
                    print(
                        f"turn {turn + 1} {name}: terminal back {back * 1000:.0f} ms, "
                        f"process ended {end * 1000:.0f} ms after q",
                        file=sys.stderr,
                    )
        finally:
            for fleet in fleets:
                fleet.stop()
    medians = {}
    for name, (_, _, alerts, models) in sides.items():
        back, end = (statistics.median(v) for v in zip(*times[name], strict=True))
        medians[name] = end
        print(
            f"quit (q) {name:<5} ({models} models, {alerts} alerts), median of {args.runs}: "
            f"terminal back {back * 1000:.0f} ms, process ended {end * 1000:.0f} ms"
        )
    print(f"ratio big/small, process ended: {medians['big'] / medians['small']:.2f}x")


if __name__ == "__main__":
    main()
