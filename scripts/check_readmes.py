"""The English and Japanese READMEs list the same tasks and the same settings (run by
`nox -s lint`): a task or a setting added to one and not the other fails the check, naming it.

Tasks are the `db.*` / `docker.*` names that open a row of a table; settings are the
environment variables named in the first cell of a table row.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_TASK = re.compile(r"^\|\s*`((?:db|docker)\.[a-z-]+)")
_SETTING = re.compile(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+|DATABASE_URL)`")


def listed(path: Path) -> tuple[set[str], set[str]]:
    tasks, settings = set(), set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        task = _TASK.match(line)
        if task:
            tasks.add(task[1])
            continue
        first = line.split("|")[1] if line.count("|") > 1 else ""
        settings.update(_SETTING.findall(first))
    return tasks, settings


def main(english: Path = ROOT / "README.md", japanese: Path = ROOT / "README.ja.md") -> int:
    (en_tasks, en_settings), (ja_tasks, ja_settings) = listed(english), listed(japanese)
    problems = []
    for kind, en, ja in (("tasks", en_tasks, ja_tasks), ("settings", en_settings, ja_settings)):
        if not en:
            problems.append(f"README.md lists no {kind}: has its table moved?")
        for name in sorted(en - ja):
            problems.append(f"README.ja.md does not list {kind[:-1]} {name} (README.md does)")
        for name in sorted(ja - en):
            problems.append(f"README.md does not list {kind[:-1]} {name} (README.ja.md does)")
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"READMEs in step: {len(en_tasks)} tasks, {len(en_settings)} settings")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
