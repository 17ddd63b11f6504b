"""Tasks for point-in-time recovery (PGKURA_PITR): base backups, restoring to a moment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from invoke.context import Context

from pgkura.cli.output import Output
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
    """pitr: take a verified base backup

    Take a verified pgBackRest base backup in each repository (local, and off-site when
    PGKURA_OFFSITE_URL is set): the start of the point-in-time window.

    Examples:
      invoke db.basebackup
      invoke db.basebackup --type diff
    """
    from pgkura.engines.docker.pgbackrest import base_backup, local
    from pgkura.replication.roles import require_primary
    from pgkura.units import size

    require_primary(settings, settings.target, "a base backup")
    for done in base_backup(settings, type):
        print(f"base backup {done.label} ({done.kind}, {done.where}): {size(done.size)} of data, "
              f"{size(done.stored)} stored, ended {local(done.stopped)}, verified")  # fmt: skip


def base_backup_facts(settings: Settings) -> dict[str, Any]:
    """The pgBackRest base backups and the window they give (with the live archiver's time),
    for db.backups; `problem` when the repository cannot be read (the dumps are listed all the
    same)."""
    from pgkura.connect.connection import connect
    from pgkura.engines.docker.compose import container_state
    from pgkura.engines.docker.pgbackrest import (
        SEGMENT_BYTES,
        archiver,
        backups,
        wal_gaps,
        window_line,
    )
    from pgkura.errors import PgkuraError

    try:
        found, status = backups(settings)
    except PgkuraError as exc:
        return {"problem": f"cannot read pgBackRest's repository: {exc}", "base_backups": []}
    state = container_state(settings)
    archived_at, segment_bytes = None, SEGMENT_BYTES
    if state is not None and state.running:
        with connect(settings.target, purpose="backups") as conn:
            live = archiver(conn)
        archived_at, segment_bytes = live.archived_at, live.segment_bytes
    gaps_problem = None
    try:
        gaps = [g.facts() for g in wal_gaps(settings, found, segment_bytes)] if found else []
    except PgkuraError as exc:
        gaps, gaps_problem = [], f"cannot list the WAL archive for gaps: {exc}"
    return {
        "problem": None,
        "base_backups": [
            {"label": b.label, "type": b.kind, "repository": b.where, "started": b.started,
             "ended": b.stopped, "size": b.size, "stored": b.stored} for b in found
        ],
        "window": window_line(found, archived_at),
        "gaps": gaps,
        "gaps_problem": gaps_problem,
        "archived_at": archived_at,
        "stanza": status,
    }  # fmt: skip


def show_base_backups(facts: dict[str, Any], out: Output) -> None:
    from pgkura.cli.report import table
    from pgkura.engines.docker.pgbackrest import hole_line, local
    from pgkura.units import size

    if facts["problem"]:
        out.line(f"point-in-time recovery: {facts['problem']}\n", "warn")
        return
    rows = [[b["label"], b["type"], b["repository"], local(b["started"]), local(b["ended"]),
             size(b["size"]), size(b["stored"])] for b in facts["base_backups"]]  # fmt: skip
    if rows:
        heads = ["base backup", "type", "repository", "started", "ended", "data", "stored"]
        out.line(table(heads, rows))
    stanza = facts["stanza"]
    out.line(facts["window"] + ("" if stanza == "ok" else f" (stanza: {stanza})"))
    for gap in facts["gaps"]:
        out.line(f"  {hole_line(gap)}", "warn")
    if facts["gaps_problem"]:
        out.line(f"  {facts['gaps_problem']}", "warn")
    out.line()


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
    """pitr: the cluster as it was at a moment

    PGKURA_PITR: the cluster as it was at MOMENT, in a new volume the project then uses.

    Examples:
      invoke db.restore-to "2026-11-30 16:59:00+09:00"
    """
    from pgkura.pitr.restore import make_plan, parse_moment, restore

    plan = make_plan(settings, parse_moment(moment), to_volume)
    for line in plan.lines():
        print(line)
    consent(yes).require(settings, f"restore the cluster as it was at {moment} into "
                          f"{plan.target} and switch the project to it")  # fmt: skip
    done = restore(settings, plan, say)
    print(f"restored: the project runs on {plan.target} (timeline {done.timeline}); fresh "
          f"full base backup {', '.join(b.label for b in done.backups)}")  # fmt: skip
    print(f"undo: set PGKURA_VOLUME={plan.source} and `invoke db.up` ({plan.source} is as "
          "it was before the restore)")  # fmt: skip


@task(name="pitr-drill")
def pitr_drill(c: Context, settings: Settings) -> None:
    """pitr: prove the WAL archive restores

    PGKURA_PITR: restore to a restore point made now into a throwaway server and compare its
    tables' rows with the live database's; nothing of the project is touched. The scheduler
    runs it on PGKURA_DRILL_SCHEDULE beside the dumps' drill.

    Examples:
      invoke db.pitr-drill
    """
    from pgkura.pitr.drill import drill

    done = drill(settings, say)
    busy = f"; written meanwhile, not compared: {', '.join(done.busy)}" if done.busy else ""
    print(f"drill passed: restored {done.point} from {done.backup.label} "
          f"({done.backup.where}): {done.tables} tables, {done.rows} rows; {done.compared} "
          f"compared, identical{busy}")  # fmt: skip
