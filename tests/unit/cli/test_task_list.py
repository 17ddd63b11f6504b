"""`invoke --list` and `--help` as a person reads them: whole summaries grouped by intent, an
example for every task that takes arguments."""

from __future__ import annotations

import inspect

from invoke.loader import FilesystemLoader

from tests.conftest import ROOT

GROUPS = {
    "server",
    "migrations",
    "backups",
    "health",
    "pitr",
    "image",
    "import",
    "upgrade",
    "standby",
}
# invoke wraps summaries wider than this beside the longest name on an 80-column terminal
WIDTH = 80 - len("  db.check-migrations   ") - 1


def tasks():
    module, _ = FilesystemLoader(start=str(ROOT)).load("tasks")
    ns = module.ns
    return {name: ns[name] for name in ns.task_names}


def test_every_summary_is_whole_short_and_names_its_group():
    for name, task in tasks().items():
        summary = inspect.getdoc(task).splitlines()[0]
        assert len(summary) <= WIDTH, name
        assert summary.split(":")[0] in GROUPS, name


def test_every_task_with_arguments_shows_examples_of_itself():
    for name, task in tasks().items():
        doc = inspect.getdoc(task)
        if task.get_arguments():
            examples = doc.split("Examples:\n")[1].splitlines()
            assert examples, name
            assert all(line.strip().startswith(f"invoke {name}") for line in examples), name
