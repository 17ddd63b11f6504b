"""Applying, rolling back, baselining and repairing migrations on the target server.

Each file runs in its own transaction together with its version row, so a failure leaves
neither. Files marked `-- pgkura:no-transaction` run statement by statement in autocommit
(CREATE INDEX CONCURRENTLY and friends); the row is written only after the last statement.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg.pq import TransactionStatus

from pgkura.config.settings import Settings
from pgkura.connect.connection import connect
from pgkura.dsn import Target
from pgkura.engines.readiness import ready
from pgkura.errors import MigrationError
from pgkura.migrations.files import Migration, SqlFile, project_migrations
from pgkura.migrations.lock import runner_lock
from pgkura.migrations.plan import Plan
from pgkura.migrations.sql_errors import describe
from pgkura.migrations.sql_text import Statement
from pgkura.migrations.version_table import VersionTable
from pgkura.progress import QUIET, Reporter
from pgkura.replication.roles import check_primary

Log = Callable[[str], None]


class _ReportedElsewhere(logging.Filter):
    """A statement failing in pipeline mode makes psycopg log "error ignored terminating
    <Pipeline>" as the transaction unwinds: the error itself is what a migration reports."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("error ignored terminating")


logging.getLogger("psycopg").addFilter(_ReportedElsewhere())
# what is written beside a file's SQL, in the same transaction: the version row, or its removal
Bookkeeping = Callable[[psycopg.Connection, int | None], None]


def _quiet(_: str) -> None:
    """The default log: library functions report through return values unless asked."""


@dataclass(frozen=True)
class Step:
    """A migration that ran (or would run, in a dry run), and how long it took."""

    migration: Migration
    duration_ms: int


class Migrator:
    """The migration operations for one project and one target server."""

    def __init__(
        self,
        settings: Settings,
        log: Log = _quiet,
        target: Target | None = None,
        *,
        progress: Log = _quiet,
        reporter: Reporter = QUIET,
    ) -> None:
        """`log` says what is about to happen; `progress` what has been committed, the moment
        it is, so a failure leaves an accurate account above its error; `reporter` shows how
        long a file has been running (a long index build, or a wait for a lock)."""
        self.settings = settings
        self.target = target or settings.target
        self.table = VersionTable(settings.migrations_schema, settings.migrations_table)
        self.log = log
        self.progress = progress
        self.reporter = reporter

    # -- reading ---------------------------------------------------------------------------

    def plan(self) -> Plan:
        """Files and version rows, read without locking or creating anything."""
        migrations = project_migrations(self.settings)
        ready(self.settings, self.target)
        with connect(self.target, purpose="status") as conn:
            return Plan(migrations, self.table.rows(conn))

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def _locked(
        self, migrations: list[Migration] | None = None
    ) -> Iterator[tuple[psycopg.Connection, Plan]]:
        """Discover files (errors before any SQL) unless given, wait for the server, take the
        runner lock, then read the version rows: what another runner applied meanwhile is
        seen."""
        if migrations is None:
            migrations = project_migrations(self.settings)
            ready(self.settings, self.target)
        with (
            runner_lock(self.target, str(self.table), self.settings.runner_lock_wait_ms, self.log),
            connect(self.target, purpose="migrate") as conn,
        ):
            check_primary(conn, self.settings, self.target, "migrations")
            self.table.ensure(conn)
            plan = Plan(migrations, self.table.rows(conn))
            self._set_timeouts(conn)
            yield conn, plan

    def ensure_table(self) -> None:
        """Create the version table now, as the first migration would."""
        with self._locked():
            pass

    def migrate(
        self,
        *,
        to: int | None = None,
        dry_run: bool = False,
        allow_missing: bool = False,
        allow_out_of_order: bool = False,
        plan: Plan | None = None,
    ) -> list[Step]:
        """Apply pending migrations (up to `to`), oldest first; the steps taken. With nothing
        to do (or a dry run) this is one connection and one query: the lock and the version
        table are needed only to apply something. `plan`: one the caller just read (the lock
        reads the version rows again before anything is applied)."""
        plan = self.plan() if plan is None else plan
        plan.check_integrity(allow_missing=allow_missing, allow_out_of_order=allow_out_of_order)
        pending = plan.to_apply(to)
        if dry_run or not pending:
            return [Step(m, 0) for m in pending]  # what would run (nothing, when not pending)
        with self._locked(plan.migrations) as (conn, plan):
            plan.check_integrity(allow_missing=allow_missing, allow_out_of_order=allow_out_of_order)
            steps = []
            for m in plan.to_apply(to):
                mode = " (no transaction)" if m.up.no_transaction else ""
                self.log(f"applying {m.up.path.name}{mode}")
                with self.reporter.meter(f"applying {m.up.path.name}"):
                    steps.append(Step(m, self._run(conn, m.up, self._recorder(m))))
                self.progress(f"applied {m.up.path.name} ({steps[-1].duration_ms} ms)")
            return steps

    def rollback(
        self,
        *,
        steps: int | None = None,
        to: int | None = None,
        dry_run: bool = False,
        expect: list[int] | None = None,
    ) -> list[Step]:
        """Run down files newest first; refuses up front if any of them is missing, or if the
        versions differ from `expect` (what a person confirmed before the lock was taken)."""
        if dry_run:
            return [Step(m, 0) for m, _ in self.plan().to_roll_back(steps, to)]
        with self._locked() as (conn, plan):
            chosen = plan.to_roll_back(steps, to)
            if expect is not None and [m.version for m, _ in chosen] != expect:
                raise MigrationError(
                    "the applied migrations changed since you confirmed (another runner?); "
                    "nothing was rolled back. Run the rollback again."
                )
            done = []
            for m, down in chosen:
                self.log(f"rolling back {m.label} with {down.path.name}")
                done.append(Step(m, self._run(conn, down, self._forgetter(m))))
                self.progress(f"rolled back {m.label} ({done[-1].duration_ms} ms)")
            return done

    def baseline(self, version: int) -> list[Migration]:
        """Record every file up to `version` as applied without running it."""
        with self._locked() as (conn, plan):
            if version not in plan.by_version:
                raise MigrationError(f"baseline {version}: no migration file has that number")
            chosen = [m for m in plan.pending if m.version <= version]
            with conn.transaction():
                for m in chosen:
                    self.table.record(conn, m.version, m.name, m.up.checksum, 0, how="baseline")
            return chosen

    def repair(self) -> list[tuple[Migration, str]]:
        """Re-record the checksums of edited applied files; (migration, old checksum) pairs."""
        with self._locked() as (conn, plan):
            changed = plan.changed
            with conn.transaction():
                for m, _row in changed:
                    self.table.update_checksum(conn, m.version, m.up.checksum)
            return [(m, row.checksum) for m, row in changed]

    # -- running one file ------------------------------------------------------------------

    def _recorder(self, m: Migration) -> Bookkeeping:
        def record(conn: psycopg.Connection, duration_ms: int | None) -> None:
            self.table.record(conn, m.version, m.name, m.up.checksum, duration_ms)

        return record

    def _forgetter(self, m: Migration) -> Bookkeeping:
        def forget(conn: psycopg.Connection, _duration_ms: int | None) -> None:
            self.table.forget(conn, m.version)

        return forget

    def _run(self, conn: psycopg.Connection, file: SqlFile, bookkeeping: Bookkeeping) -> int:
        """Run `file` statement by statement (so an error names its statement), then
        `bookkeeping`; all in one transaction unless the file opts out."""
        start = time.monotonic()
        if file.no_transaction:
            invalid_before = _invalid_indexes(conn)
            for done, stmt in enumerate(file.statements):
                try:
                    conn.execute(stmt.text)
                except psycopg.Error as exc:
                    raise MigrationError(
                        self._half_way(conn, file, exc, stmt, done, invalid_before)
                    ) from None
            duration = _ms_since(start)
            bookkeeping(conn, duration)
            return duration
        # One round trip for BEGIN, every statement, the version row and COMMIT: a single
        # pipeline with one sync (conn.transaction() would add syncs of its own). After an
        # error the server skips the rest up to the sync, COMMIT included; the statement that
        # failed is the first one without a result.
        cursors: list[psycopg.Cursor] = []
        try:
            with conn.pipeline():
                conn.execute("BEGIN")
                for stmt in file.statements:
                    cursors.append(conn.execute(stmt.text))  # no parameters: runs verbatim
                bookkeeping(conn, None)
                conn.execute("COMMIT")
        except psycopg.Error as exc:
            if conn.info.transaction_status != TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            failed = next((i for i, c in enumerate(cursors) if c.pgresult is None), None)
            where = (
                self._describe(exc, file, file.statements[failed])
                if failed is not None
                else f"{file.path.name}: {exc}"
            )
            raise MigrationError(
                f"{where}\nThe transaction was rolled back: "
                f"nothing from {file.path.name} was applied."
            ) from None
        return _ms_since(start)

    def _half_way(
        self,
        conn: psycopg.Connection,
        file: SqlFile,
        exc: psycopg.Error,
        stmt: Statement,
        committed: int,
        invalid_before: set[str],
    ) -> str:
        lines = [self._describe(exc, file, stmt)]
        lines.append(
            f"{file.path.name} runs without a transaction: {committed} statement(s) before "
            "this one were committed and stay applied; no version row was written, so the whole "
            "file runs again next time. Make its statements idempotent (IF NOT EXISTS) before "
            "re-running."
        )
        new_invalid = sorted(_invalid_indexes(conn) - invalid_before)
        if new_invalid:
            lines.append(
                "Invalid index(es) left behind by a failed concurrent build: "
                + ", ".join(new_invalid)
                + ". Drop them (DROP INDEX CONCURRENTLY ...) before re-running."
            )
        return "\n".join(lines)

    def _describe(self, exc: psycopg.Error, file: SqlFile, stmt: Statement) -> str:
        return describe(
            exc,
            file,
            base_offset=stmt.offset,
            lock_timeout_ms=self.settings.lock_timeout_ms,
            statement_timeout_ms=self.settings.statement_timeout_ms,
        )

    def _set_timeouts(self, conn: psycopg.Connection) -> None:
        """Session-wide on the dedicated migration connection, so every file gets them."""
        conn.execute(
            "SELECT set_config('lock_timeout', %s, false),"
            " set_config('statement_timeout', %s, false)",
            (f"{self.settings.lock_timeout_ms}ms", f"{self.settings.statement_timeout_ms}ms"),
        )


def _ms_since(start: float) -> int:
    return round((time.monotonic() - start) * 1000)


def _invalid_indexes(conn: psycopg.Connection) -> set[str]:
    cur = conn.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid")
    return {row[0] for row in cur}
