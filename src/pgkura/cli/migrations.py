"""Tasks for migrations: apply, inspect, undo, adopt and check them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.exceptions import Exit

from pgkura.cli.backups import announce
from pgkura.cli.output import Output
from pgkura.cli.wiring import consent, progress, report, say, task

if TYPE_CHECKING:
    from pgkura.config.settings import Settings


@task(
    help={
        "to": "apply up to and including this version only",
        "dry-run": "show the plan; apply nothing",
        "allow-missing": "go on although applied versions have no file any more",
        "allow-out-of-order": "apply pending files numbered below the newest applied one",
        "backup": "take a backup first when something is pending (default in production)",
        "no-backup": "skip that backup in production",
        "no-schema": "do not refresh db/schema.sql afterwards (development, local container)",
    }
)
def migrate(
    c: Context,
    settings: Settings,
    to: str | None = None,
    dry_run: bool = False,
    allow_missing: bool = False,
    allow_out_of_order: bool = False,
    backup: bool = False,
    no_backup: bool = False,
    no_schema: bool = False,
) -> None:
    """migrations: apply the pending ones

    Apply pending migrations from db/migrations, each in its own transaction.

    Examples:
      invoke db.migrate
      invoke db.migrate --dry-run
      invoke db.migrate --to 12
    """
    from pgkura.migrations.operations import MigrateOptions
    from pgkura.migrations.operations import migrate as run_migrate

    options = MigrateOptions.from_flags(to=to, dry_run=dry_run, allow_missing=allow_missing,
                                        allow_out_of_order=allow_out_of_order, backup=backup,
                                        no_backup=no_backup, no_schema=no_schema)  # fmt: skip
    say(f"target: {settings.target.redacted()}")
    done = run_migrate(settings, options, say, announce=announce, progress=report,
                       reporter=progress())  # fmt: skip
    if options.dry_run:
        print("\n".join(f"would apply {s.migration.up.path.name}" for s in done.steps) or
              "nothing to apply")  # fmt: skip
        return
    if not done.steps:
        print("database is up to date")
    if done.schema_written:
        from pgkura.units import duration

        took = duration(done.schema_seconds)
        print(f"refreshed {done.schema_written} in {took} (commit it with the migration)")
    if done.schema_problem:
        say(f"warning: could not refresh {settings.schema_file.name}: {done.schema_problem}")


@task(
    help={
        "check": "exit non-zero (3) when anything is pending, changed or missing (CI gate)",
        "json": "print the report as JSON (for machines)",
    }
)
def status(c: Context, settings: Settings, check: bool = False, json: bool = False) -> None:
    """migrations: applied, pending, changed, missing

    Show applied, pending, changed and missing migrations.

    Examples:
      invoke db.status
      invoke db.status --check    (CI: exit 3 unless in sync)
      invoke db.status --json
    """
    from pgkura.cli.replication import standby_lines
    from pgkura.cli.report import status_json, status_summary, status_table
    from pgkura.migrations.operations import IN_SYNC, require_in_sync
    from pgkura.migrations.operations import status as read_status

    entries, out = read_status(settings), Output.to()
    if json:
        in_sync = all(e.state in IN_SYNC for e in entries)
        out.json(status_json(entries, settings.target.redacted(), in_sync))
    else:
        out.line(f"target: {settings.target.redacted()}")
        out.line(status_table(entries, out.paint))
        out.line(status_summary(entries))
        for line in standby_lines(settings):
            out.line(line)
    if check:
        require_in_sync(entries)


@task(
    help={
        "name": "what the migration does, e.g. 'add users table'",
        "down": "also create the matching .down.sql",
        "no-transaction": "mark the file to run outside a transaction (CONCURRENTLY builds)",
    },
    positional=["name"],
)
def new(
    c: Context, settings: Settings, name: str, down: bool = False, no_transaction: bool = False
) -> None:
    """migrations: create the next numbered file

    Create the next numbered migration file.

    Examples:
      invoke db.new "add users table" --down
      invoke db.new "index users email" --no-transaction
    """
    from pgkura.migrations.scaffold import new_migration

    for path in new_migration(
        settings.migrations_dir, name, down=down, no_transaction=no_transaction
    ):
        _created(settings, path)


def _created(settings: Settings, path: Path) -> None:
    root = settings.root
    print(f"created {path.relative_to(root) if path.is_relative_to(root) else path}")


@task
def example(c: Context, settings: Settings) -> None:
    """migrations: add the example schema (documents)

    Copy the example migrations (a `documents` table with an embedding and a pg_bigm index) into
    the migrations directory, numbered after your own; `invoke db.migrate` then applies them.
    Nothing of the example is applied unless you run this.

    Examples:
      invoke db.example db.migrate
    """
    from pgkura.migrations.scaffold import EXAMPLES, add_examples

    for path in add_examples(settings.root / EXAMPLES, settings.migrations_dir):
        _created(settings, path)


@task(
    help={
        "steps": "how many applied migrations to undo, newest first (default 1)",
        "to": "undo every migration above this version (0 undoes all)",
        "dry-run": "show what would be rolled back",
        "yes": "do not ask for confirmation",
    }
)
def rollback(
    c: Context,
    settings: Settings,
    steps: str | None = None,
    to: str | None = None,
    dry_run: bool = False,
    yes: bool = False,
) -> None:
    """migrations: undo applied ones with .down.sql

    Undo applied migrations with their .down.sql files (asks first).

    Examples:
      invoke db.rollback --dry-run
      invoke db.rollback --steps 2 --yes
      invoke db.rollback --to 0
    """
    from pgkura.migrations.operations import RollbackOptions
    from pgkura.migrations.operations import rollback as run_rollback

    options = RollbackOptions.from_flags(steps=steps, to=to, dry_run=dry_run)
    done = run_rollback(settings, options, consent(yes), say, progress=report)
    if not done:
        print("nothing to roll back")
    elif dry_run:
        print(f"would roll back: {', '.join(s.migration.label for s in done)}")


@task(
    help={"version": "record every migration up to this number as applied"},
    positional=["version"],
)
def baseline(c: Context, settings: Settings, version: str) -> None:
    """migrations: mark up to VERSION applied, not run

    Mark migrations up to VERSION as applied without running them (existing databases).

    Examples:
      invoke db.baseline 3
    """
    from pgkura import validation as v
    from pgkura.migrations.runner import Migrator

    number = v.VERSION.check(version.strip(), name="VERSION", where="the command line")
    recorded = Migrator(settings, say).baseline(number)
    for m in recorded:
        print(f"baselined {m.label} (not run)")
    if not recorded:
        print(f"nothing to baseline: everything up to {version} is already recorded")


@task(
    help={
        "from": "the tool that migrated this database: golang-migrate, dbmate or flyway",
        "source-table": "its version table, when not its default (schema_migrations; Flyway: "
        "flyway_schema_history)",
        "yes": "write: convert the files and record the versions (without it: a dry run)",
    }
)
def adopt(
    c: Context, settings: Settings, from_: str = "", source_table: str = "", yes: bool = False
) -> None:
    """migrations: take over another tool's history

    Take over another tool's history: convert its files, record what it applied.

    Examples:
      invoke db.adopt --from dbmate
      invoke db.adopt --from flyway --yes
    """
    from pgkura import validation as v
    from pgkura.migrations import adopt as adoption

    if not from_:
        raise Exit(f"error: name the tool with --from ({', '.join(adoption.TOOLS)})")
    source = v.TABLE.flag(source_table, "--source-table") if source_table else None
    plan = adoption.plan(settings, from_, source)
    print(f"{plan.tool}'s history in {plan.source}: {plan.history.summary}")
    for conversion in plan.conversions:
        print(f"convert {conversion.source.name} → {', '.join(conversion.files)}")
    for m in plan.record:
        print(f"record  {m.label} ({plan.how(m)})")
    for m in plan.pending:
        print(f"pending {m.label} (not applied by {plan.tool}; `invoke db.migrate` applies it)")
    if not yes:
        print("dry run: nothing written. Run again with --yes to convert the files and "
              f"record {len(plan.record)} version(s) in pgkura's table "
              f"({settings.migrations_schema}.{settings.migrations_table}); "
              f"{plan.source} is left as it is")  # fmt: skip
        return
    kept = adoption.apply(settings, plan, say)
    print(f"recorded {len(plan.record)} version(s); {plan.tool}'s table is untouched")
    if kept:
        print(f"the original files are in {kept} (delete them once you have committed)")


@task(help={"yes": "do not ask for confirmation"})
def repair(c: Context, settings: Settings, yes: bool = False) -> None:
    """migrations: accept edited applied files

    Re-record checksums of applied files that were edited on purpose.

    Examples:
      invoke db.repair
      invoke db.repair --yes
    """
    from pgkura.migrations.runner import Migrator

    migrator = Migrator(settings, say)
    changed = migrator.plan().changed
    if not changed:
        print("no applied file has changed; nothing to repair")
        return
    for m, row in changed:
        print(f"CHANGED {m.up.path.name}: {row.checksum[:12]} → {m.up.checksum[:12]}")
    consent(yes).require(settings, f"accept {len(changed)} edited migration file(s) as applied")
    for m, old in migrator.repair():
        print(f"repaired {m.label}: checksum {old[:12]} replaced by {m.up.checksum[:12]}")


@task(
    name="check-migrations",
    help={
        "migrations-dir": "directory to check (default PGKURA_MIGRATIONS_DIR)",
        "init-sql": "bootstrap file to run first (default PGKURA_INIT_SQL)",
        "write-schema": "write schema.sql (beside the migrations directory) instead of comparing",
        "on-target": "build in a scratch database on the container / DATABASE_URL (pg_bigm)",
    },
)
def check_migrations(
    c: Context,
    settings: Settings,
    migrations_dir: str = "",
    init_sql: str = "",
    write_schema: bool = False,
    on_target: bool = False,
) -> None:
    """migrations: build them all in a scratch database

    Build a throwaway database from init.sql + every migration; check downs and schema.sql.

    Examples:
      invoke db.check-migrations
      invoke db.check-migrations --write-schema
      invoke db.check-migrations --on-target
    """
    import dataclasses

    from pgkura.migrations.check import check_migrations as run_check

    if migrations_dir:
        settings = dataclasses.replace(settings, migrations_dir=Path(migrations_dir).resolve())
    if init_sql:
        settings = dataclasses.replace(settings, init_sql=Path(init_sql).resolve())
    run_check(settings, say, write_schema=write_schema, on_target=on_target)
    print(f"migrations OK: {settings.init_sql.name} + {settings.migrations_dir}")


@task(name="dump-schema")
def dump_schema(c: Context, settings: Settings) -> None:
    """migrations: write db/schema.sql

    Write db/schema.sql: init.sql + every migration, built and dumped on the server.
    """
    from pgkura.migrations.schema_build import build_snapshot

    settings.schema_file.write_text(build_snapshot(settings, say))
    print(f"wrote {settings.schema_file}")


@task(help={"json": "print the differences as JSON (for machines)"})
def drift(c: Context, settings: Settings, json: bool = False) -> None:
    """migrations: compare the database with schema.sql

    Compare the live database with db/schema.sql; exit 1 on objects that differ.

    Examples:
      invoke db.drift
      invoke db.drift --json
    """
    from pgkura.cli import report
    from pgkura.migrations.schema_build import drift as find_drift

    found, out = find_drift(settings, say), Output.to()
    target, snapshot = settings.target.redacted(), settings.schema_file.name
    if json:
        out.json(report.drift_json(found, target, snapshot))
    elif found.clean:
        out.line(f"no drift: {target} matches {snapshot}", "ok")
    else:
        out.line(report.drift(found, snapshot, out.paint))
    if not found.clean:
        raise Exit("drift found: put the change in a migration, or undo it by hand", code=1)
