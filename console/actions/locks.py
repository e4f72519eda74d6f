"""Target locks: one mitigation at a time on one target, across every console.

MLflow has no conditional alias update, and a switch has no compare-and-set, so
two responders acting on the same target at once would both pass the check and
both apply. Every console sharing a store takes the target's lock from the world
check (compare) through the read-back, so the second one checks the world the
first one left, and is refused when it no longer matches its plan.

A lock is a lease: a holder that crashes blocks the target only until its lease
runs out. The contract is :class:`TargetLock`; :class:`SqliteTargetLock` keeps the
leases in the store's SQLite file (a PostgreSQL store keeps them in its own).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from console.sqlite_file import open_sqlite, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS target_locks (
    target TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token TEXT NOT NULL,
    taken_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
"""


class LockError(Exception):
    """The lock store cannot be read or written: no mitigation may run unlocked."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A lock held: who holds which target, until when (unix seconds)."""

    target: str
    holder: str
    token: str
    taken_at: float
    expires_at: float

    def describe(self) -> str:
        since = datetime.fromtimestamp(self.taken_at, UTC).strftime("%H:%M:%S UTC")
        until = datetime.fromtimestamp(self.expires_at, UTC).strftime("%H:%M:%S UTC")
        return f"{self.holder} holds {self.target} (since {since}, lease until {until})"


class LockBusy(Exception):
    """Another holder kept the target past the wait."""

    def __init__(self, lease: Lease) -> None:
        super().__init__(lease.describe())
        self.lease = lease


class TargetLock(ABC):
    """Leased locks on mitigation targets, honoured by every console of one store."""

    @abstractmethod
    def try_acquire(self, target: str, holder: str, lease: float) -> Lease:
        """Take ``target`` for ``lease`` seconds if it is free or its lease ran out.

        Returns the new lease, or raises :class:`LockBusy` with the live one.
        Raises :class:`LockError` when the lock store cannot be used.
        """

    @abstractmethod
    def release(self, lease: Lease) -> None:
        """Give the target back, if this lease still holds it (a lease that ran out
        and was taken over is left to its new holder)."""

    @abstractmethod
    def holder(self, target: str) -> Lease | None:
        """The live lease on ``target``, if any."""

    def close(self) -> None:  # noqa: B027 - most locks hold nothing to close
        """Release the lock store's resources."""

    async def acquire(
        self,
        target: str,
        holder: str,
        lease: float,
        *,
        wait: float,
        on_wait: Callable[[Lease], None] | None = None,
        poll: float = 0.1,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> Lease:
        """Take ``target``, waiting up to ``wait`` seconds while someone else holds it.

        ``on_wait`` hears about the holder once, when the wait begins. Raises
        :class:`LockBusy` when the wait ends first, :class:`LockError` on a store error.
        Each take runs in a thread: the store may make it wait (SQLite's busy timeout
        while another process writes), and the event loop must not wait with it.
        """
        deadline = clock() + wait
        told = False
        while True:
            try:
                return await asyncio.to_thread(self.try_acquire, target, holder, lease)
            except LockBusy as busy:
                if clock() >= deadline:
                    raise
                if on_wait is not None and not told:
                    on_wait(busy.lease)
                    told = True
            await sleep(poll)


class SqliteTargetLock(TargetLock):
    """Leases in the store's SQLite file: ``BEGIN IMMEDIATE`` makes each take atomic
    across processes. Its one connection is used by one thread at a time."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        try:
            self._db = open_sqlite(path, SCHEMA, synchronous="FULL")
        except (OSError, sqlite3.Error) as exc:
            raise LockError(f"cannot open the target locks in {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def try_acquire(self, target: str, holder: str, lease: float) -> Lease:
        now = self.clock()
        taken = Lease(target, holder, uuid.uuid4().hex, now, now + lease)
        try:
            with self._lock, transaction(self._db) as db:
                live = self._live(db, target, now)
                if live is not None:
                    raise LockBusy(live)
                db.execute(
                    "INSERT OR REPLACE INTO target_locks VALUES (?, ?, ?, ?, ?)",
                    (target, holder, taken.token, taken.taken_at, taken.expires_at),
                )
        except sqlite3.Error as exc:
            raise LockError(f"cannot take the lock on {target} in {self.path}: {exc}") from exc
        return taken

    def release(self, lease: Lease) -> None:
        try:
            with self._lock, transaction(self._db) as db:
                db.execute(
                    "DELETE FROM target_locks WHERE target = ? AND token = ?",
                    (lease.target, lease.token),
                )
        except sqlite3.Error as exc:
            raise LockError(f"cannot release the lock on {lease.target}: {exc}") from exc

    def holder(self, target: str) -> Lease | None:
        try:
            with self._lock:
                return self._live(self._db, target, self.clock())
        except sqlite3.Error as exc:
            raise LockError(f"cannot read the lock on {target} in {self.path}: {exc}") from exc

    @staticmethod
    def _live(db: sqlite3.Connection, target: str, now: float) -> Lease | None:
        row = db.execute(
            "SELECT holder, token, taken_at, expires_at FROM target_locks WHERE target = ?",
            (target,),
        ).fetchone()
        if row is None or row[3] <= now:
            return None
        return Lease(target, row[0], row[1], row[2], row[3])


class UnavailableLock(TargetLock):
    """The lock store could not be opened: every take fails, so nothing runs unlocked."""

    def __init__(self, why: str) -> None:
        self.why = why

    def try_acquire(self, target: str, holder: str, lease: float) -> Lease:
        raise LockError(self.why)

    def release(self, lease: Lease) -> None:
        return None

    def holder(self, target: str) -> Lease | None:
        return None
