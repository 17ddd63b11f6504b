"""Tasks for point-in-time recovery (PGKURA_PITR): base backups, restoring to a moment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke.context import Context

from pgkura.cli.wiring import consent, say, task

if TYPE_CHECKING:
    from pgkura.config.settings import Settings


@task(
    help={
        "type": "full (default), diff (changes since the last full), incr (since any), or auto "
        "(full when none is under 7 days old, else diff: what PGKURA_PITR_SCHEDULE runs)"
    }
)
def basebackup(c: Context, settings: Settings, type: str = "full") -> None:
    """Take a verified pgBackRest base backup: the start of the point-in-time window."""
    from pgkura.pitr.archiving import base_backup, local
    from pgkura.units import size

    done = base_backup(settings, type)
    print(f"base backup {done.label} ({done.kind}): {size(done.size)} of data, "
          f"{size(done.stored)} stored, ended {local(done.stopped)}, verified")  # fmt: skip


def list_base_backups(settings: Settings) -> None:
    """The pgBackRest base backups and the window they give (with the live archiver's time)."""
    from pgkura.cli.report import table
    from pgkura.connect.connection import connect
    from pgkura.engines.docker.compose import container_state
    from pgkura.errors import PgkuraError
    from pgkura.pitr.archiving import archiver, backups, local, window_line
    from pgkura.units import size

    try:
        found, status = backups(settings)
    except PgkuraError as exc:  # the dumps below are listed all the same
        print(f"point-in-time recovery: cannot read pgBackRest's repository: {exc}\n")
        return
    state = container_state(settings)
    archived_at = None
    if state is not None and state.running:
        with connect(settings.target, purpose="backups") as conn:
            archived_at = archiver(conn).archived_at
    rows = [[b.label, b.kind, local(b.started), local(b.stopped), size(b.size), size(b.stored)]
            for b in found]  # fmt: skip
    if rows:
        print(table(["base backup", "type", "started", "ended", "data", "stored"], rows))
    print(window_line(found, archived_at) + ("" if status == "ok" else f" (stanza: {status})"))
    print()


@task(
    name="restore-to",
    help={
        "moment": 'with its UTC offset, e.g. "2026-11-30 16:59:00+09:00" (JST) or '
        '"2026-11-30 07:59:00Z"',
        "to-volume": "the new volume's name (default <project>_pgdata_pitr_<now>)",
        "yes": "do not ask for confirmation",
    },
)
def restore_to(
    c: Context, settings: Settings, moment: str, to_volume: str = "", yes: bool = False
) -> None:
    """PGKURA_PITR: the cluster as it was at MOMENT, in a new volume the project then uses."""
    from pgkura.pitr.restore import make_plan, parse_moment, restore

    plan = make_plan(settings, parse_moment(moment), to_volume)
    for line in plan.lines():
        print(line)
    consent(yes).require(settings, f"restore the cluster as it was at {moment} into "
                          f"{plan.target} and switch the project to it")  # fmt: skip
    done = restore(settings, plan, say)
    print(f"restored: the project runs on {plan.target} (timeline {done.timeline}); fresh "
          f"full base backup {done.backup.label}")  # fmt: skip
    print(f"undo: set PGKURA_VOLUME={plan.source} and `invoke db.up` ({plan.source} is as "
          "it was before the restore)")  # fmt: skip
