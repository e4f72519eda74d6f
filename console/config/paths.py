"""Where the console's files are: the config (``--config``, then ``$MLCONSOLE_CONFIG``,
then XDG), the store and the audit log.

Apart from the models (:mod:`console.config.models`), so a command can say that no config
was found without importing pydantic.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.config.models import Config

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


def store_path(config: Config) -> Path:
    """The store the config names, else the default."""
    return config.store.path or default_store_path()


def default_store_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mlconsole" / "store.db"


def audit_path(config: Config) -> Path:
    """``actions.audit_path``, else ``audit.db`` beside the store."""
    return config.actions.audit_path or store_path(config).with_name("audit.db")
