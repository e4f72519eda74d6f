"""Find adapter classes through the ``mlconsole.adapters`` entry-point group.

Listing the names imports no adapter; loading one imports exactly that one, so
a config that names only Prometheus never pays for (or breaks on) the others.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points

from adapters.base import Adapter

GROUP = "mlconsole.adapters"


class AdapterLoadError(Exception):
    """An adapter type is unknown or its module failed to import."""


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    # Read once a process: each look-up reads the metadata of every installed package
    # (tens of ms), and a config names several sources.
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available() -> list[str]:
    """The adapter type names installed, without importing any of them."""
    return sorted(_entry_points())


def load(type_name: str) -> type[Adapter]:
    """Import and return the adapter class registered as ``type_name``."""
    found = _entry_points().get(type_name)
    if found is None:
        names = ", ".join(available()) or "none"
        raise AdapterLoadError(f"unknown adapter type {type_name!r} (installed: {names})")
    try:
        cls = found.load()
    except Exception as exc:  # a broken plug-in must not take the console down
        raise AdapterLoadError(
            f"adapter {type_name!r} ({found.value}) failed to import: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise AdapterLoadError(f"adapter {type_name!r} ({found.value}) is not an Adapter class")
    return cls
