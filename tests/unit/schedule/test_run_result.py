"""A task's result as the scheduler reads it: facts written by the task when asked, and for a
run that wrote none (killed, crashed) the last thing it said, never its first line."""

from __future__ import annotations

import pytest

from pgkura.schedule import result as run_result
from pgkura.schedule.runner import _last_error


def test_nothing_is_written_unless_asked(tmp_path, monkeypatch):
    monkeypatch.delenv(run_result.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    run_result.record("ok")
    assert not any(tmp_path.iterdir())


def test_an_error_is_the_summary_on_one_line(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    monkeypatch.setenv(run_result.ENV, str(path))
    run_result.said("backing up is not the result")
    run_result.record("failed", "error: the disk is full\n→ free space in backups/")
    assert run_result.read(path) == {
        "outcome": "failed",
        "summary": "error: the disk is full → free space in backups/",
    }
    run_result.said("backup: backups/app.sql.gz (1 KiB)")
    run_result.record("ok")
    assert run_result.read(path) == {
        "outcome": "ok",
        "summary": "backup: backups/app.sql.gz (1 KiB)",
    }


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"outcome": "maybe"}'])
def test_a_missing_or_foreign_result_is_none(tmp_path, text):
    path = tmp_path / "result.json"
    if text:
        path.write_text(text)
    assert run_result.read(path) is None


@pytest.mark.parametrize(
    ("output", "summary"),
    [
        (
            "backing up postgresql://app:***@h/app\nerror: first\nerror: what ended it",
            "error: what ended it",
        ),
        (
            "backing up postgresql://app:***@h/app\nTraceback (most recent call last):\nOSError: boom",
            "OSError: boom",
        ),
        ("", "no output"),
    ],
)
def test_a_run_without_a_result_is_summed_up_by_its_last_error(output, summary):
    assert _last_error(output) == summary
