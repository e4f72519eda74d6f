"""How the console writes a moment, and reads one back: every time it shows, exports
or prints as JSON.

Apart from :mod:`console.incidents.timeline` (which re-exports these), so a command that only
writes times, like ``status --json``, does not import the incident timeline.
"""

from __future__ import annotations

import time
from datetime import datetime

# The text of each minute seen (``2026-11-24T03:12:``): an incident's events crowd
# into few minutes, so most times of a long timeline cost a dict lookup, not a strftime.
_MINUTES: dict[int, str] = {}


def utc(at: float) -> str:
    """``2026-11-24T03:12:09.412Z``: every time the timeline shows or exports."""
    whole = int(at // 1)
    millis = round((at - whole) * 1000)
    if millis == 1000:
        whole, millis = whole + 1, 0
    minute, second = divmod(whole, 60)
    prefix = _MINUTES.get(minute)
    if prefix is None:
        if len(_MINUTES) >= 65536:
            _MINUTES.clear()
        prefix = _MINUTES[minute] = time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute * 60))
    return f"{prefix}{second:02d}.{millis:03d}Z"


def iso(moment: float | datetime | None) -> str | None:
    """A time as every ``--json`` output writes it: ISO 8601 UTC with milliseconds
    (``2026-11-24T03:12:09.412Z``, :func:`utc`); None stays None."""
    if moment is None:
        return None
    return utc(moment.timestamp() if isinstance(moment, datetime) else moment)


def seconds_of(raw: object) -> float | None:
    """The inverse of :func:`iso` (Unix seconds), also taking Unix seconds as they are."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    raise ValueError(f"{raw!r} is not a time")
