"""The audit log: append-only, hash-chained (:mod:`console.audit.chain`), in SQLite.

The file is opened with ``synchronous=FULL``: an intent is on disk before the action
it announces runs. If an entry cannot be written, :class:`AuditError` is raised and
the caller must not act (fail closed)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from console.audit.chain import (
    GENESIS,
    KINDS,
    TIME_FORMAT,
    AuditEntry,
    AuditError,
    VerifyResult,
    canonical,
    chain_hash,
    doubtful_seqs,
    entry_from_row,
    span_text,
    walk_chain,
)
from console.sqlite_file import (
    open_sqlite,
    open_sqlite_readonly,
    refuse_non_regular,
    transaction,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
"""


class AuditLog:
    """Append and read audit entries; one SQLite file, shared by every responder.

    ``read_only`` opens it only to read (``audit verify`` and ``audit list``): the file
    is never changed, so a read-only copy can be checked; ``append`` then fails.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._lock = threading.Lock()
        try:
            if read_only:
                self._db = open_sqlite_readonly(path)
            else:
                self._db = open_sqlite(path, SCHEMA, synchronous="FULL")
        except (OSError, sqlite3.Error) as exc:
            raise AuditError(f"cannot open the audit log {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append(
        self,
        kind: str,
        *,
        actor: str,
        action: str,
        params: Mapping[str, Any],
        incident: str | None = None,
        plan: Mapping[str, Any] | None = None,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        intent_seq: int | None = None,
        process: Mapping[str, Any] | None = None,
        at: float | None = None,
    ) -> AuditEntry:
        """Write one entry durably and return it. Raises AuditError if it cannot."""
        if kind not in KINDS:
            raise ValueError(f"audit entry kind must be one of {KINDS}, not {kind!r}")
        moment = time.time() if at is None else at
        body: dict[str, Any] = {
            "kind": kind,
            "at": time.strftime(TIME_FORMAT, time.gmtime(moment)),
            "ts": round(moment, 3),
            "actor": actor,
            "incident": incident,
            "action": action,
            "params": dict(params),
            "plan": dict(plan) if plan is not None else None,
            "result": dict(result) if result is not None else None,
            "error": error,
            "intent_seq": intent_seq,
        }
        if process is not None:  # who runs it: an intent in progress is not in doubt
            body["process"] = dict(process)
        body_json = canonical(body)
        if self.read_only:
            raise AuditError(f"the audit log {self.path} is open read-only")
        written = False
        try:
            # One connection: appends from worker threads take turns.
            with self._lock, transaction(self._db) as db:
                row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
                # Appending over a gap would make the chain whole again and hide it:
                # refuse unless the head file names the last entry in the table.
                problem = self._head_problem(seq - 1, prev)
                if problem is not None:
                    raise AuditError(
                        f"the audit log {self.path} is not whole: {problem}; nothing was "
                        "written, so nothing may run. Run `mlconsole audit verify`, then "
                        "restore the log from a copy or move it aside to start a new one"
                    )
                digest = chain_hash(prev, body_json)
                db.execute("INSERT INTO audit VALUES (?, ?, ?, ?)", (seq, body_json, prev, digest))
                # Under the write lock, so two consoles never interleave their heads;
                # if it fails the entry is rolled back: nothing is half-written.
                self._write_head(seq, digest)
                written = True
        except sqlite3.Error as exc:
            if written:  # the head names an entry the failed commit took back
                with contextlib.suppress(AuditError):
                    self._write_head(seq - 1, prev)
            raise AuditError(f"cannot write the audit log {self.path}: {exc}") from exc
        return AuditEntry(seq, json.loads(body_json), prev, digest)

    def _head_problem(self, last: int, last_hash: str) -> str | None:
        """What is wrong between the head file and a table whose last entry is
        ``last`` (``last_hash``), or None when the head names exactly that entry."""
        head = self._read_head()
        if head is None:
            return f"the head file {self.head_path} is missing" if last > 0 else None
        head_seq, head_hash = head
        if head_seq < 0:
            return f"the head file {self.head_path} is unreadable"
        if head_seq > last:
            return (
                f"{span_text(last + 1, head_seq)} missing: the log holds {last} entries but "
                f"its head file recorded {head_seq} (the log was truncated)"
            )
        if head_seq < last:
            return (
                f"the head file records entry {head_seq}, but the log holds {last}: "
                f"{span_text(head_seq + 1, last)} added without it (or the head file was "
                "replaced by an older copy)"
            )
        if head_seq > 0 and head_hash != last_hash:
            return f"entry {head_seq} is not the one the head file recorded"
        return None

    @property
    def head_path(self) -> Path:
        return self.path.with_name(self.path.name + ".head")

    def _write_head(self, seq: int, digest: str) -> None:
        """The chain alone cannot show that its last entries were cut off; the head
        file, written after every append, remembers how long the chain was."""
        tmp = self.head_path.with_name(f"{self.head_path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump({"seq": seq, "hash": digest}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.head_path)
        except OSError as exc:
            raise AuditError(f"cannot write the audit head {self.head_path}: {exc}") from exc

    def _read_head(self) -> tuple[int, str] | None:
        try:
            refuse_non_regular(self.head_path)  # a FIFO there would block the read
            data = json.loads(self.head_path.read_text(encoding="utf-8"))
            return int(data["seq"]), str(data["hash"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return (-1, "")

    def _rows(self, incident: str | None = None) -> list[tuple[int, str, str, str]]:
        """Every row as stored (or those filed under ``incident``), in chain order."""
        sql = "SELECT seq, body, prev_hash, hash FROM audit"
        args: tuple[str, ...] = ()
        if incident is not None:
            # A malformed body (verify reports it) must not hide every other entry.
            sql += " WHERE json_valid(body) AND json_extract(body, '$.incident') = ?"
            args = (incident,)
        try:
            with self._lock:
                return self._db.execute(sql + " ORDER BY seq", args).fetchall()
        except sqlite3.Error as exc:
            raise AuditError(f"cannot read the audit log {self.path}: {exc}") from exc

    def entries(self, *, incident: str | None = None) -> list[AuditEntry]:
        """Every entry, or those filed under ``incident``."""
        return [entry_from_row(*row) for row in self._rows(incident)]

    def listing(self, batch: int = 1_000) -> Iterator[tuple[AuditEntry, bool]]:
        """Every entry in chain order, each with whether it is an intent in doubt (as
        :meth:`in_doubt` finds), read in one transaction, so an entry appended
        meanwhile by another console cannot close an intent the listing shows open.

        Two passes through a cursor, ``batch`` rows at a time: the first learns
        which intents are in doubt, the second yields every entry. Memory holds a
        batch and the intents not closed yet, not the log: a million entries are
        listed as ten are."""
        try:
            with self._lock:
                self._db.execute("BEGIN")
            try:
                in_doubt = self._intents_in_doubt(batch)
                for entry in self._each_entry(batch):
                    yield entry, entry.kind == "intent" and entry.seq in in_doubt
            finally:
                with self._lock:
                    self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise AuditError(f"cannot read the audit log {self.path}: {exc}") from exc

    def _each_entry(self, batch: int) -> Iterator[AuditEntry]:
        with self._lock:
            cursor = self._db.execute("SELECT seq, body, prev_hash, hash FROM audit ORDER BY seq")
        while True:
            with self._lock:
                rows = cursor.fetchmany(batch)
            if not rows:
                return
            for row in rows:
                yield entry_from_row(*row)

    def _intents_in_doubt(self, batch: int) -> set[int]:
        """The first pass of :meth:`listing`."""
        return doubtful_seqs(self._each_entry(batch))

    def in_doubt(self, entries: list[AuditEntry] | None = None) -> list[AuditEntry]:
        """Intents with no result, refusal or reconciliation: a crash between the two.
        ``entries`` spares a second read when the caller has them already."""
        entries = self.entries() if entries is None else entries
        doubtful = doubtful_seqs(entries)
        return [e for e in entries if e.kind == "intent" and e.seq in doubtful]

    def verify(self) -> VerifyResult:
        """Walk the chain; the first entry that does not hold is named.

        The rows stream through one cursor: memory stays the same at a million
        entries as at ten (reading them all at once took a gigabyte)."""
        try:
            with self._lock:
                rows = self._db.execute("SELECT seq, body, prev_hash, hash FROM audit ORDER BY seq")
                count, prev, broken = walk_chain(rows)
                if broken is not None:  # how many there are, for the report
                    count = self._db.execute("SELECT count(*) FROM audit").fetchone()[0]
        except sqlite3.Error as exc:
            raise AuditError(f"cannot read the audit log {self.path}: {exc}") from exc
        if broken is not None:
            return VerifyResult(False, count, *broken)
        # The head is written inside the append's transaction, before its commit
        # (and put back if the commit fails): it names the last entry exactly.
        problem = self._head_problem(count, prev)
        if problem is None:
            return VerifyResult(True, count)
        head = self._read_head()
        head_seq = head[0] if head is not None else 0
        bad: int | None = None
        if head_seq > count:
            bad = count + 1
        elif 0 < head_seq < count:
            bad = head_seq + 1
        elif head_seq == count and head_seq > 0:
            bad = head_seq
        return VerifyResult(False, count, bad, problem)

    def head(self) -> str:
        """The last hash: publish it elsewhere and truncation becomes detectable too."""
        with self._lock:
            row = self._db.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return str(row[0]) if row else GENESIS
