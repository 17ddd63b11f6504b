"""One style of units for everything pgkura shows a person: binary bytes (KiB, MiB, GiB), counts
with thousands separators, durations in s / min / h, ages in min / h / d."""

from __future__ import annotations


def size(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} GiB"


def age(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def amount(n: float, unit: str) -> str:
    """Bytes in the project's one bytes style; anything else counted, e.g. `12,345 rows`."""
    return size(n) if unit == "B" else f"{n:,.0f} {unit}"


def duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
