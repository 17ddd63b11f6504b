"""The documentation check (nox -s lint) passes on the repository as it is, and names each way
a page and its Japanese counterpart can part: a missing page, headings that do not correspond,
a task or setting only one of them names, a command or flag that does not exist, a link or
anchor that leads nowhere."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location(
    "check_readmes", ROOT / "scripts" / "check_readmes.py"
)
assert _spec is not None
assert _spec.loader is not None
check = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = check  # dataclasses look their module up while the class is made
_spec.loader.exec_module(check)


@pytest.fixture(scope="module")
def tasks():
    return check.Tasks.load()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A copy of the repository's documentation, to break one thing at a time."""
    for name in ("README.md", "README.ja.md", "ARCHITECTURE.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_repository_s_documentation_is_in_step(capsys):
    assert check.main() == 0
    assert "documentation in step" in capsys.readouterr().out


def test_the_copy_is_in_step_before_it_is_broken(docs, tasks):
    assert check.check(docs, tasks) == []


def test_a_page_without_its_japanese_counterpart_is_named(docs, tasks):
    (docs / "docs" / "ja" / "sqlite.md").unlink()
    assert "docs/ja/sqlite.md is missing (docs/sqlite.md has no counterpart)" in check.check(
        docs, tasks
    )


def test_headings_that_do_not_correspond_are_named(docs, tasks):
    _edit(
        docs / "docs" / "ja" / "pitr.md", "## 何ができるようになるか", "### 何ができるようになるか"
    )
    problems = check.check(docs, tasks)
    assert any(p.startswith("docs/ja/pitr.md has headings of levels 1 3 ") for p in problems)


def test_a_task_or_setting_missing_from_one_language_is_named(docs, tasks):
    japanese = docs / "README.ja.md"
    lines = japanese.read_text(encoding="utf-8").splitlines()
    kept = [ln for ln in lines if not ln.startswith(("| `db.prune", "| `PGKURA_OFFSITE_URL`"))]
    japanese.write_text("\n".join(kept), encoding="utf-8")
    problems = check.check(docs, tasks)
    assert "README.ja.md does not name task db.prune (README.md does)" in problems
    assert "README.ja.md does not name setting PGKURA_OFFSITE_URL (README.md does)" in problems


def test_a_command_naming_no_real_task_or_flag_is_named(docs, tasks):
    page = docs / "docs" / "getting-started.md"
    _edit(page, 'invoke db.new "add tags" --down', 'invoke db.new "add tags" --downn')
    _edit(page, "invoke db.psql ", "invoke db.sql ")
    problems = "\n".join(check.check(docs, tasks))
    assert "docs/getting-started.md: --downn is not a flag of db.new" in problems
    assert "docs/getting-started.md: names db.sql, which is not a task" in problems


def test_a_flag_in_a_task_table_row_is_checked_too(docs, tasks):
    _edit(docs / "docs" / "tasks.md", "[--no-offsite]", "[--no-offsite-copy]")
    problems = "\n".join(check.check(docs, tasks))
    assert "docs/tasks.md: --no-offsite-copy is not a flag of db.backup" in problems


def test_invoke_s_own_flags_aliases_and_negations_are_real(tasks):
    for command in ("--list", "--help TASK", "db.psql -c 'select 1'", "db.backup --no-offsite",
                    "db.adopt --from dbmate --yes", "db.up --build db.migrate"):  # fmt: skip
        assert list(tasks.problems(command)) == [], command
    assert list(tasks.problems("db.up --bild")) == ["--bild is not a flag of db.up"]


def test_a_link_or_anchor_leading_nowhere_is_named(docs, tasks):
    page = docs / "docs" / "ja" / "troubleshooting.md"
    _edit(page, "(upgrades.md)", "(upgrade.md)")
    _edit(
        page,
        "getting-started.md#ネットワークなしでビルドする",
        "getting-started.md#ネットワークなし",
    )
    problems = check.check(docs, tasks)
    assert "docs/ja/troubleshooting.md: link upgrade.md points at nothing" in problems
    assert (
        "docs/ja/troubleshooting.md: link getting-started.md#ネットワークなし: "
        "docs/ja/getting-started.md has no heading with that anchor"
    ) in problems


def test_anchors_are_github_s():
    headings = ["Building without network", "`db.up` and **you**", "テストと CI",
                "使い捨てサーバーの pg_bigm", "Figures (2026-11-22)", "Figures (2026-11-22)"]  # fmt: skip
    assert list(check._slugs(headings)) == [
        "building-without-network", "dbup-and-you", "テストと-ci", "使い捨てサーバーの-pg_bigm",
        "figures-2026-11-22", "figures-2026-11-22-1",
    ]  # fmt: skip
