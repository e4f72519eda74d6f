"""Event data read defensively: whatever the console recorded, an odd or missing value
is left out or shown as not known, never a crash."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from console.incidents.timeline import Event, utc

# -- reading event data defensively ---------------------------------------------------


# ``type(x) is dict`` first: event data is plain dicts, and an ABC isinstance check
# costs as much as the rest of the work on an event.


def event_data(event: Event) -> Mapping[str, Any]:
    data = event.data
    return data if type(data) is dict or isinstance(data, Mapping) else {}


def as_mapping(value: Any) -> dict[str, Any]:
    """A dict as it is (shared, never modified here); another mapping copied."""
    if type(value) is dict:
        return value
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | bool):
        return str(value)
    return None


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value) if isinstance(value, int | float | str) else None
    except (ValueError, OverflowError):
        return None
    return number if number is not None and math.isfinite(number) else None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def as_flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def as_strings(value: Any) -> list[str]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        return []
    return [str(item) for item in value if item is not None]


def as_str_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def utc_or_none(at: float | None) -> str | None:
    return None if at is None else utc(at)
