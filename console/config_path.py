"""Where the config file is: ``--config``, then ``$MLCONSOLE_CONFIG``, then XDG.

Apart from the models (:mod:`console.config`), so a command can say that no config
was found without importing pydantic.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_CONFIG = "MLCONSOLE_CONFIG"


def xdg_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mlconsole" / "config.yaml"


def find_config(explicit: str | None) -> tuple[Path | None, str]:
    """Where the config is, and why: ``--config``, then ``$MLCONSOLE_CONFIG``, then XDG."""
    if explicit:
        return Path(explicit).expanduser(), "--config"
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env).expanduser(), f"${ENV_CONFIG}"
    xdg = xdg_config_path()
    if xdg.exists():
        return xdg, "XDG config dir"
    return None, f"no --config, ${ENV_CONFIG} unset, and no {xdg}"
