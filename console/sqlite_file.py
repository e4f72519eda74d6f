"""One way to open and write the console's SQLite files (store and audit log)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from console.file_kind import not_regular


def refuse_non_regular(path: Path) -> None:
    """Raise OSError if ``path`` exists and is not a regular file (a symlink to one is
    fine): SQLite would block on a FIFO until a writer comes, and read a device."""
    try:
        kind = not_regular(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if kind is not None:
        raise OSError(f"{path} is {kind}, not a regular file")


def open_sqlite(
    path: Path, schema: str, *, synchronous: Literal["NORMAL", "FULL"]
) -> sqlite3.Connection:
    """Open (creating) ``path`` in WAL mode with ``schema`` applied.

    Raises OSError or sqlite3.Error; callers wrap them in their own error. The
    connection is opened in a worker thread at start-up and used on the event
    loop after: one connection, never used by two threads at once.
    """
    refuse_non_regular(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.executescript(schema)
    return db


def open_sqlite_readonly(path: Path) -> sqlite3.Connection:
    """Open ``path`` only to read it: no schema, no journal-mode change, no file created.

    A log another process has open has its recent entries in ``<path>-wal``, which a
    read-only connection reads; without a WAL file the database is opened
    ``immutable``, which writes nothing beside it either, so a copy in a read-only
    directory can be checked. Raises sqlite3.Error (or OSError) when it cannot be read.
    """
    refuse_non_regular(path)
    uri = path.resolve().as_uri()
    wal = path.with_name(path.name + "-wal")
    mode = "mode=ro" if wal.exists() and wal.stat().st_size > 0 else "mode=ro&immutable=1"
    db = sqlite3.connect(f"{uri}?{mode}", uri=True, isolation_level=None, check_same_thread=False)
    db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # fails now, not later
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back if the body raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
