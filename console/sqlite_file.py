"""One way to open and write the console's SQLite files (store and audit log)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal


def open_sqlite(
    path: Path, schema: str, *, synchronous: Literal["NORMAL", "FULL"]
) -> sqlite3.Connection:
    """Open (creating) ``path`` in WAL mode with ``schema`` applied.

    Raises OSError or sqlite3.Error; callers wrap them in their own error. The
    connection is opened in a worker thread at start-up and used on the event
    loop after: one connection, never used by two threads at once.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.executescript(schema)
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
