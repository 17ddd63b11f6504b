"""Plain-text renderings of results for the terminal; no I/O here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # renderers only read these; importing them would pull in the server code
    from pgkura.inspection.database import Report
    from pgkura.inspection.doctor import Finding
    from pgkura.migrations.plan import StatusEntry
    from pgkura.migrations.schema_snapshot import Drift


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


_MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "-   "}


def findings(items: Sequence[Finding]) -> str:
    """`db.doctor`'s report: one line per check, continuation lines indented under it."""
    lines = []
    for f in items:
        first, *rest = f.detail.splitlines() or [""]
        lines.append(f"[{_MARKS[f.level]}] {f.check:<11} {first}")
        lines += [f"{'':19}{line}" for line in rest]
    return "\n".join(lines)


def drift(found: Drift, snapshot: str) -> str:
    """`db.drift`'s report: + in the database only, - in the snapshot only, ~ changed."""
    lines = [f"+ {key}   (in the database, not in {snapshot})" for key in found.added]
    lines += [f"- {key}   (in {snapshot}, not in the database)" for key in found.removed]
    lines += [f"~ {key}\n{text}" for key, text in found.changed.items()]
    return "\n".join(lines)


def inspection(report: Report) -> str:
    """db.inspect for a terminal: each section as a table, then the verdict."""
    out = []
    for section in report.sections:
        out.append(f"== {section.title}" + (f" ({section.note})" if section.note else ""))
        if section.headers and section.rows:
            out.append(table(section.headers, [[str(c) for c in r] for r in section.rows]))
        elif section.headers:
            out.append("none")
        out.append("")
    if report.attention:
        out.append(f"verdict: {len(report.attention)} thing(s) need attention")
        out += [f"  [{a.level.upper()}] {a.what} → {a.remedy}" for a in report.attention]
    else:
        out.append("verdict: nothing needs attention")
    return "\n".join(out)
