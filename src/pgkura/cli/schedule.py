"""The task for scheduled backups and restore drills."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.exceptions import Exit

from pgkura.cli.output import Output
from pgkura.cli.wiring import report, task

if TYPE_CHECKING:
    from pathlib import Path

    from pgkura.config.settings import Settings
    from pgkura.metrics.facts import Facts


@task(
    name="schedule",
    help={
        "run": "run the scheduled jobs in the foreground until stopped (what a supervisor runs)",
        "install": "write and enable a systemd service that keeps `--run` going across reboots",
        "remove": "disable and delete that service",
        "user": "with --install/--remove: a user service (systemctl --user), not a system one",
        "unit-dir": "with --install/--remove: write the unit there instead of systemd's directory",
        "json": "print the jobs' status as JSON (for machines)",
    },
)
def schedule(
    c: Context,
    settings: Settings,
    run: bool = False,
    install: bool = False,
    remove: bool = False,
    user: bool = False,
    unit_dir: str = "",
    json: bool = False,
) -> None:
    """backups: scheduled backups and restore drills

    Scheduled backups and restore drills: their last and next runs (or run/install them).

    Examples:
      invoke db.schedule
      invoke db.schedule --json
      invoke db.schedule --install --user
      invoke db.schedule --run
    """
    from pgkura.schedule import runner as scheduler

    if sum((run, install, remove)) > 1:
        raise Exit("error: choose one of --run, --install, --remove")
    if run:
        textfile = settings.metrics_textfile
        after_job = functools.partial(_metrics, settings, textfile) if textfile else None
        scheduler.run(settings, settings.root, report, after_job=after_job)
        return
    if install or remove:
        from pgkura import validation as v
        from pgkura.schedule.systemd_unit import install as put
        from pgkura.schedule.systemd_unit import remove as take
        from pgkura.schedule.systemd_unit import unit

        where = v.FILE_PATH.flag(unit_dir, "--unit-dir") if unit_dir else None
        service = unit(settings, user=user, unit_dir=where)
        for line in put(service) if install else take(service):
            print(line)
        return
    active, jobs, out = *scheduler.status(settings), Output.to()
    if json:
        from pgkura.cli.report import schedule_json

        out.json(schedule_json(active, jobs))
        return
    if not jobs:
        out.line("no schedule: set PGKURA_BACKUP_SCHEDULE (e.g. `daily 03:15`) and "
              "PGKURA_DRILL_SCHEDULE for restore drills")  # fmt: skip
        return
    for job in jobs:
        out.line(f"{job.job.name}: {job.line()}", "warn" if job.level == "warn" else "")
    out.line("runner: " + ("active" if active else "NOT running → `invoke db.schedule --install` "
                           "(systemd) or `invoke db.schedule --run`"),
             "" if active else "warn")  # fmt: skip


def _metrics(settings: Settings, path: Path) -> Facts:
    """After each scheduled job: pgkura's facts rewritten for node_exporter (db.metrics)."""
    from pgkura.metrics.facts import publish

    return publish(settings, path)
