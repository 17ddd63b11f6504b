"""Start-up cost of the command line against an earlier commit, in the same run.

What a person pays before any task does its work: `invoke --list` and `invoke --help TASK`
(tasks.py imported, every task's module wired, settings not loaded). The baseline is a git ref
(default: the last commit before the packages by concept, 2ba0acd), checked out into a
temporary worktree and run with the same interpreter and packages; only pgkura's own code
differs. `python -m benchmarks.startup [REF]`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import report, run_timed

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "2ba0acd"
RUNS = 21
COMMANDS = (["--list"], ["--help", "db.backup"], ["--help", "db.restore"])


def _env(tree: Path) -> dict[str, str]:
    """The tree's own src first on the path; nothing of the user's settings. Bytecode is
    written and read as on a person's machine (PYTHONDONTWRITEBYTECODE would measure the
    compiler: every run would compile every module from source)."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PGKURA_", "POSTGRES_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    return {**keep, "PYTHONPATH": str(tree / "src"), "PGKURA_ENV_FILE": os.devnull}


def _timed(tree: Path, args: list[str]) -> float:
    invoke = [sys.executable, "-m", "invoke", "--search-root", str(tree), *args]
    return run_timed(invoke, env=_env(tree))


def main() -> None:
    ref = sys.argv[1] if len(sys.argv) > 1 else BASELINE
    with tempfile.TemporaryDirectory(prefix="pgkura-bench-") as tmp:
        old = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old), ref],
                       check=True)  # fmt: skip
        try:
            for args in COMMANDS:
                _timed(ROOT, args), _timed(old, args)  # warm the page cache and .pyc files
                ours, theirs = [], []
                for _ in range(RUNS):  # alternated, so drift in the machine hits both
                    ours.append(_timed(ROOT, args))
                    theirs.append(_timed(old, args))
                print(report(f"invoke {' '.join(args)}: this tree vs {ref}", ours, theirs,
                             "baseline", 1))  # fmt: skip
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           check=False)  # fmt: skip


if __name__ == "__main__":
    main()
