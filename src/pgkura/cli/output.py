"""The one output layer for what a task reports: plain lines for a person (coloured on a terminal,
never with NO_COLOR or when piped), or one JSON document for a machine (`--json`).

Hand-written rather than a terminal library: a handful of ANSI styles is all pgkura needs, and
start-up stays cheap. Units come from pgkura.units; progress from pgkura.progress."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

# by meaning, so a renderer says "fail" and never an escape code
_STYLES = {"ok": "32", "warn": "33", "fail": "1;31", "bold": "1", "dim": "2"}


def colour_wanted(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """Colour for a person's terminal only: not when piped, with NO_COLOR set (no-color.org) or
    on a terminal that says it has none (TERM=dumb)."""
    return stream.isatty() and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


@dataclass(frozen=True)
class Output:
    """Where a task's report goes, and whether it may be coloured."""

    stream: TextIO
    colour: bool = False

    @classmethod
    def to(cls, stream: TextIO | None = None, environ: Mapping[str, str] = os.environ) -> Output:
        stream = stream or sys.stdout
        return cls(stream, colour_wanted(stream, environ))

    def paint(self, text: str, style: str) -> str:
        """`text` in a style by meaning (ok, warn, fail, bold, dim); unchanged without colour."""
        code = _STYLES.get(style)
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour and code and text else text

    def line(self, text: str = "", style: str = "") -> None:
        print(self.paint(text, style), file=self.stream, flush=True)

    def verdict(self, level: str, text: str) -> None:
        """A judging task's first line: ok, warn or fail, and why."""
        self.line(f"verdict: {text}", level)

    def json(self, document: Mapping[str, Any]) -> None:
        """One JSON document (UTF-8 names as they are; moments and paths as strings)."""
        text = json.dumps(document, ensure_ascii=False, indent=2, default=str)
        print(text, file=self.stream, flush=True)


def worst(levels: list[str]) -> str:
    """The verdict of several checks: fail over warn over ok (skips count as ok)."""
    return "fail" if "fail" in levels else "warn" if "warn" in levels else "ok"
