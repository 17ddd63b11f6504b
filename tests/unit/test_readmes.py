"""The check that keeps README.md and README.ja.md in step (nox -s lint) finds a task or a
setting one of them lacks, and passes on the repository as it is."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location(
    "check_readmes", ROOT / "scripts" / "check_readmes.py"
)
assert _spec is not None
assert _spec.loader is not None
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


def test_the_repository_s_readmes_are_in_step(capsys):
    assert check.main() == 0
    assert "READMEs in step" in capsys.readouterr().out


def test_a_task_or_setting_missing_from_one_readme_is_named(tmp_path, capsys):
    english = (ROOT / "README.md").read_text(encoding="utf-8")
    japanese = (ROOT / "README.ja.md").read_text(encoding="utf-8")
    lines = japanese.splitlines()
    without = [ln for ln in lines if not ln.startswith(("| `db.prune", "| `PGKURA_S3_SSE`"))]
    (tmp_path / "en.md").write_text(english, encoding="utf-8")
    (tmp_path / "ja.md").write_text("\n".join(without), encoding="utf-8")
    assert check.main(tmp_path / "en.md", tmp_path / "ja.md") == 1
    said = capsys.readouterr().err
    assert "README.ja.md does not list task db.prune" in said
    assert "README.ja.md does not list setting PGKURA_S3_SSE" in said
