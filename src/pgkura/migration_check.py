"""`nox -s migrations`: build a fresh database from init.sql and every migration, check the
version rows, and prove that down files really undo their migrations."""

from __future__ import annotations

import dataclasses
import difflib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from psycopg import sql

from pgkura.config import Settings
from pgkura.connection import connect
from pgkura.dsn import Target
from pgkura.errors import MigrationError
from pgkura.migration_files import Migration, discover
from pgkura.migrations import Migrator
from pgkura.throwaway import ThrowawayServer, bin_dir

Log = Callable[[str], None]


def run_psql_file(target: Target, path: Path) -> None:
    """Run a file the way the image's entrypoint runs init scripts: psql, stop on error."""
    conninfo, env = target.child_process_args()
    result = subprocess.run(
        [
            str(bin_dir() / "psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            conninfo,
            "-f",
            str(path),
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise MigrationError(f"{path} failed:\n{result.stderr.strip()}")


def schema_dump(target: Target) -> str:
    """The schema as pg_dump sees it, without the version rows and the random \\restrict key."""
    conninfo, env = target.child_process_args()
    result = subprocess.run(
        [str(bin_dir() / "pg_dump"), "--schema-only", "--no-owner", "--no-privileges",
         "--restrict-key=pgkura", "-d", conninfo],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise MigrationError(f"pg_dump failed: {result.stderr.strip()}")
    return result.stdout


def check_migrations(settings: Settings, log: Log) -> None:
    """Apply init.sql and every migration to a throwaway server; MigrationError on a problem."""
    migrations = discover(settings.migrations_dir)
    if not settings.init_sql.is_file():
        raise MigrationError(f"init file {settings.init_sql} does not exist (PGKURA_INIT_SQL)")
    with ThrowawayServer() as server:
        dbname = settings.postgres_db
        with connect(server.target()) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        target = server.target(dbname)
        log(f"throwaway PostgreSQL on 127.0.0.1:{server.port}; running {settings.init_sql.name}")
        run_psql_file(target, settings.init_sql)
        local = dataclasses.replace(settings, database_url=server.url(dbname))
        migrator = Migrator(local, log)
        tail = _reversible_tail(migrations)
        untouched = migrations[: len(migrations) - len(tail)]
        steps = migrator.migrate(to=untouched[-1].version) if tail and untouched else []
        base = schema_dump(target)
        steps += migrator.migrate()
        log(f"applied {len(steps)} migration(s)")
        _check_rows(migrator, [m.version for m in migrations])
        if not tail:
            log("the newest migration has no down file; rollback round trip skipped")
            return
        full = schema_dump(target)
        migrator.rollback(steps=len(tail))
        _same(base, schema_dump(target), "rolling back", tail)
        migrator.migrate()
        _same(full, schema_dump(target), "re-applying", tail)
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
        lines = difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), "expected", "actual", lineterm="", n=1
        )
        diff = "\n".join(lines)
        raise MigrationError(
            f"after {what} {', '.join(m.label for m in tail)} the schema differs from what it "
            f"was; the down files do not undo their migrations exactly:\n{diff}"
        )


def _check_rows(migrator: Migrator, expected: list[int]) -> None:
    plan = migrator.plan()
    recorded = sorted(plan.applied)
    if recorded != expected or plan.changed:
        raise MigrationError(f"version rows {recorded} do not match the files {expected}")
