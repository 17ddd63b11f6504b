"""Durations in settings: `5s`, `500ms`, `2min`, `1h`; a bare number means seconds."""

from __future__ import annotations

import re

_UNITS_MS = {"ms": 1, "s": 1000, "sec": 1000, "min": 60_000, "m": 60_000, "h": 3_600_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_ms(text: str) -> int:
    """Milliseconds in `text`; ValueError with the accepted forms otherwise."""
    match = _DURATION.match(text)
    unit = match.group(2).lower() if match else ""
    if not match or (unit and unit not in _UNITS_MS):
        raise ValueError(f"{text!r} is not a duration; use e.g. 5s, 500ms, 2min or 0 for none")
    return round(float(match.group(1)) * _UNITS_MS[unit or "s"])


def render_ms(ms: int) -> str:
    """The shortest readable form, for messages: 5s, 250ms, 2min."""
    if ms == 0:
        return "0 (none)"
    if ms % 60_000 == 0:
        return f"{ms // 60_000}min"
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms}ms"
