"""Lengths of time: parsing ``30s``/``5m``/``1h``, showing them, and a silence's range.

Plain Python, no pydantic: the command line's help text and the action commands
use these without paying for the config models (:mod:`console.config.models`).
"""

from __future__ import annotations

import math
import re
from typing import Any

DURATION_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(raw: Any) -> float:
    """``30``, ``"30s"``, ``"5m"``, ``"1h"``, ``"30d"`` → seconds."""
    if isinstance(raw, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '1h'")
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str) and (match := DURATION_TEXT.match(raw)):
        return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"{raw!r} is not a duration; write seconds or a string like '30s', '5m', '1h'")


def format_duration(seconds: float) -> str:
    """The inverse of :func:`parse_duration`, for display: 90 → ``1m30s``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        m, s = divmod(seconds, 60)
        return f"{m}m{s:02d}s" if s else f"{m}m"
    if seconds < 86400:
        h, rem = divmod(seconds, 3600)
        return f"{h}h{rem // 60:02d}m" if rem // 60 else f"{h}h"
    d, rem = divmod(seconds, 86400)
    return f"{d}d{rem // 3600}h" if rem // 3600 else f"{d}d"


MAX_DURATION = 365 * 86400.0
"""Longest interval or window a config may set: a year."""


def parse_config_duration(raw: Any) -> float:
    """:func:`parse_duration` for config keys: finite and at most :data:`MAX_DURATION`
    (YAML's ``.inf`` and ``.nan`` are numbers, but no interval or window)."""
    seconds = parse_duration(raw)
    if not math.isfinite(seconds):
        raise ValueError(
            f"{raw!r} is not a usable duration; write a finite length like '30s', '5m', '1h'"
        )
    if seconds > MAX_DURATION:
        longest = format_duration(MAX_DURATION)
        raise ValueError(f"{raw!r} is longer than the most allowed, {longest}")
    return seconds


SILENCE_MIN = 60.0
SILENCE_MAX = 30 * 86400.0
SILENCE_RANGE = f"from {format_duration(SILENCE_MIN)} to {format_duration(SILENCE_MAX)}"


def parse_silence_duration(raw: Any) -> float:
    """A silence's length in seconds, from ``--duration``, the silence dialog, a
    runbook step or ``actions.silence_duration``: one rule for all of them. Zero,
    negative, garbage and lengths past :data:`SILENCE_MAX` raise ValueError (one line,
    naming the accepted range)."""
    try:
        seconds = parse_duration(raw.strip() if isinstance(raw, str) else raw)
    except ValueError:
        raise ValueError(
            f"{raw!r} is not a duration; write e.g. 30m, 2h or 1d ({SILENCE_RANGE})"
        ) from None
    if not SILENCE_MIN <= seconds <= SILENCE_MAX:  # False for nan too
        raise ValueError(f"a silence lasts {SILENCE_RANGE}, not {raw!r}")
    return seconds
