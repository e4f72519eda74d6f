"""What ``mlconsole lab`` prints: the progress line while the lab starts, the lab that
is up, and its status."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lab.catalog import (
    GOOD_VERSION,
)

if TYPE_CHECKING:
    from lab.state import LabInfo
    from lab.status import LabStatus


class ProgressLine:
    """One self-updating status line on a terminal; plain lines when piped."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._last: Sequence[str] | None = None

    def __call__(self, pending: Sequence[str], elapsed: float) -> None:
        if pending:
            text = f"starting lab: waiting for {', '.join(pending)} ({elapsed:.1f}s)"
        else:
            text = f"starting lab: ready in {elapsed:.1f}s"
        if self.tty:
            end = "\n" if not pending else ""
            sys.stderr.write(f"\r\033[K{text}{end}")
            sys.stderr.flush()
        elif list(pending) != self._last:
            print(text, file=sys.stderr)
        self._last = list(pending)


def describe_scale(record: dict[str, Any] | None) -> str:
    """The scale lab's feeder record in one line."""
    if not record:
        return "the feeder has not started yet"
    text = (
        f"{record['breaching']} of {record['models']} models breaching, {record['series']} series"
    )
    if "import_seconds" in record:
        text += (
            f"; {record['samples_imported']:,} samples of history imported "
            f"in {record['import_seconds']:.1f}s"
        )
    if "last_append" in record:
        age = max(0.0, time.time() - float(record["last_append"]))
        text += f"; {record.get('alerts', 0)} alerts posted, last points {age:.0f}s ago"
    return text


def print_up(info: LabInfo) -> None:
    if info.already_running:
        state = "already up"
    elif info.ready:
        state = "up"
    else:
        state = "starting (not waiting; see: mlconsole lab status)"
    kind = "scale lab" if info.scale else "lab"
    print(f"{kind} {state}: {len(info.models)} models, state in {info.state_dir}", file=sys.stderr)
    for name, url in info.urls.items():
        print(f"  {name:<13} {url}", file=sys.stderr)
    if info.scale:
        from lab.scale import read_state

        print(f"  {describe_scale(read_state(info.state_dir))}", file=sys.stderr)
    # The path alone goes to stdout, so scripts can capture it.
    print(info.config_path)
    print(f"  export MLCONSOLE_CONFIG={shlex.quote(str(info.config_path))}", file=sys.stderr)


def describe_models(models: list[str]) -> str:
    shown = ", ".join(models[:3])
    return shown if len(models) <= 3 else f"{len(models)} ({shown}, ...)"


def describe_serving(serving: dict[str, dict[str, Any]]) -> str:
    """Models that serve anything but the good version as usual, or that all do."""
    notes = []
    for model, s in serving.items():
        switches = (("fallback", s["fallback"]), ("pipeline paused", s["paused"]))
        extra = [name for name, on in switches if on]
        if s["version"] != GOOD_VERSION or extra:
            notes.append(f"{model} v{s['version']}" + "".join(f" ({x})" for x in extra))
    if not notes:
        return f"all on version {GOOD_VERSION}"
    shown = ", ".join(notes[:5])
    return shown if len(notes) <= 5 else f"{shown}, and {len(notes) - 5} more"


def print_status(st: LabStatus) -> None:
    if not st.recorded:
        print(f"lab is not running (state dir {st.state_dir})")
        return
    kind = "scale lab (VictoriaMetrics, synthetic series)" if st.mode == "scale" else "lab"
    print(f"{kind} {'up' if st.healthy else 'DEGRADED'} (state dir {st.state_dir})")
    print(f"  {'COMPONENT':<13} {'PID':>7}  {'ALIVE':<5}  {'READY':<5}  URL")
    for c in st.components:
        pid = "-" if c.pid is None else str(c.pid)
        alive, ready = ("yes" if c.alive else "no"), ("yes" if c.ready else "no")
        print(f"  {c.name:<13} {pid:>7}  {alive:<5}  {ready:<5}  {c.url}")
    print(f"  models: {describe_models(st.models)}")
    if st.mode == "scale":
        print(f"  scale: {describe_scale(st.scale)}")
        if st.config_path is not None:
            print(f"  config: {st.config_path}")
        return
    if st.mlflow_url is not None:
        note = "the champion alias names the version served"
        if st.registry_error:
            note = f"the service cannot reach it, so keeps its versions: {st.registry_error}"
        print(f"  registry: {st.mlflow_url} ({note})")
    else:
        print("  registry: none (started with --no-registry)")
    if st.serving is not None:
        print(f"  serving: {describe_serving(st.serving)}")
    if st.faults is not None:
        faults = ", ".join(f"{f['fault']} on {f['model']}" for f in st.faults) or "none"
        print(f"  faults: {faults}")
    if st.config_path is not None:
        print(f"  config: {st.config_path}")
