"""Plain-text renderings of results for the terminal; no I/O here."""

from __future__ import annotations

from collections.abc import Sequence

from pgkura.migration_plan import StatusEntry


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=False)).rstrip()
        for line in lines
    )


def status_table(entries: Sequence[StatusEntry]) -> str:
    if not entries:
        return "no migrations yet (create one with `invoke db.new NAME`)"
    rows = [
        [
            str(e.version),
            e.name,
            e.state,
            f"{e.row.applied_at:%Y-%m-%d %H:%M:%S}" if e.row else "",
            f"{e.row.duration_ms} ms" if e.row and e.row.how == "applied" else "",
            e.row.applied_by if e.row else "",
        ]
        for e in entries
    ]
    return table(["version", "name", "state", "applied at", "took", "by"], rows)


def status_summary(entries: Sequence[StatusEntry]) -> str:
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.state] = counts.get(e.state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in counts.items()) or "nothing"


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


def progress_line(plain: int, compressed: int, seconds: float) -> str:
    rate = plain / seconds if seconds else 0
    return f"dumped {size(plain)} → {size(compressed)} gz, {size(rate)}/s, {seconds:.0f} s"
