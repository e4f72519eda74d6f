"""Where the lab keeps its state."""

from __future__ import annotations

import os
from pathlib import Path


def default_state_dir() -> Path:
    """Return the lab's state directory.

    ``$MLCONSOLE_LAB_DIR`` wins; otherwise the XDG state home is used, falling back
    to ``~/.local/state`` as the XDG specification says.
    """
    explicit = os.environ.get("MLCONSOLE_LAB_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "mlconsole" / "lab"


def resolve_state_dir(state_dir: Path | str | None) -> Path:
    """``state_dir`` as an absolute path, or the default one."""
    path = default_state_dir() if state_dir is None else Path(state_dir).expanduser()
    return path.resolve()
