"""Prometheus' text exposition format, written atomically for node_exporter's textfile
collector (which reads `*.prom` files and must never see one half-written)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from pgkura.errors import PgkuraError
from pgkura.private_files import write_private

TEXTFILE_SUFFIX = ".prom"


@dataclass
class Family:
    """One metric: its name, type (gauge or counter), help text and samples (labels, value)."""

    name: str
    kind: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((labels, value))


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(families: list[Family]) -> str:
    """The text format; a family without samples is left out (no TYPE line without a value)."""
    lines = []
    for family in families:
        if not family.samples:
            continue
        help_text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines += [f"# HELP {family.name} {help_text}", f"# TYPE {family.name} {family.kind}"]
        for labels, value in family.samples:
            pairs = ",".join(f'{k}="{_label_value(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{family.name}{{{pairs}}} {_number(value)}" if pairs
                         else f"{family.name} {_number(value)}")  # fmt: skip
    return "\n".join(lines) + "\n"


def write_textfile(path: Path, text: str) -> None:
    """Replace `path` with `text` at once: a temporary file in the same directory (a name the
    collector ignores), flushed, readable by node_exporter's user, then renamed over it."""
    if path.suffix != TEXTFILE_SUFFIX:
        raise PgkuraError(
            f"{path} does not end in {TEXTFILE_SUFFIX}: node_exporter's textfile collector reads "
            f"only *{TEXTFILE_SUFFIX} files\n→ name it e.g. pgkura{TEXTFILE_SUFFIX} in the "
            "collector's directory (--collector.textfile.directory)"
        )
    try:  # facts, no secrets: readable by node_exporter's user
        write_private(path, text, mode=0o644)
    except OSError as exc:
        raise _unwritable(path, exc) from None


def _unwritable(path: Path, exc: OSError) -> PgkuraError:
    return PgkuraError(
        f"cannot write the metrics file {path}: {exc.strerror or exc}\n→ make {path.parent} a "
        "directory this user may write to (the collector's, --collector.textfile.directory)"
    )
