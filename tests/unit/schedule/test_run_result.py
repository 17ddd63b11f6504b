"""A task's result as the scheduler reads it: facts written by the task when asked, and for a
run that wrote none (killed, crashed) its exit status, never what it printed."""

from __future__ import annotations

import pytest

from pgkura.schedule import result as run_result
from pgkura.schedule.runner import run_summary


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
    ("code", "result", "summary"),
    [
        (1, {"outcome": "failed", "summary": "error: the disk is full"}, "error: the disk is full"),
        (
            0,
            {"outcome": "ok", "summary": "backup: backups/app.sql.gz"},
            "backup: backups/app.sql.gz",
        ),
        (-9, None, "killed by signal 9"),
        (1, None, "exited with status 1 without writing its result (it crashed; see its output)"),
    ],
)
def test_the_runner_sums_up_a_run_from_its_result_and_exit_status(code, result, summary):
    """Never from what the run printed: there is no output to pass."""
    assert run_summary(code, result) == summary
