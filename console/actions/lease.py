"""Who runs an action, and for how long it may: an intent names its process, and
its lease says how long an action may run before whoever comes next may call it in
doubt (:mod:`console.actions.reconcile`)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

from console.config.models import Config


def action_lease(config: Config) -> float:
    """How long an intent may stay open while its action still runs: three requests
    (check, apply, read back) at the slowest source's full retry budget, plus margin."""
    budget = max((s.retry_budget for s in config.sources.values()), default=5.0)
    return 3 * budget + 10.0


def this_process() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def process_alive(process: Mapping[str, Any] | None) -> bool | None:
    """Whether the process that wrote an intent still runs: None when it cannot be
    told (another host, or an intent that does not say)."""
    if not process or process.get("host") != socket.gethostname():
        return None
    pid = process.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
