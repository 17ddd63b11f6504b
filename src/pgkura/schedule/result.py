"""A task's outcome as facts for the scheduler that started it: when PGKURA_RESULT_FILE names a
file, the task writes {"outcome": "ok" | "failed" | "interrupted", "summary": "..."} there as it
ends, so the runner records what happened without reading printed words."""

from __future__ import annotations

import json
import os
from pathlib import Path

ENV = "PGKURA_RESULT_FILE"
OUTCOMES = ("ok", "failed", "interrupted")
_said: list[str] = []


def requested() -> bool:
    """Whether the scheduler started this task: it asked for the result, and an interruption
    (its own stop: the task has no terminal) is its to report."""
    return bool(os.environ.get(ENV))


def said(line: str) -> str:
    """Remember `line` as the task's result line (a success's summary); returns it to print."""
    _said.append(line)
    return line


def record(outcome: str, message: str = "") -> None:
    """Write the outcome where PGKURA_RESULT_FILE says, if it says; the summary is `message`
    (an error's lines as one) or the last result line."""
    path = os.environ.get(ENV)
    if not path:
        return
    summary = " ".join(message.split("\n")).strip() or (_said[-1] if _said else "done")
    Path(path).write_text(json.dumps({"outcome": outcome, "summary": summary}) + "\n")


def read(path: Path) -> dict[str, str] | None:
    """What a task wrote with `record`, or None (it never got that far: killed, or crashed)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("outcome") not in OUTCOMES:
        return None
    return {"outcome": str(data["outcome"]), "summary": str(data.get("summary", ""))}
