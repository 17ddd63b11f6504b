"""`nox -s migrations`: build a fresh database from init.sql and every migration on a throwaway
server, check the version rows, prove that down files undo their migrations, and compare the
result with the committed schema snapshot (db/schema.sql)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pgkura.config.settings import Settings
from pgkura.engines.pg_tools import Tool
from pgkura.errors import MigrationError
from pgkura.migrations.files import Migration, project_migrations
from pgkura.migrations.runner import Migrator
from pgkura.migrations.schema_snapshot import (
    diff,
    dump_schema,
    run_sql_file,
    snapshot,
    version_rows,
)
from pgkura.migrations.workspaces import Workspace, scratch, throwaway

Log = Callable[[str], None]


def check_migrations(
    settings: Settings, log: Log, *, write_schema: bool = False, on_target: bool = False
) -> str:
    """Run every check on a throwaway server (or, `on_target`, in a scratch database on the
    target server); the fresh snapshot. MigrationError on the first problem."""
    migrations = project_migrations(settings)
    if not settings.init_sql.is_file():
        raise MigrationError(f"init file {settings.init_sql} does not exist (PGKURA_INIT_SQL)")
    with (scratch if on_target else throwaway)(settings, log) as ws:
        fresh = build(settings, ws, log, migrations=migrations)
    compare_with_file(settings.schema_file, fresh, write=write_schema, log=log)
    return fresh


def build(
    settings: Settings, ws: Workspace, log: Log, *, migrations: list[Migration] | None = None
) -> str:
    """init.sql, then every migration in `ws`; with `migrations` given, also the version-row
    and rollback round-trip checks. The schema snapshot."""
    log(f"running {settings.init_sql.name}")
    run_sql_file(ws.psql, settings.init_sql)
    migrator = Migrator(settings, log, target=ws.target)
    if migrations is None:
        migrator.migrate()
    else:
        _apply_with_round_trip(migrator, migrations, ws.pg_dump, log)
        _check_rows(migrator, [m.version for m in migrations])
    return snapshot(dump_schema(ws.pg_dump), version_rows(ws.target, migrator.table))


def compare_with_file(path: Path, fresh: str, *, write: bool, log: Log) -> None:
    """Write the snapshot, or fail with a diff when the committed one differs."""
    if write:
        path.write_text(fresh)
        log(f"wrote {path}")
        return
    if not path.is_file():
        raise MigrationError(
            f"{path} does not exist: commit the schema snapshot. Create it with "
            "`invoke db.dump-schema` (on the container) or `invoke db.check-migrations "
            "--write-schema` (on a throwaway server)"
        )
    committed = path.read_text()
    if committed != fresh:
        changes = diff(committed, fresh, str(path), "fresh build")
        raise MigrationError(
            f"{path} differs from what init.sql + the migrations build. A migration was added "
            "without its schema change, or the file was edited by hand; regenerate it with "
            f"`invoke db.dump-schema` and commit it.\n{changes}"
        )
    log(f"{path.name} matches the fresh build")


def _apply_with_round_trip(
    migrator: Migrator, migrations: list[Migration], pg_dump: Tool, log: Log
) -> None:
    """Apply everything; where the newest migrations have down files, roll them back and
    forward again and demand the exact schema each time."""
    tail = _reversible_tail(migrations)
    untouched = migrations[: len(migrations) - len(tail)]
    steps = migrator.migrate(to=untouched[-1].version) if tail and untouched else []
    if tail and not untouched:
        migrator.ensure_table()  # rolling everything back leaves it (empty): compare alike
    base = dump_schema(pg_dump) if tail else ""
    steps += migrator.migrate()
    log(f"applied {len(steps)} migration(s)")
    if not tail:
        log("the newest migration has no down file; rollback round trip skipped")
        return
    full = dump_schema(pg_dump)
    migrator.rollback(steps=len(tail))
    _same(base, dump_schema(pg_dump), "rolling back", tail)
    migrator.migrate()
    _same(full, dump_schema(pg_dump), "re-applying", tail)
    log(f"rollback round trip of {len(tail)} migration(s): schema restored exactly")


def _reversible_tail(migrations: list[Migration]) -> list[Migration]:
    """The newest migrations that all have down files, newest first."""
    tail = []
    for m in reversed(migrations):
        if m.down is None:
            break
        tail.append(m)
    return tail


def _same(expected: str, actual: str, what: str, tail: list[Migration]) -> None:
    if expected != actual:
        raise MigrationError(
            f"after {what} {', '.join(m.label for m in tail)} the schema differs from what it "
            f"was; the down files do not undo their migrations exactly:\n"
            f"{diff(expected, actual, 'expected', 'actual')}"
        )


def _check_rows(migrator: Migrator, expected: list[int]) -> None:
    plan = migrator.plan()
    recorded = sorted(plan.applied)
    if recorded != expected or plan.changed:
        raise MigrationError(f"version rows {recorded} do not match the files {expected}")
