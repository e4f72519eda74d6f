"""Alias history: every alias move the console observes, whoever made it.

Registries such as MLflow keep no history of alias changes, so "the version
before" is unknowable from the registry alone. The console records each change
it sees while polling (a deploy tool, a person, or the console itself moved it),
in the store's SQLite file, so every responder's console shares the history.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from adapters.records import RegisteredModel
from console.sources.snapshot import Deployment
from console.sqlite_file import open_sqlite, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS alias_history (
    id INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    alias TEXT NOT NULL,
    version TEXT,
    previous TEXT,
    observed_at REAL NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alias_history_key ON alias_history (model, alias, id);
"""


class HistoryError(Exception):
    """The alias history cannot be read or written."""


class AliasHistory:
    """Record alias moves and answer "what did it point at before?"."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = open_sqlite(path, SCHEMA, synchronous="NORMAL")
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot open the alias history in {path}: {exc}") from exc
        # Polls write from a worker thread while actions read on the event loop.
        self._lock = threading.Lock()

    def close(self) -> None:
        # A poll's observe may still run in its worker thread (a cancelled to_thread
        # runs on): closing the connection under its feet would crash the process.
        with self._lock:
            self._db.close()

    def observe(
        self,
        models: Iterable[RegisteredModel],
        alias: str,
        *,
        source: str = "poll",
        at: float | None = None,
    ) -> dict[str, Deployment]:
        """Record every change of ``alias`` since the last observation; return the state."""
        now = time.time() if at is None else at
        try:
            with self._lock, transaction(self._db) as db:
                found: dict[str, Deployment] = {}
                for model in models:
                    version = model.aliases.get(alias)
                    deployment = self._deployment(db, model.name, alias)
                    if deployment is None or deployment.version != version:
                        previous = deployment.version if deployment else None
                        db.execute(
                            "INSERT INTO alias_history"
                            " (model, alias, version, previous, observed_at, source)"
                            " VALUES (?, ?, ?, ?, ?, ?)",
                            (model.name, alias, version, previous, now, source),
                        )
                        deployment = self._deployment(db, model.name, alias)
                    if deployment is not None:
                        found[model.name] = deployment
                return found
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot write the alias history in {self.path}: {exc}") from exc

    def record(self, model: str, alias: str, version: str, *, source: str) -> None:
        """Record a move the console made itself (read back from the registry).

        Another console's poll may have seen the move first and filed it as its own
        observation: the move is then claimed for ``source``, so that rollbacks know
        the console made it."""
        try:
            with self._lock, transaction(self._db) as db:
                row = db.execute(
                    "SELECT id, version FROM alias_history WHERE model = ? AND alias = ?"
                    " ORDER BY id DESC LIMIT 1",
                    (model, alias),
                ).fetchone()
                if row is not None and row[1] == version:
                    db.execute("UPDATE alias_history SET source = ? WHERE id = ?", (source, row[0]))
                    return
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot write the alias history in {self.path}: {exc}") from exc
        self.observe([RegisteredModel(model, {alias: version})], alias, source=source)

    def deployment(self, model: str, alias: str) -> Deployment | None:
        try:
            with self._lock:
                return self._deployment(self._db, model, alias)
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot read the alias history in {self.path}: {exc}") from exc

    def models(self, alias: str) -> list[str]:
        """Every model whose ``alias`` the console has seen, in any session."""
        try:
            with self._lock:
                rows = self._db.execute(
                    "SELECT DISTINCT model FROM alias_history WHERE alias = ? ORDER BY model",
                    (alias,),
                ).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot read the alias history in {self.path}: {exc}") from exc
        return [r[0] for r in rows]

    def changes(self, model: str, alias: str) -> list[tuple[str | None, str | None, float, str]]:
        """Every recorded move of one alias, oldest first: (previous, version, at, source)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT previous, version, observed_at, source FROM alias_history"
                " WHERE model = ? AND alias = ? ORDER BY id",
                (model, alias),
            ).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    @staticmethod
    def _deployment(db: sqlite3.Connection, model: str, alias: str) -> Deployment | None:
        rows = db.execute(
            "SELECT version, previous, observed_at FROM alias_history"
            " WHERE model = ? AND alias = ? ORDER BY id DESC LIMIT 2",
            (model, alias),
        ).fetchall()
        if not rows:
            return None
        version, previous, since = rows[0]
        return Deployment(
            model=model,
            alias=alias,
            version=version,
            since=since,
            previous=previous,
            first_seen=len(rows) == 1 and previous is None,
        )
