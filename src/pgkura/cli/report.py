"""Renderings of results, for a person (text) and for a machine (the `--json` documents), side by
side so both carry the same facts; no I/O here. `paint` is Output.paint (or no colour)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # renderers only read these; importing them would pull in the server code
    from pgkura.extensions.check import ExtensionStatus
    from pgkura.inspection.database import Report
    from pgkura.inspection.doctor import Finding
    from pgkura.migrations.plan import StatusEntry
    from pgkura.migrations.schema_snapshot import Drift
    from pgkura.schedule.runner import JobStatus

Paint = Callable[[str, str], str]


def plain(text: str, style: str) -> str:
    return text


_STYLE = re.compile(r"\x1b\[[0-9;]*m")


def width(text: str) -> int:
    """Columns on a terminal: Japanese (wide) characters take two, colour codes none."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in _STYLE.sub("", text))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell."""
    cells = [[str(c) for c in line] for line in (headers, *rows)]
    widths = [max(width(c) for c in col) for col in zip(*cells, strict=False)]
    lines = [cells[0], ["-" * w for w in widths], *cells[1:]]
    return "\n".join(
        "  ".join(
            cell + " " * (w - width(cell)) for cell, w in zip(line, widths, strict=False)
        ).rstrip()
        for line in lines
    )


# -- db.status -------------------------------------------------------------------------------

_STATE_STYLE = {"pending": "warn", "changed": "fail", "missing": "fail", "out-of-order": "warn"}


def status_table(entries: Sequence[StatusEntry], paint: Paint = plain) -> str:
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
    lines = table(["version", "name", "state", "applied at", "took", "by"], rows).splitlines()
    return "\n".join(
        lines[:2]
        + [
            paint(line, _STATE_STYLE.get(e.state, ""))
            for e, line in zip(entries, lines[2:], strict=True)
        ]
    )


def status_counts(entries: Sequence[StatusEntry]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.state] = counts.get(e.state, 0) + 1
    return counts


def status_summary(entries: Sequence[StatusEntry]) -> str:
    return ", ".join(f"{n} {state}" for state, n in status_counts(entries).items()) or "nothing"


def status_json(entries: Sequence[StatusEntry], target: str, in_sync: bool) -> dict[str, Any]:
    return {
        "target": target,
        "in_sync": in_sync,
        "counts": status_counts(entries),
        "migrations": [
            {
                "version": e.version,
                "name": e.name,
                "state": e.state,
                "applied_at": e.row.applied_at.isoformat() if e.row else None,
                "duration_ms": e.row.duration_ms if e.row and e.row.how == "applied" else None,
                "applied_by": e.row.applied_by if e.row else None,
            }
            for e in entries
        ],
    }


# -- db.doctor -------------------------------------------------------------------------------

_MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "-   "}


def doctor_verdict(items: Sequence[Finding]) -> tuple[str, str]:
    """(level, the words): the first line of db.doctor."""
    failed = [f.check for f in items if f.level == "fail"]
    warned = [f.check for f in items if f.level == "warn"]
    if failed:
        return "fail", f"{len(failed)} problem(s): {', '.join(failed)} (FAIL below)"
    if warned:
        return "warn", f"{len(warned)} warning(s): {', '.join(warned)}"
    return "ok", "every check passed"


def findings(items: Sequence[Finding], paint: Paint = plain) -> str:
    """`db.doctor`'s report: one line per check, continuation lines indented under it."""
    lines = []
    for f in items:
        first, *rest = f.detail.splitlines() or [""]
        mark = paint(_MARKS[f.level], f.level if f.level != "skip" else "dim")
        lines.append(f"[{mark}] {f.check:<11} {first}")
        lines += [f"{'':19}{line}" for line in rest]
    return "\n".join(lines)


def doctor_json(items: Sequence[Finding]) -> dict[str, Any]:
    level, why = doctor_verdict(items)
    return {
        "verdict": level,
        "summary": why,
        "findings": [{"check": f.check, "level": f.level, "detail": f.detail} for f in items],
    }


# -- db.extensions ---------------------------------------------------------------------------


def extensions_verdict(items: Sequence[ExtensionStatus], warning: str | None) -> tuple[str, str]:
    missing = [s.name for s in items if not s.installed]
    if missing:
        return "fail", f"not installed: {', '.join(missing)}"
    if warning:
        return "warn", f"all {len(items)} installed; {warning}"
    return "ok", f"all {len(items)} required extension(s) installed"


def extensions_table(items: Sequence[ExtensionStatus]) -> str:
    rows = [[s.name, s.available or "-", s.installed or "-", s.state] for s in items]
    return table(["extension", "available", "installed", "state"], rows)


def extensions_json(
    items: Sequence[ExtensionStatus], target: str, warning: str | None
) -> dict[str, Any]:
    level, why = extensions_verdict(items, warning)
    return {
        "verdict": level,
        "summary": why,
        "target": target,
        "warning": warning,
        "extensions": [
            {"name": s.name, "available": s.available, "installed": s.installed, "state": s.state}
            for s in items
        ],
    }


# -- db.drift --------------------------------------------------------------------------------


def drift(found: Drift, snapshot: str, paint: Paint = plain) -> str:
    """migrations: compare the database with schema.sql

    `db.drift`'s report: + in the database only, - in the snapshot only, ~ changed.

    Examples:
      invoke db.drift
      invoke db.drift --json
    """
    lines = [paint(f"+ {key}", "warn") + f"   (in the database, not in {snapshot})"
             for key in found.added]  # fmt: skip
    lines += [paint(f"- {key}", "warn") + f"   (in {snapshot}, not in the database)"
              for key in found.removed]  # fmt: skip
    lines += [paint(f"~ {key}", "warn") + f"\n{text}" for key, text in found.changed.items()]
    return "\n".join(lines)


def drift_json(found: Drift, target: str, snapshot: str) -> dict[str, Any]:
    return {
        "clean": found.clean,
        "target": target,
        "snapshot": snapshot,
        "added": found.added,
        "removed": found.removed,
        "changed": found.changed,
    }


# -- db.inspect ------------------------------------------------------------------------------


def inspection_verdict(report: Report) -> tuple[str, str]:
    levels = [a.level for a in report.attention]
    if not levels:
        return "ok", "nothing needs attention"
    level = "fail" if "fail" in levels else "warn"
    return level, f"{len(levels)} thing(s) need attention"


def inspection(report: Report, paint: Paint = plain) -> str:
    """db.inspect for a terminal: the verdict and what needs attention, then each section."""
    level, why = inspection_verdict(report)
    out = [paint(f"verdict: {why}", level)]
    out += [
        f"  [{paint(a.level.upper(), a.level)}] {a.what} → {a.remedy}" for a in report.attention
    ]
    out.append("")
    for section in report.sections:
        title = paint(f"== {section.title}", "bold")
        out.append(title + (f" ({section.note})" if section.note else ""))
        if section.headers and section.rows:
            out.append(table(section.headers, section.rows))
        elif section.headers:
            out.append("none")
        out.append("")
    return "\n".join(out).rstrip()


def inspection_json(report: Report) -> dict[str, Any]:
    level, why = inspection_verdict(report)
    return {"verdict": level, "summary": why, **report.to_dict()}


# -- db.schedule -----------------------------------------------------------------------------


def schedule_json(active: bool, jobs: Sequence[JobStatus]) -> dict[str, Any]:
    return {
        "runner_active": active,
        "jobs": [
            {
                "name": j.job.name,
                "schedule": j.job.schedule.describe(),
                "level": j.level,
                "last": j.last or None,
                "next_due": j.next_due.isoformat(),
                "missed": j.missed,
                "running": j.unfinished or None,
                "summary": j.line(),
            }
            for j in jobs
        ],
    }
