"""Start, identify and stop the lab's processes.

Each component runs in its own session (so its own process group), which lets
``down`` stop it and anything it spawned with one signal. A pid alone is not an
identity, since pids are recycled; the kernel's record of when the process started
is stored alongside it, and nothing is signalled unless both still match.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_PROC = Path("/proc")

# Popen objects of children started by this interpreter: holding on to them means
# they are reaped (no zombies while tests run) and never reported as leaked.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """What is remembered about one started process."""

    pid: int
    #: The process's start time as the OS reports it; None if it could not be read.
    started: str | None
    argv: list[str]
    log: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRecord:
        """The inverse of :meth:`to_json`."""
        started = data.get("started")
        return cls(
            pid=int(data["pid"]),
            started=None if started is None else str(started),
            argv=[str(a) for a in data.get("argv", [])],
            log=str(data.get("log", "")),
        )


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards)."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or ')'.
    return raw[raw.rfind(")") + 2 :].split()


def start_identity(pid: int) -> str | None:
    """When ``pid`` started, as an opaque string; None if no such process.

    Linux: field 22 of /proc/<pid>/stat (clock ticks since boot). Elsewhere: ``ps``.
    """
    if _PROC.is_dir():
        fields = _stat_fields(pid)
        return None if fields is None else fields[19]
    try:
        out = subprocess.run(
            ["ps", "-o", "lstart=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    if _PROC.is_dir():
        fields = _stat_fields(pid)
        return fields is not None and fields[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_alive(record: ProcessRecord) -> bool:
    """Whether the process ``record`` describes is still running (and is the same one)."""
    if not _running(record.pid):
        return False
    if record.started is None:
        # Without a start identity a recycled pid cannot be ruled out: say "not ours".
        return False
    return start_identity(record.pid) == record.started


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    if not _PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        # fields[0] is the state, fields[2] the process group.
        if fields and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def spawn(
    argv: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ProcessRecord:
    """Start ``argv`` in a new session with stdout and stderr going to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    return ProcessRecord(
        pid=proc.pid, started=start_identity(proc.pid), argv=list(argv), log=str(log_path)
    )


def exit_code(record: ProcessRecord) -> int | None:
    """The exit code if this interpreter started the process and it has exited."""
    proc = _CHILDREN.get(record.pid)
    return None if proc is None else proc.poll()


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our exited child (a zombie otherwise)."""
    proc = _CHILDREN.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _CHILDREN[pid]
        return
    # Not our child: whoever adopted it reaps it.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def stop(records: Iterable[ProcessRecord], timeout: float = 10.0) -> list[ProcessRecord]:
    """Stop the process groups of ``records``: SIGTERM, then SIGKILL after ``timeout``.

    Only groups whose leader is still the recorded process are signalled. Returns the
    records that were running (and have been stopped).
    """
    mine = [r for r in records if is_alive(r)]
    for record in mine:
        # start_new_session made each leader's pid its process group id.
        _signal_group(record.pid, signal.SIGTERM)
    pending = _wait_groups(mine, timeout)
    if pending:
        for record in pending:
            print(f"lab: pid {record.pid} ignored SIGTERM, killing it", file=sys.stderr)
            _signal_group(record.pid, signal.SIGKILL)
        _wait_groups(pending, 5.0)
    return mine


def _wait_groups(records: list[ProcessRecord], timeout: float) -> list[ProcessRecord]:
    """Wait until the groups of ``records`` are empty; return those that are not."""
    deadline = time.monotonic() + timeout
    pending = list(records)
    while pending:
        for record in pending:
            _reap(record.pid)
        pending = [r for r in pending if group_members(r.pid)]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return pending
