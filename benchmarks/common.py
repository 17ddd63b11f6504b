"""Helpers shared by the benchmarks: timing a command, printing a comparison."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Sequence


def run_timed(argv: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Wall-clock seconds of one run of `argv`, which must succeed."""
    start = time.perf_counter()
    subprocess.run(argv, env={**os.environ, **(env or {})}, check=True, capture_output=True)
    return time.perf_counter() - start


def report(title: str, ours: list[float], theirs: list[float], peer: str, items: int) -> str:
    """Medians, per-item cost and the ratio, as the README shows them."""
    a, b = statistics.median(ours), statistics.median(theirs)

    def line(name: str, value: float, runs: int) -> str:
        per_item = f" ({value / items * 1000:.2f} ms per item)" if items > 1 else ""
        return f"  {name:8}: median {value:.3f} s over {runs} runs{per_item}"

    return "\n".join(
        [
            title,
            line("pgkura", a, len(ours)),
            line(peer, b, len(theirs)),
            f"  ratio pgkura/{peer} = {a / b:.2f}",
        ]
    )
