"""Find adapter classes through the ``mlconsole.adapters`` entry-point group.

Listing the names imports no adapter; loading one imports exactly that one, so
a config that names only Prometheus never pays for (or breaks on) the others.

The built-in adapters are this package's own entry points in the group, so their
types are read from its one distribution's metadata; every installed package's
entry points (what a third-party adapter is found in) are read only for a type
that is not built in, or to list them all.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, PackageNotFoundError, distribution, entry_points

from adapters.base import Adapter

GROUP = "mlconsole.adapters"
DISTRIBUTION = "mlconsole"
"""The distribution whose entry points in :data:`GROUP` are the built-in adapters."""


class AdapterLoadError(Exception):
    """An adapter type is unknown or its module failed to import."""


@functools.cache
def _builtin_entry_points() -> dict[str, EntryPoint]:
    # One package's metadata (about 1 ms), where the scan below reads every
    # installed package's (5-30 ms on a busy machine): a config of built-in
    # types, the usual case, never pays for the scan.
    try:
        found = distribution(DISTRIBUTION).entry_points.select(group=GROUP)
    except PackageNotFoundError:  # a source tree run without being installed
        return {}
    return {ep.name: ep for ep in found}


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    # Read once a process: each look-up reads the metadata of every installed package
    # (tens of ms), and a config names several sources.
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def _find(type_name: str) -> EntryPoint | None:
    """The entry point of ``type_name``: a built-in type first, then any package's."""
    return _builtin_entry_points().get(type_name) or _entry_points().get(type_name)


def is_installed(type_name: str) -> bool:
    """Whether an adapter of this type is installed, without importing it."""
    return _find(type_name) is not None


def available() -> list[str]:
    """The adapter type names installed, without importing any of them."""
    return sorted({*_builtin_entry_points(), *_entry_points()})


def load(type_name: str) -> type[Adapter]:
    """Import and return the adapter class registered as ``type_name``."""
    found = _find(type_name)
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
