"""`db.pitr-drill`: proof that the WAL archive restores, as the logical drills prove the dumps
do: the cluster restored to a named restore point just made, in a throwaway volume and helper
server, its tables' rows compared with the live database's at that point; nothing of the
project is touched and the throwaway parts are removed whatever happens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pgkura.config.settings import Settings
from pgkura.connect.connection import connect
from pgkura.engines.docker import helpers, pgbackrest
from pgkura.pitr.restore import Log, along, live_timeline, make_plan, recovered

# every table's own rows (ONLY: a parent would count its partitions again), in one query
COUNTS = """
SELECT format('%I.%I', schemaname, tablename),
       (xpath('/row/c/text()', query_to_xml(
           format('SELECT count(*) AS c FROM ONLY %I.%I', schemaname, tablename),
           false, true, '')))[1]::text::bigint
  FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
"""


@dataclass(frozen=True)
class Drill:
    backup: pgbackrest.BaseBackup
    point: str  # the restore point restored to
    tables: int
    rows: int
    compared: int  # tables whose rows did not change while the point was made: must match
    busy: tuple[str, ...]  # written meanwhile: not compared


def drill(settings: Settings, log: Log) -> Drill:
    """Make a restore point between two counts of the live database, restore to it, count
    again in the restored copy; PitrError when a table that did not change differs."""
    pgbackrest.require(settings)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    point = f"pgkura-drill-{stamp}"
    with connect(settings.target, purpose="pitr drill") as conn:
        before: dict[str, int] = dict(conn.execute(COUNTS).fetchall())
        conn.execute("SELECT pg_create_restore_point(%s)", (point,))
        after: dict[str, int] = dict(conn.execute(COUNTS).fetchall())
        timeline = live_timeline(conn)
    log(f"restore point {point}; handing its WAL to the archive (pgbackrest check)")
    pgbackrest.in_server(settings, "check", what="pgBackRest's check before the drill")
    plan = make_plan(settings, datetime.now(UTC))
    helper = f"pgkura-pitr-drill-{settings.compose_project}"
    volume = f"{settings.compose_project}_pitr_drill_{stamp}"
    helpers.remove(helper)  # what a killed run left
    try:
        server = recovered(settings, plan.backup, volume, helper,
                           ["--type=name", f"--target={point}", *along(timeline, plan.backup)],
                           "drill", log,
                           throwaway=True)  # fmt: skip
        lines = server.psql(settings.postgres_db, sql=COUNTS).stdout.splitlines()
        restored = {name: int(n) for name, n in (line.split("|") for line in lines)}
    finally:
        helpers.remove(helper)
        helpers.remove_volume(volume)
    steady = {name: n for name, n in before.items() if after.get(name) == n}
    wrong = [f"{name}: {restored.get(name, 'missing')} rows restored, {n} live"
             for name, n in steady.items() if restored.get(name) != n]  # fmt: skip
    if wrong:
        raise pgbackrest.PitrError(
            f"the restore to {point} differs from the live database:\n"
            + "\n".join(wrong)
            + "\n→ keep the dumps' drills going and look at `invoke db.logs` for archive-push "
            "errors; a gap in the archived WAL shows as rows missing here"
        )
    busy = tuple(sorted(set(before) - set(steady)))
    return Drill(plan.backup, point, len(restored), sum(restored.values()), len(steady), busy)
