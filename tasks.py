"""pgkura tasks: `invoke --list` shows them. Thin wiring only; the work is in src/pgkura.

Imports of the library happen inside the tasks, so `invoke --list` stays fast.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task as _task

if TYPE_CHECKING:
    import psycopg

    from pgkura.backups.operations import Consent
    from pgkura.backups.store import Backup
    from pgkura.config.settings import Settings
    from pgkura.metrics.facts import Facts
    from pgkura.progress import Reporter

ROOT = Path(__file__).resolve().parent


@contextmanager
def _errors() -> Iterator[None]:
    """Expected failures end with one clear message and a non-zero exit, not a traceback;
    the outcome is also written for the scheduler (run_result) when it asks."""
    from pgkura.errors import PgkuraError
    from pgkura.schedule import result as run_result

    try:
        try:
            yield
        except PgkuraError as exc:
            raise Exit(f"error: {exc}", code=exc.exit_code) from None
        except Exception as exc:
            # psycopg is looked up, not imported: a task that never connected (a backup through
            # `docker exec`) cannot have a database error and should not pay for the import
            psycopg = sys.modules.get("psycopg")
            if psycopg is not None and isinstance(exc, psycopg.Error):
                lost = _lost_server(exc)
                if lost is not None:
                    raise Exit(f"error: {lost}", code=1) from None
                # e.g. a role without CREATEDB; libpq never echoes passwords
                raise Exit(f"error: the server refused: {str(exc).strip()}", code=1) from None
            raise
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None
    except Exit as exc:
        outcome = "ok" if exc.code == 0 else "interrupted" if exc.code == 130 else "failed"
        run_result.record(outcome, exc.message or "")
        raise
    except Exception as exc:
        run_result.record("failed", f"error: unexpected {type(exc).__name__}: {exc}")
        raise
    run_result.record("ok")


def _lost_server(exc: psycopg.Error) -> str | None:
    """The report for a session the server ended mid-way (None for other database errors),
    with the engine's word when the settings load."""
    from pgkura.engines.readiness import lost_server
    from pgkura.errors import PgkuraError

    try:
        settings = _settings()
    except PgkuraError:
        settings = None
    return lost_server(settings, exc)


def _settings() -> Settings:
    from pgkura.config.settings import load_settings

    return load_settings(ROOT)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _report(message: str) -> None:
    """What has been done, on stdout, the moment it is done (a failure may follow)."""
    print(message, flush=True)


def _consent(yes: bool = False, force: bool = False) -> Consent:
    from pgkura.backups.operations import Consent

    return Consent(yes=yes, force=force, interactive=sys.stdin.isatty())


# invoke would give every flag a one-letter alias (-f for --force, -y for --yes): too easy to
# type by accident on tasks that delete or replace data, so no task gets automatic ones.
task = functools.partial(_task, auto_shortflags=False)


# -- migrations ------------------------------------------------------------------------------


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
    to: str | None = None,
    dry_run: bool = False,
    allow_missing: bool = False,
    allow_out_of_order: bool = False,
    backup: bool = False,
    no_backup: bool = False,
    no_schema: bool = False,
) -> None:
    """Apply pending migrations from db/migrations, each in its own transaction."""
    from pgkura.migrations.operations import MigrateOptions
    from pgkura.migrations.operations import migrate as run_migrate

    with _errors():
        options = MigrateOptions.from_flags(to=to, dry_run=dry_run, allow_missing=allow_missing,
                                            allow_out_of_order=allow_out_of_order, backup=backup,
                                            no_backup=no_backup, no_schema=no_schema)  # fmt: skip
        settings = _settings()
        _say(f"target: {settings.target.redacted()}")
        done = run_migrate(settings, options, _say, take=_backup_now, progress=_report,
                           reporter=_progress())  # fmt: skip
        if options.dry_run:
            print("\n".join(f"would apply {s.migration.up.path.name}" for s in done.steps) or
                  "nothing to apply")  # fmt: skip
            return
        if not done.steps:
            print("database is up to date")
        if done.schema_written:
            print(f"refreshed {done.schema_written} (commit it with the migration)")
        if done.schema_problem:
            _say(f"warning: could not refresh {settings.schema_file.name}: {done.schema_problem}")


@task(help={"check": "exit non-zero (3) when anything is pending, changed or missing (CI gate)"})
def status(c: Context, check: bool = False) -> None:
    """Show applied, pending, changed and missing migrations."""
    from pgkura.cli.report import status_summary, status_table
    from pgkura.migrations.operations import require_in_sync
    from pgkura.migrations.operations import status as read_status

    with _errors():
        settings = _settings()
        entries = read_status(settings)
        print(f"target: {settings.target.redacted()}")
        print(status_table(entries))
        print(status_summary(entries))
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
def new(c: Context, name: str, down: bool = False, no_transaction: bool = False) -> None:
    """Create the next numbered migration file."""
    from pgkura.migrations.scaffold import new_migration

    with _errors():
        for path in new_migration(
            _settings().migrations_dir, name, down=down, no_transaction=no_transaction
        ):
            print(f"created {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


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
    steps: str | None = None,
    to: str | None = None,
    dry_run: bool = False,
    yes: bool = False,
) -> None:
    """Undo applied migrations with their .down.sql files (asks first)."""
    from pgkura import validation as v
    from pgkura.migrations.runner import Migrator

    with _errors():
        how_many, down_to = v.STEPS.flag(steps, "--steps"), v.VERSION.flag(to, "--to")
        if how_many is not None and down_to is not None:
            raise Exit("error: choose one of --steps and --to")
        settings = _settings()
        migrator = Migrator(settings, _say, progress=_report)
        chosen = migrator.rollback(steps=how_many, to=down_to, dry_run=True)
        if not chosen:
            print("nothing to roll back")
            return
        names = ", ".join(s.migration.label for s in chosen)
        if dry_run:
            print(f"would roll back: {names}")
            return
        _consent(yes).require(settings, f"roll back {names} on {settings.target.redacted()}")
        confirmed = [s.migration.version for s in chosen]
        migrator.rollback(steps=how_many, to=down_to, expect=confirmed)


@task(
    help={"version": "record every migration up to this number as applied"},
    positional=["version"],
)
def baseline(c: Context, version: str) -> None:
    """Mark migrations up to VERSION as applied without running them (existing databases)."""
    from pgkura import validation as v
    from pgkura.migrations.runner import Migrator

    with _errors():
        number = v.VERSION.check(version.strip(), name="VERSION", where="the command line")
        recorded = Migrator(_settings(), _say).baseline(number)
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
def adopt(c: Context, from_: str = "", source_table: str = "", yes: bool = False) -> None:
    """Take over another tool's history: convert its files, record what it applied."""
    from pgkura import validation as v
    from pgkura.migrations import adopt as adoption

    with _errors():
        if not from_:
            raise Exit(f"error: name the tool with --from ({', '.join(adoption.TOOLS)})")
        source = v.TABLE.flag(source_table, "--source-table") if source_table else None
        settings = _settings()
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
        kept = adoption.apply(settings, plan, _say)
        print(f"recorded {len(plan.record)} version(s); {plan.tool}'s table is untouched")
        if kept:
            print(f"the original files are in {kept} (delete them once you have committed)")


@task(help={"yes": "do not ask for confirmation"})
def repair(c: Context, yes: bool = False) -> None:
    """Re-record checksums of applied files that were edited on purpose."""
    from pgkura.migrations.runner import Migrator

    with _errors():
        settings = _settings()
        migrator = Migrator(settings, _say)
        changed = migrator.plan().changed
        if not changed:
            print("no applied file has changed; nothing to repair")
            return
        for m, row in changed:
            print(f"CHANGED {m.up.path.name}: {row.checksum[:12]} → {m.up.checksum[:12]}")
        _consent(yes).require(
            settings, f"accept {len(changed)} edited migration file(s) as applied"
        )
        for m, old in migrator.repair():
            print(f"repaired {m.label}: checksum {old[:12]} replaced by {m.up.checksum[:12]}")


@task(help={"timeout": "how long to wait, e.g. 30s (default PGKURA_CONNECT_WAIT)"})
def wait(c: Context, timeout: str = "") -> None:
    """Wait until the server accepts connections and answers a query."""
    from pgkura import validation as v
    from pgkura.engines.readiness import ready

    with _errors():
        timeout_ms = v.DURATION.flag(timeout or None, "--timeout")
        settings = _settings()
        version = ready(settings, timeout_ms=timeout_ms)
        print(f"ready: {settings.target.redacted()} (server {version // 10000}.{version % 10000})")


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
    migrations_dir: str = "",
    init_sql: str = "",
    write_schema: bool = False,
    on_target: bool = False,
) -> None:
    """Build a throwaway database from init.sql + every migration; check downs and schema.sql."""
    import dataclasses

    from pgkura.migrations.check import check_migrations as run_check

    with _errors():
        settings = _settings()
        if migrations_dir:
            settings = dataclasses.replace(settings, migrations_dir=Path(migrations_dir).resolve())
        if init_sql:
            settings = dataclasses.replace(settings, init_sql=Path(init_sql).resolve())
        run_check(settings, _say, write_schema=write_schema, on_target=on_target)
        print(f"migrations OK: {settings.init_sql.name} + {settings.migrations_dir}")


@task(name="dump-schema")
def dump_schema(c: Context) -> None:
    """Write db/schema.sql: init.sql + every migration, built and dumped on the server."""
    from pgkura.migrations.schema_build import build_snapshot

    with _errors():
        settings = _settings()
        settings.schema_file.write_text(build_snapshot(settings, _say))
        print(f"wrote {settings.schema_file}")


@task
def drift(c: Context) -> None:
    """Compare the live database with db/schema.sql; exit 1 on objects that differ."""
    from pgkura.cli import report
    from pgkura.migrations.schema_build import drift as find_drift

    with _errors():
        settings = _settings()
        found = find_drift(settings, _say)
        if found.clean:
            print(f"no drift: {settings.target.redacted()} matches {settings.schema_file.name}")
            return
        print(report.drift(found, settings.schema_file.name))
        raise Exit("drift found: put the change in a migration, or undo it by hand", code=1)


# -- the container -------------------------------------------------------------------------


@task(
    name="build",
    help={"no-cache": "build every layer again", "pull": "pull a newer base image first"},
)
def docker_build(c: Context, no_cache: bool = False, pull: bool = False) -> None:
    """Build the PostgreSQL 18 + pgvector + pg_bigm image (docker compose build); pg_bigm's
    source from PG_BIGM_SOURCE (a URL, or a local archive for hosts without access)."""
    from pgkura.engines.lifecycle import build

    with _errors():
        build(_settings(), no_cache=no_cache, pull=pull)


@task(help={"build": "build the image first"})
def up(c: Context, build: bool = False) -> None:
    """Start the database and wait until it accepts connections."""
    from pgkura.engines.lifecycle import up as start

    with _errors():
        settings = _settings()
        version = start(settings, build_first=build, log=_say)
        print(f"ready: {settings.target.redacted()} (PostgreSQL {_version(version)})")
        if settings.metrics and not settings.is_embedded:
            from pgkura.metrics.exporter import MONITOR_ROLE, ensure_monitor_role

            if ensure_monitor_role(settings):
                _say(f"metrics: created the role {MONITOR_ROLE} (pg_monitor) for the exporter")
            where = ("postgres-exporter:9187 on the project's network" if settings.is_production
                     else f"http://127.0.0.1:{settings.metrics_port}/metrics")  # fmt: skip
            print(f"metrics: postgres_exporter at {where}")


@task(
    help={
        "volumes": "also delete the data volume (backs up first, asks first)",
        "yes": "do not ask for confirmation",
        "force": "allow --volumes in production",
        "no-backup": "with --volumes: do not back up the database first",
    }
)
def down(
    c: Context,
    volumes: bool = False,
    yes: bool = False,
    force: bool = False,
    no_backup: bool = False,
) -> None:
    """Stop and remove the container (the data volume stays unless --volumes)."""
    from pgkura.backups.operations import before_deleting_volume
    from pgkura.engines.lifecycle import down as stop

    with _errors():
        settings = _settings()
        if volumes:
            before_deleting_volume(settings, "delete the data volume", _consent(yes, force),
                                   backup=not no_backup, log=_say, take=_backup_now)  # fmt: skip
        stop(settings, volumes=volumes)


@task
def restart(c: Context) -> None:
    """Restart the container and wait until it accepts connections again."""
    from pgkura.engines.lifecycle import restart as again

    with _errors():
        settings = _settings()
        print(f"ready: PostgreSQL {_version(again(settings, _say))}")


@_task(help={"follow": "keep streaming new lines", "tail": "how many lines to show (default 100)"})
def logs(c: Context, follow: bool = False, tail: str = "100") -> None:
    """Show the server's log."""
    from pgkura import validation as v
    from pgkura.engines.lifecycle import show_log

    with _errors():
        lines = v.LINES.flag(tail, "--tail")
        raise Exit(code=show_log(_settings(), 100 if lines is None else lines, follow=follow))


@task
def ps(c: Context) -> None:
    """Show the container's state and health."""
    from pgkura.engines.lifecycle import show_state

    with _errors():
        raise Exit(code=show_state(_settings()))


@_task(help={"command": "run this SQL and exit instead of opening a shell"})  # -c, as psql
def psql(c: Context, command: str | None = None) -> None:
    """Open psql in the container (or run one command with -c)."""
    import os
    import subprocess

    from pgkura.engines.lifecycle import psql_command

    with _errors():
        argv, env = psql_command(_settings(), command, tty=sys.stdin.isatty())
        raise Exit(code=subprocess.run(argv, env={**os.environ, **env}, check=False).returncode)


@task(
    help={
        "yes": "do not ask for confirmation",
        "force": "allow it in production",
        "no-backup": "do not back up the current database first",
    }
)
def reset(c: Context, yes: bool = False, force: bool = False, no_backup: bool = False) -> None:
    """Delete the data volume, start fresh (init.sql) and apply every migration."""
    from pgkura.backups.operations import before_deleting_volume
    from pgkura.engines.lifecycle import down as stop
    from pgkura.engines.lifecycle import up as start
    from pgkura.migrations.runner import Migrator

    with _errors():
        settings = _settings()
        before_deleting_volume(settings, "reset the database (delete its volume)",
                               _consent(yes, force), backup=not no_backup, log=_say,
                               take=_backup_now)  # fmt: skip
        stop(settings, volumes=True)
        start(settings, log=_say)
        steps = Migrator(settings, _say).migrate()
        print(f"reset done: fresh database, {len(steps)} migration(s) applied")


@task(help={"ensure": "CREATE EXTENSION IF NOT EXISTS each required extension, then verify"})
def extensions(c: Context, ensure: bool = False) -> None:
    """Show the required extensions (PGKURA_EXTENSIONS), available and installed versions."""
    from pgkura.cli.report import table
    from pgkura.engines.readiness import ready
    from pgkura.extensions import check as ext

    with _errors():
        settings = _settings()
        target, names = settings.target, settings.required_extensions
        ready(settings)
        items = ext.ensure(target, names) if ensure else ext.check(target, names)
        print(f"target: {target.redacted()}")
        rows = [[s.name, s.available or "-", s.installed or "-", s.state] for s in items]
        print(table(["extension", "available", "installed", "state"], rows))
        warning = ext.pgvector_warning(items)
        if warning:
            _say(f"warning: {warning}")
        if any(not s.installed for s in items):
            raise Exit("error: not every required extension is installed; "
                       "run `invoke db.extensions --ensure`")  # fmt: skip


@task
def doctor(c: Context) -> None:
    """Check Docker, .env, port, container, server, extensions, migrations and backups."""
    from pgkura.cli import report
    from pgkura.inspection.doctor import diagnose

    with _errors():
        findings = diagnose(_settings())
        print(report.findings(findings))
        if any(f.level == "fail" for f in findings):
            raise Exit("doctor found problems (FAIL above)", code=1)


# -- backups ---------------------------------------------------------------------------------


def _progress() -> Reporter:
    """Progress on stderr: a redrawn line on a terminal, plain lines in logs (CI, a pipe, the
    scheduler's captured output)."""
    from pgkura.progress import Reporter

    return Reporter.to(sys.stderr)


def _backup_now(settings: Settings, *, log: Callable[[str], None] = _say, **options: Any) -> Backup:
    from pgkura.backups.take import take_backup
    from pgkura.schedule.result import said
    from pgkura.units import size

    done = take_backup(settings, log=log, progress=_progress(), **options)
    m = done.manifest
    print(said(f"backup: {done.path} ({size(m['size'])}, sha256 {m['sha256'][:16]}…, "
               f"{m['duration_s']} s, {m['source']})"))  # fmt: skip
    return done


@task(
    help={
        "output": "file or directory to write (default PGKURA_BACKUP_DIR)",
        "keep": "afterwards keep only the newest N of this database's pgkura backups",
        "schema-only": "the schema without data",
        "data-only": "the data without the schema",
        "cluster": "every database and the roles (pg_dumpall)",
        "level": "compression level 1-9 (default PGKURA_BACKUP_LEVEL, 6)",
        "compression": "gzip (.sql.gz, the default) or zstd (.sql.zst); default "
        "PGKURA_BACKUP_COMPRESSION",
        "offsite": "copy it to PGKURA_OFFSITE_URL when that is set (default; --no-offsite skips)",
    }
)
def backup(
    c: Context,
    output: str = "",
    keep: str | None = None,
    schema_only: bool = False,
    data_only: bool = False,
    cluster: bool = False,
    level: str | None = None,
    compression: str | None = None,
    offsite: bool = True,
) -> None:
    """Back up the database to backups/<db>_YYYYMMDD_HHMMSS.sql.gz (with a manifest), and
    off-site when PGKURA_OFFSITE_URL is set."""
    from pgkura.backups.take import BackupOptions, retention
    from pgkura.schedule import result as run_result
    from pgkura.schedule.alerts import alerting

    with _errors():
        settings = _settings()
        alert_url = settings.alert_url
        with alerting(alert_url, "db.backup", on_success=settings.alert_success, log=_say,
                      on_interrupt=not run_result.requested()):  # fmt: skip
            options = BackupOptions.from_flags(output=output, keep=keep, level=level,
                                               schema_only=schema_only, data_only=data_only,
                                               cluster=cluster,
                                               compression=compression)  # fmt: skip
            done = _backup_now(settings, output=options.output, mode=options.mode,
                               keep=options.keep, level=options.level,
                               compression=options.compression)  # fmt: skip
            if settings.offsite is not None and offsite:
                from pgkura.backups.offsite import ship

                ship(settings.offsite, done, retention(settings, options.keep), _report,
                     _progress())  # fmt: skip


@task(
    help={
        "file": "the .sql.gz or .sql.zst to restore, or `latest` (the newest backup)",
        "database": "restore into this database instead of the configured one",
        "create": "create the target database if it does not exist",
        "no-safety-backup": "skip the safety copy of the current database taken first",
        "safety": "with `latest`: undo the last restore (put its safety copy back)",
        "remote": "FILE (or `latest`) is in PGKURA_OFFSITE_URL: download and verify it first",
        "yes": "do not ask for confirmation",
    },
    positional=["file"],
)
def restore(
    c: Context,
    file: str,
    database: str = "",
    create: bool = False,
    no_safety_backup: bool = False,
    safety: bool = False,
    remote: bool = False,
    yes: bool = False,
) -> None:
    """Restore a backup (FILE or `latest`) in one transaction: all of it or nothing."""
    from pgkura import validation as v

    with _errors():
        name = v.DATABASE.flag(database or None, "--database") or ""
        settings = _settings()
        if remote and safety:
            raise Exit(
                "error: --safety undoes a local restore; it cannot be combined with --remote"
            )
        with _local_copy(settings, file, name, remote) as spec:
            _restore(settings, spec, name, create=create, safety_backup=not no_safety_backup,
                     safety=safety, yes=yes)  # fmt: skip


@contextmanager
def _local_copy(settings: Settings, spec: str, name: str, remote: bool) -> Iterator[str]:
    """`spec` itself, or with --remote the path of a downloaded, verified copy (removed after)."""
    if not remote:
        yield spec
        return
    from pgkura.backups.offsite import fetch

    dbname, progress = name or settings.target.dbname, _progress()
    with fetch(settings.offsite, spec, dbname, settings.backup_dir, progress) as path:
        _say(f"downloaded and verified {path.name} from the off-site copies")
        yield str(path)


def _restore(
    settings: Settings, file: str, name: str, *, create: bool, safety_backup: bool,
    safety: bool, yes: bool,
) -> None:  # fmt: skip
    from pgkura.backups.operations import put_back_safety_copy, restore_backup

    undone = put_back_safety_copy(settings, file, _consent(yes), database=name) if safety else None
    if undone is not None:
        copy, replaced = undone
        print(f"{name or settings.target.dbname} holds again what it held before the last "
              f"restore ({copy.name}); what it held until now is kept as database "
              f"{replaced}")  # fmt: skip
        return
    path, done = restore_backup(settings, file, _consent(yes), database=name, create=create,
                                safety_backup=safety_backup, from_safety=safety,
                                log=_say, progress=_progress())  # fmt: skip
    print(f"restored {path.name} into {done.database} ({done.check.plain_size} bytes of SQL)")
    if done.safety_backup:
        print(f"the previous contents are in {done.safety_backup.path} "
              "(undo with `invoke db.restore latest --safety`)")  # fmt: skip
    if done.safety_copy:
        print(f"the previous contents are in database {done.safety_copy} on the same server "
              "(undo with `invoke db.restore latest --safety`; once satisfied, free its "
              f"space with DROP DATABASE \"{done.safety_copy}\")")  # fmt: skip


@task(
    name="backups",
    help={
        "remote": "list the off-site copies in PGKURA_OFFSITE_URL instead",
        "verify": "read every file in full (gzip/zstd, trailer, SHA-256) instead of trusting "
        "what its manifest recorded when the backup was taken",
    },
)
def list_backups(c: Context, remote: bool = False, verify: bool = False) -> None:
    """List the backups with database, time, size and age, at once from their manifests."""
    import time

    from pgkura.backups.archive import verify as check_file
    from pgkura.backups.store import BackupStore
    from pgkura.cli.report import table
    from pgkura.units import age, size

    with _errors():
        settings = _settings()
        if remote:
            _list_remote(settings)
            return
        entries = BackupStore(settings.backup_dir).entries()
        if settings.pitr.enabled and not settings.is_embedded:
            _list_base_backups(settings)
        if not entries:
            print(f"no backups in {settings.backup_dir}")
            return
        rows = []
        progress = _progress()
        for e in entries:
            m, stat = e.manifest, e.path.stat()
            if verify:
                check = check_file(e.path, progress)
                state = "ok" if check.ok else "FAILED: " + check.problems[0]
            else:
                problem = e.unread_problem()
                state = "complete when taken" if problem is None else "CHECK: " + problem
            rows.append([e.path.name, m.get("database", "?"), m.get("mode", "?"),
                         e.purpose if e.ours else "-", m.get("created_at", "?"),
                         size(stat.st_size), age(time.time() - stat.st_mtime),
                         state])  # fmt: skip
        headers = ["file", "database", "mode", "purpose", "created", "size", "age",
                   "verifies" if verify else "recorded"]  # fmt: skip
        print(table(headers, rows))
        if not verify:
            print("(from the manifests; `invoke db.backups --verify` reads every file)")
        _last_drill(settings)


def _last_drill(settings: Settings) -> None:
    """The newest restore drill the scheduler ran, if any: proof that the backups restore."""
    from pgkura.schedule.runner import read_state

    drill = read_state(settings).get("jobs", {}).get("drill")
    if drill:
        print(f"last restore drill: {drill.get('started_at', '?')}, {drill.get('outcome', '?')}"
              f" — {drill.get('summary', '')}")  # fmt: skip


def _list_remote(settings: Settings) -> None:
    """The complete off-site backups (data and manifest both there), from their manifests."""
    from pgkura.backups.offsite import RemoteStore, configured
    from pgkura.cli.report import table
    from pgkura.units import size

    offsite = configured(settings.offsite)
    entries = RemoteStore(offsite).entries()
    if not entries:
        print(f"no backups in {offsite.url}")
        return
    rows = [[e.path.name, e.manifest.get("database", "?"), e.manifest.get("mode", "?"),
             e.purpose, e.manifest.get("created_at", "?"), size(int(e.manifest.get("size", 0))),
             e.manifest.get("sha256", "?")[:16] + "…"] for e in entries]  # fmt: skip
    print(f"off-site: {offsite.url}")
    print(table(["file", "database", "mode", "purpose", "created", "size", "sha256"], rows))


# -- point-in-time recovery (PGKURA_PITR) ----------------------------------------------------


@task(
    help={
        "type": "full (default), diff (changes since the last full), incr (since any), or auto "
        "(full when none is under 7 days old, else diff: what PGKURA_PITR_SCHEDULE runs)"
    }
)
def basebackup(c: Context, type: str = "full") -> None:
    """Take a verified pgBackRest base backup: the start of the point-in-time window."""
    from pgkura.pitr.archiving import base_backup, local
    from pgkura.units import size

    with _errors():
        done = base_backup(_settings(), type)
        print(f"base backup {done.label} ({done.kind}): {size(done.size)} of data, "
              f"{size(done.stored)} stored, ended {local(done.stopped)}, verified")  # fmt: skip


def _list_base_backups(settings: Settings) -> None:
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
def restore_to(c: Context, moment: str, to_volume: str = "", yes: bool = False) -> None:
    """PGKURA_PITR: the cluster as it was at MOMENT, in a new volume the project then uses."""
    from pgkura.pitr.restore import make_plan, parse_moment, restore

    with _errors():
        settings = _settings()
        plan = make_plan(settings, parse_moment(moment), to_volume)
        for line in plan.lines():
            print(line)
        _consent(yes).require(settings, f"restore the cluster as it was at {moment} into "
                              f"{plan.target} and switch the project to it")  # fmt: skip
        done = restore(settings, plan, _say)
        print(f"restored: the project runs on {plan.target} (timeline {done.timeline}); fresh "
              f"full base backup {done.backup.label}")  # fmt: skip
        print(f"undo: set PGKURA_VOLUME={plan.source} and `invoke db.up` ({plan.source} is as "
              "it was before the restore)")  # fmt: skip


@task(
    help={
        "yes": "delete what the policy does not keep (without it: list what would go, and why)",
    }
)
def prune(c: Context, yes: bool = False) -> None:
    """Apply the retention policy (PGKURA_BACKUP_KEEP and _KEEP_DAILY/WEEKLY/MONTHLY/YEARLY)."""
    from pgkura.backups.store import BackupStore
    from pgkura.cli.report import table

    with _errors():
        settings = _settings()
        policy, store = settings.backup_retention, BackupStore(settings.backup_dir)
        name = settings.target.dbname
        plan = store.retention_plan(name, "full", policy)
        print(f"retention for {name}: {policy.describe()}")
        rows = [[e.path.name, e.purpose, "keep: " + "; ".join(why) if why else "DELETE"]
                for e, why in plan]  # fmt: skip
        print(table(["file", "purpose", "decision"], rows) if rows else "no backups")
        doomed = sum(1 for _, why in plan if not why)
        if not yes:
            print(f"dry run: {doomed} file(s) would be deleted; run again with --yes to delete")
            return
        for path in store.prune(name, "full", policy):
            print(f"deleted {path.name}")


@task(
    help={
        "file": "the .sql.gz to check, or `latest` for the newest backup of the database",
        "restore-test": "also restore into a scratch database, count tables and rows, drop it",
        "remote": "FILE (or `latest`) is in PGKURA_OFFSITE_URL: download it, then check it",
    },
    positional=["file"],
)
def verify(c: Context, file: str, restore_test: bool = False, remote: bool = False) -> None:
    """Check a backup (gzip, trailer, SHA-256) without restoring it."""
    with _errors():
        settings = _settings()
        with _local_copy(settings, file, "", remote) as spec:
            _verify(settings, spec, restore_test)


def _verify(settings: Settings, file: str, restore_test: bool) -> None:
    from pgkura.backups.archive import verify as check_file
    from pgkura.backups.drills import restore_test as try_restore
    from pgkura.backups.operations import resolve_backup
    from pgkura.schedule.result import said

    path = resolve_backup(settings, file, settings.target.dbname)
    check = check_file(path, _progress())
    if not check.ok:
        raise Exit("error: " + path.name + " does not verify:\n"
                   + "\n".join(f"  - {p}" for p in check.problems))  # fmt: skip
    note = "matches its manifest" if check.manifest else "no manifest to compare"
    print(f"{path.name}: {check.kind} intact, dump complete, sha256 {check.sha256[:16]}… "
          f"({note})")  # fmt: skip
    if restore_test:
        tables, rows = try_restore(settings, path, _say, _progress())
        print(said(f"restore test: {tables} tables, {rows} rows restored into a scratch database"))


def _version(number: int) -> str:
    return f"{number // 10000}.{number % 10000}"


@task(
    name="push",
    help={
        "registry": "where to push, e.g. ghcr.io/OWNER/REPO (any registry)",
        "keep-login": "stay logged in afterwards (default: the login ends with the push)",
    },
)
def docker_push(c: Context, registry: str, keep_login: bool = False) -> None:
    """Push the built image under its descriptive tag and sha-<commit> (token from env)."""
    from pgkura.engines.docker.publish import push

    with _errors():
        settings = _settings()
        if settings.is_embedded:
            from pgkura.engines.embedded.server import not_here

            raise not_here("pushing an image")
        for ref in push(settings, registry, _say, keep_login=keep_login):
            print(f"pushed {ref}")


@task(
    help={
        "dry-run": "print the plan, the sizes and the space needed; change nothing",
        "from-volume": "the volume holding the old data (default: the project's, PGKURA_VOLUME)",
        "from-dir": "a host directory holding the old data directory instead",
        "to-volume": "the new PostgreSQL 18 volume (default: <old volume>_pg18)",
        "old-image": "the image to run the old major with (default pgvector/pgvector:pg<major>)",
        "yes": "do not ask for confirmation",
    }
)
def upgrade(
    c: Context,
    dry_run: bool = False,
    from_volume: str = "",
    from_dir: str = "",
    to_volume: str = "",
    old_image: str = "",
    yes: bool = False,
) -> None:
    """Move the data of PostgreSQL 15/16/17 (or 18 in the old layout) into a new 18 volume."""
    from pgkura.engines.docker.compose import require_docker
    from pgkura.upgrade.major import in_use, make_plan, point_project_at, refuse_if_in_use
    from pgkura.upgrade.major import upgrade as carry_out

    with _errors():
        settings = _settings()
        if settings.is_embedded:
            from pgkura.engines.embedded.server import not_here

            raise not_here("db.upgrade (volumes of older PostgreSQL images)")
        require_docker()
        if from_volume and from_dir:
            raise Exit("error: choose one of --from-volume, --from-dir")
        plan = make_plan(settings, from_volume=from_volume, from_dir=from_dir,
                         to_volume=to_volume, old_image=old_image)  # fmt: skip
        for line in plan.lines():
            print(line)
        if dry_run:
            for user in in_use(settings, plan):
                print(f"in use (stop it first): {user}")
            print("dry run: nothing was started or changed")
            return
        refuse_if_in_use(settings, plan)  # before asking; the upgrade looks again
        _consent(yes).require(settings, f"upgrade {plan.source} into a new volume {plan.target}")
        backup, updated = carry_out(settings, plan, _say, _progress())
        print(f"backup of the old cluster: {backup}")
        for line in updated:
            print(f"extension updated: {line}")
        print("indexes: all rebuilt by the restore, none needs a REINDEX")
        print(point_project_at(settings, plan.target))
        print(f"upgraded: start it with `invoke db.up`. To go back: set PGKURA_VOLUME="
              f"{plan.source} and the old image again; {plan.source} is unchanged")  # fmt: skip


@task(
    help={
        "json": "print the whole report as JSON (for machines)",
        "snapshot": "also record the database's size now, for the growth section",
    }
)
def inspect(c: Context, json: bool = False, snapshot: bool = False) -> None:
    """Connections, slow statements, locks, errors, space, bloat and growth, with a verdict."""
    from pgkura.cli.report import inspection
    from pgkura.engines.docker.compose import container_state
    from pgkura.inspection.database import inspect as look

    with _errors():
        settings = _settings()
        target = settings.target
        state = container_state(settings) if target.is_container else None
        report = look(target, container=settings.container_name if state and state.running
                      else None, snapshots=settings.backup_dir / ".pgkura-sizes.jsonl",
                      record=snapshot)  # fmt: skip
        print(report.to_json() if json else inspection(report))
        if any(a.level == "fail" for a in report.attention):
            raise Exit(code=1)


@task(
    name="import-sqlite",
    help={
        "file": "the SQLite database file",
        "schema": "import into this schema (created if missing; default public)",
        "dry-run": "print the types chosen, what is lossy, and the DDL; change nothing",
    },
    positional=["file"],
)
def import_sqlite(c: Context, file: str, schema: str = "public", dry_run: bool = False) -> None:
    """Move a SQLite database's tables and data in, in one verified transaction."""
    from pgkura import validation as v
    from pgkura.sqlite.importer import dry_run as plan_lines
    from pgkura.sqlite.importer import import_sqlite as run_import
    from pgkura.sqlite.schema import NotSqlite

    with _errors():
        settings = _settings()
        path = v.FILE_PATH.check(file, name="FILE", where="the command line")
        name = v.SCHEMA.check(schema, name="--schema", where="the command line")
        try:
            if dry_run:
                print("\n".join(plan_lines(path, name)))
                return
            done = run_import(path, settings.target, schema=name, progress=_progress(),
                              log=_say)  # fmt: skip
        except NotSqlite as exc:
            raise Exit(f"error: {exc}", code=1) from None
        for note in done.notes:
            print(f"note: {note}")
        print(f"imported {len(done.tables)} tables, {done.rows} rows into {done.schema} of "
              f"{settings.target.dbname} in {done.seconds:.1f} s; every table read back and "
              "compared with SQLite (row counts and checksums)")  # fmt: skip


@task(
    name="schedule",
    help={
        "run": "run the scheduled jobs in the foreground until stopped (what a supervisor runs)",
        "install": "write and enable a systemd service that keeps `--run` going across reboots",
        "remove": "disable and delete that service",
        "user": "with --install/--remove: a user service (systemctl --user), not a system one",
        "unit-dir": "with --install/--remove: write the unit there instead of systemd's directory",
    },
)
def schedule(
    c: Context,
    run: bool = False,
    install: bool = False,
    remove: bool = False,
    user: bool = False,
    unit_dir: str = "",
) -> None:
    """Scheduled backups and restore drills: their last and next runs (or run/install them)."""
    from pgkura.schedule import runner as scheduler

    with _errors():
        settings = _settings()
        if sum((run, install, remove)) > 1:
            raise Exit("error: choose one of --run, --install, --remove")
        if run:
            textfile = settings.metrics_textfile
            after_job = functools.partial(_metrics, settings, textfile) if textfile else None
            scheduler.run(settings, ROOT, _report, after_job=after_job)
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
        active, jobs = scheduler.status(settings)
        if not jobs:
            print("no schedule: set PGKURA_BACKUP_SCHEDULE (e.g. `daily 03:15`) and "
                  "PGKURA_DRILL_SCHEDULE for restore drills")  # fmt: skip
            return
        for job in jobs:
            print(f"{job.job.name}: {job.line()}")
        print("runner: " + ("active" if active else "NOT running → `invoke db.schedule --install` "
                            "(systemd) or `invoke db.schedule --run`"))  # fmt: skip


@task(
    help={
        "textfile": "write them to this .prom file, atomically, for node_exporter's textfile "
        "collector (default PGKURA_METRICS_TEXTFILE; neither: print them)",
    }
)
def metrics(c: Context, textfile: str = "") -> None:
    """pgkura's facts as Prometheus metrics: backup, off-site and drill times, migrations, WAL."""
    from pgkura import validation as v

    with _errors():
        settings = _settings()
        path = v.FILE_PATH.flag(textfile, "--textfile") if textfile else settings.metrics_textfile
        if path is None:
            from pgkura.metrics.exposition import render
            from pgkura.metrics.facts import collect

            facts = collect(settings)
            print(render(facts.families), end="")
        else:
            facts = _metrics(settings, path)
            print(f"wrote {path}")
        for collector, why in facts.failures.items():
            _say(f"warning: the {collector} facts could not be read: {why}")


def _metrics(settings: Settings, path: Path) -> Facts:
    from pgkura.metrics.facts import publish

    return publish(settings, path)


db = Collection(
    "db", up, down, restart, logs, ps, psql, reset, extensions, doctor,
    migrate, status, new, rollback, baseline, adopt, repair, wait, check_migrations,
    dump_schema, drift, backup, restore, list_backups, prune, verify, schedule, upgrade,
    import_sqlite, inspect, basebackup, restore_to, metrics,
)  # fmt: skip
ns = Collection(db, Collection("docker", docker_build, docker_push))
