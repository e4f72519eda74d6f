"""Who acts: the name the audit log, the evidence and the timeline give a responder."""

from __future__ import annotations

import getpass
import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.config.models import Config

ENV_ACTOR = "MLCONSOLE_ACTOR"


def default_actor() -> str:
    """``user@host``: who took a decision, for the evidence and the audit."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def resolve_actor(config: Config, override: str | None = None) -> str:
    """``--actor``, then ``actions.actor``, then ``$MLCONSOLE_ACTOR``, then ``user@host``:
    the first that is not blank, without the whitespace around it (blank is no one)."""
    for candidate in (override, config.actions.actor, os.environ.get(ENV_ACTOR)):
        if candidate and candidate.strip():
            return candidate.strip()
    return default_actor()
