"""Background work that fails is said, in one place: the app's.

A worker's state changes reach only the node that ran it (Textual does not bubble
them), so a screen or a widget whose worker raised would drop the error, and an
incident write that failed would vanish without a word. Every screen and widget
that runs workers takes :class:`SaysWorkFailures`, which hands a failure to the
app as :class:`WorkFailed`; the app shows it and keeps it
(:meth:`screens.app.MLConsoleApp.on_work_failed`).
"""

from __future__ import annotations

from typing import Any

from textual.message import Message
from textual.worker import Worker, WorkerState


class WorkFailed(Message):
    """A worker raised: its name and its error."""

    def __init__(self, name: str, error: BaseException) -> None:
        super().__init__()
        self.name = name
        self.error = error


def failure_of(event: Worker.StateChanged) -> WorkFailed | None:
    """The failure a worker's state change tells of, if it is one."""
    worker: Worker[Any] = event.worker
    if event.state is not WorkerState.ERROR or worker.error is None:
        return None
    return WorkFailed(worker.name or worker.description or "background work", worker.error)


class SaysWorkFailures:
    """For the app, a screen or a widget that runs workers: a worker of its own that
    fails is told to the app. Put it before the Textual class in the bases."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        failed = failure_of(event)
        if failed is not None:
            event.worker.node.app.post_message(failed)
