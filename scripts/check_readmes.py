"""The documentation in both languages says the same things and points at real things (run by
`nox -s lint`): README.md and README.ja.md, and every page of docs/ with its counterpart in
docs/ja/. A page and its counterpart must have the same headings (count and level) and name the
same tasks (`db.*`, `docker.*`) and settings (UPPER_CASE names such as PGKURA_*, POSTGRES_*);
every `invoke …` command and every task row names a real task and its real flags (read from
tasks.py through invoke's own loader); every relative link and #anchor resolves.

Each problem is one line naming the file; the exit status is 1 when there is any.
"""

from __future__ import annotations

import re
import shlex
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_TASK = re.compile(r"(?<![\w./-])((?:db|docker)\.[a-z][a-z-]*[a-z])(?![\w/-]|\.\w)")
_SETTING = re.compile(r"(?<![\w-])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?![\w-])")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_INLINE_CODE = re.compile(r"`+([^`]+)`+")
_TASK_ROW = re.compile(r"^\|\s*`((?:db|docker)\.[a-z-]+[^`]*)`")
_FLAG = re.compile(r"(?<![\w-])(--?[a-z][a-z-]*)")


@dataclass
class Page:
    """What the check reads from one Markdown file."""

    path: Path
    headings: list[tuple[int, str]] = field(default_factory=list)
    tasks: set[str] = field(default_factory=set)
    settings: set[str] = field(default_factory=set)
    links: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    @property
    def anchors(self) -> set[str]:
        return set(_slugs(text for _, text in self.headings))


def read(path: Path) -> Page:
    page = Page(path)
    fenced, prose = False, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        page.tasks.update(_TASK.findall(line))
        page.settings.update(_SETTING.findall(line))
        if fenced:
            page.commands.extend(_invocations(line))
            continue
        prose.append(line)
        heading = _HEADING.match(line)
        if heading:
            page.headings.append((len(heading[1]), heading[2]))
        row = _TASK_ROW.match(line)
        if row:
            page.commands.append(row[1].replace("\\|", "|"))
    text = "\n".join(prose)  # inline code and links may wrap onto the next line
    page.links.extend(_LINK.findall(text))
    for code in _INLINE_CODE.findall(text):
        page.commands.extend(_invocations(code.replace("\n", " ")))
    return page


def _invocations(text: str) -> Iterator[str]:
    """The argument part of every `invoke …` in a line of shell (comments and the commands
    chained after it left out)."""
    text = text.split(" #", 1)[0]
    for part in re.split(r"&&|\|\||;|\s\|\s", text):
        words = part.split()
        for i, word in enumerate(words):
            if word == "invoke" or word.endswith("/invoke"):
                yield " ".join(words[i + 1 :])
                break


def _slugs(headings: Iterable[str]) -> Iterator[str]:
    """GitHub's anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats."""
    seen: dict[str, int] = {}
    for text in headings:
        text = _INLINE_CODE.sub(r"\1", re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)).lower()
        slug = "".join(
            "-" if c == " " else c
            for c in text
            if c in " -_" or unicodedata.category(c)[0] in "LMN"
        )
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        yield slug if count == 0 else f"{slug}-{count}"


@dataclass(frozen=True)
class Tasks:
    """The real tasks and flags, from tasks.py through invoke's loader and parser."""

    flags: dict[str, set[str]]  # task name -> its flags (--dry-run, -c …)
    core: set[str]  # invoke's own flags (--list, --help …)

    @classmethod
    def load(cls, root: Path = ROOT) -> Tasks:
        from invoke.collection import Collection
        from invoke.loader import FilesystemLoader
        from invoke.program import Program

        module, _ = FilesystemLoader(start=str(root)).load("tasks")
        contexts = Collection.from_module(module).to_contexts()
        flags = {c.name: set(c.flag_names()) for c in contexts if c.name}
        program = Program()
        core = {n for arg in program.core_args() + program.task_args() for n in arg.names}
        return cls(flags, {("-" if len(n) == 1 else "--") + n for n in core})

    def problems(self, command: str) -> Iterator[str]:
        """What in one command is not a real task or flag ("" when all is real)."""
        try:
            words = shlex.split(command)
        except ValueError:
            words = command.split()
        current: str | None = None
        for word in (w.strip("[]") for w in words):
            if word in self.flags:
                current = word
                continue
            flag = _FLAG.fullmatch(word.split("=", 1)[0])
            if not flag:
                continue  # a value or a placeholder
            known = self.flags[current] if current else self.core
            if flag[1] not in known:
                yield f"{flag[1]} is not a flag of {current or 'invoke'}"
        named = [w for w in words if w.strip("…")]
        if current is None and named and not any(w.startswith("-") for w in named):
            yield f"no task named in `invoke {command}`"


def pairs(root: Path = ROOT) -> Iterator[tuple[Path, Path]]:
    yield root / "README.md", root / "README.ja.md"
    english, japanese = root / "docs", root / "docs" / "ja"
    names = {p.name for p in english.glob("*.md")} | {p.name for p in japanese.glob("*.md")}
    for name in sorted(names):
        yield english / name, japanese / name


def check(root: Path = ROOT, tasks: Tasks | None = None) -> list[str]:
    tasks = tasks or Tasks.load(root)
    problems: list[str] = []
    pages: dict[Path, Page] = {}
    for english, japanese in pairs(root):
        missing = [p for p in (english, japanese) if not p.exists()]
        for path in missing:
            other = japanese if path == english else english
            problems.append(
                f"{_rel(path, root)} is missing ({_rel(other, root)} has no counterpart)"
            )
        if missing:
            continue
        en, ja = pages[english], pages[japanese] = read(english), read(japanese)
        problems.extend(_compare(en, ja, root))
    for page in pages.values():
        problems.extend(_commands(page, tasks, root))
        problems.extend(_links(page, pages, root))
    return problems


def _compare(en: Page, ja: Page, root: Path) -> Iterator[str]:
    e, j = _rel(en.path, root), _rel(ja.path, root)
    levels_en, levels_ja = [lv for lv, _ in en.headings], [lv for lv, _ in ja.headings]
    if levels_en != levels_ja:
        yield (f"{j} has headings of levels {_levels(levels_ja)}, {e} {_levels(levels_en)}: "
               "they must correspond one to one")  # fmt: skip
    for kind, a, b in (("task", en.tasks, ja.tasks), ("setting", en.settings, ja.settings)):
        for name in sorted(a - b):
            yield f"{j} does not name {kind} {name} ({e} does)"
        for name in sorted(b - a):
            yield f"{e} does not name {kind} {name} ({j} does)"


def _levels(levels: list[int]) -> str:
    return " ".join(str(lv) for lv in levels) or "(none)"


def _commands(page: Page, tasks: Tasks, root: Path) -> Iterator[str]:
    for command in page.commands:
        for problem in tasks.problems(command):
            yield f"{_rel(page.path, root)}: {problem} (in `{command}`)"
    for name in sorted(page.tasks - set(tasks.flags)):
        yield f"{_rel(page.path, root)}: names {name}, which is not a task"


def _links(page: Page, pages: dict[Path, Page], root: Path) -> Iterator[str]:
    for link in page.links:
        if re.match(r"^[a-z][a-z0-9+.-]*:", link):
            continue  # https:, mailto: …
        target, _, anchor = link.partition("#")
        path = (page.path.parent / target).resolve() if target else page.path
        where = f"{_rel(page.path, root)}: link {link}"
        if not path.exists():
            yield f"{where} points at nothing"
            continue
        if not anchor or path.suffix != ".md":
            continue
        known = pages[path].anchors if path in pages else read(path).anchors
        if anchor not in known:
            yield f"{where}: {_rel(path, root)} has no heading with that anchor"


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def main(root: Path = ROOT) -> int:
    problems = check(root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        count = sum(1 for _ in pairs(root))
        print(f"documentation in step: {count} pages in English and Japanese")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
