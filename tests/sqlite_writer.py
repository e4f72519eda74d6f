"""Another process in the middle of a write to a SQLite file, for as long as a test says."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

WRITER = textwrap.dedent(
    """
    import sqlite3, sys

    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN IMMEDIATE")  # another console writing
    print("writing", flush=True)
    sys.stdin.readline()
    db.execute("COMMIT")
    """
)


@contextmanager
def another_writer(path: Path) -> Iterator[Callable[[], None]]:
    """Hold ``path``'s write lock in another process; yields what ends that write."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    stdin = writer.stdin

    def finish() -> None:
        stdin.write("\n")
        stdin.flush()

    try:
        assert writer.stdout.readline().strip() == "writing"
        yield finish
    finally:
        writer.kill()
        writer.wait()
