"""The migration tasks as operations: flags in, one result out, policy in one place.

Policy that is more than "run the engine" lives here: a backup before migrating (the default in
production), refreshing `db/schema.sql` after migrating in development, the confirmation a
rollback needs, and what `status --check` calls out of sync.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pgkura import validation as v
from pgkura.config.settings import Settings
from pgkura.errors import PendingMigrationsError, PgkuraError
from pgkura.migrations.lock import require_direct
from pgkura.migrations.plan import StatusEntry
from pgkura.migrations.runner import Migrator, Step
from pgkura.progress import QUIET, Reporter
from pgkura.replication.roles import require_primary

if TYPE_CHECKING:
    from pgkura.backups.consent import Consent
    from pgkura.backups.store import Backup

Log = Callable[[str], None]
IN_SYNC = ("applied", "baseline")


@dataclass(frozen=True)
class MigrateOptions:
    to: int | None = None
    dry_run: bool = False
    allow_missing: bool = False
    allow_out_of_order: bool = False
    backup: bool | None = None  # None: the environment's default (on in production)
    refresh_schema: bool = True

    @classmethod
    def from_flags(
        cls,
        *,
        to: str | None = None,
        dry_run: bool = False,
        allow_missing: bool = False,
        allow_out_of_order: bool = False,
        backup: bool = False,
        no_backup: bool = False,
        no_schema: bool = False,
    ) -> MigrateOptions:
        if backup and no_backup:
            raise PgkuraError("choose one of --backup and --no-backup")
        return cls(
            to=v.VERSION.flag(to, "--to"),
            dry_run=dry_run,
            allow_missing=allow_missing,
            allow_out_of_order=allow_out_of_order,
            backup=True if backup else (False if no_backup else None),
            refresh_schema=not no_schema,
        )


@dataclass
class MigrateOutcome:
    steps: list[Step] = field(default_factory=list)
    backup: Backup | None = None
    schema_written: Path | None = None
    schema_seconds: float = 0.0  # how long the refresh took (a scratch build: seconds)
    schema_problem: str | None = None


def _quiet(_: str) -> None:
    return None


def migrate(
    settings: Settings,
    options: MigrateOptions,
    log: Log,
    *,
    announce: Callable[[Backup], None] | None = None,
    progress: Log = lambda _: None,
    reporter: Reporter = QUIET,
) -> MigrateOutcome:
    """Apply pending migrations, with the backup before and the snapshot after as configured.
    `announce` hears of that backup once it is taken; `progress` of each file as it commits
    (and of the backup's off-site copy); `reporter` shows a long-running step's time."""
    if not options.dry_run:  # even with nothing pending: the person learns where they are
        require_primary(settings, settings.target, "migrations")
    migrator = Migrator(settings, log, progress=progress, reporter=reporter)
    outcome = MigrateOutcome()
    wanted = settings.is_production if options.backup is None else options.backup
    plan = None
    if wanted and not options.dry_run:
        plan = migrator.plan()  # read once: migrate() below starts from it
        if plan.pending:
            # only when a backup may be taken: a heavy import
            from pgkura.backups.safety_net import backup_before

            require_direct(settings.target)  # refused before a backup that would be for nothing
            outcome.backup = backup_before(settings, "before migrating", log=log,
                                           progress=reporter, announce=announce,
                                           report=progress)  # fmt: skip
    outcome.steps = migrator.migrate(
        to=options.to,
        dry_run=options.dry_run,
        allow_missing=options.allow_missing,
        allow_out_of_order=options.allow_out_of_order,
        plan=plan,
    )
    local_dev = not settings.is_production and settings.target.is_container
    if outcome.steps and not options.dry_run and local_dev and options.refresh_schema:
        # reported, not raised: the migrations themselves went through
        from pgkura.migrations.schema_build import build_snapshot

        start = time.monotonic()
        try:
            # quiet: its steps (a scratch database, init.sql, every migration again) would read
            # as the migrations running twice; the caller shows one line with its time
            settings.schema_file.write_text(build_snapshot(settings, _quiet, warn=log))
            outcome.schema_written = settings.schema_file
            outcome.schema_seconds = time.monotonic() - start
        except PgkuraError as exc:
            outcome.schema_problem = str(exc)
    return outcome


@dataclass(frozen=True)
class RollbackOptions:
    steps: int | None = None
    to: int | None = None
    dry_run: bool = False

    @classmethod
    def from_flags(
        cls, *, steps: str | None = None, to: str | None = None, dry_run: bool = False
    ) -> RollbackOptions:
        options = cls(v.STEPS.flag(steps, "--steps"), v.VERSION.flag(to, "--to"), dry_run)
        if options.steps is not None and options.to is not None:
            raise PgkuraError("choose one of --steps and --to")
        return options


def rollback(
    settings: Settings,
    options: RollbackOptions,
    consent: Consent,
    log: Log,
    *,
    progress: Log = lambda _: None,
) -> list[Step]:
    """Undo applied migrations with their down files, after the person confirmed exactly which:
    the steps rolled back (with a dry run, those that would be; [] when nothing is applied).
    What was confirmed is what runs: the versions are compared again under the runner lock."""
    migrator = Migrator(settings, log, progress=progress)
    chosen = migrator.rollback(steps=options.steps, to=options.to, dry_run=True)
    if not chosen or options.dry_run:
        return chosen
    names = ", ".join(s.migration.label for s in chosen)
    consent.require(settings, f"roll back {names} on {settings.target.redacted()}")
    return migrator.rollback(steps=options.steps, to=options.to,
                             expect=[s.migration.version for s in chosen])  # fmt: skip


def status(settings: Settings) -> list[StatusEntry]:
    """Every migration's state."""
    return Migrator(settings).plan().entries()


def require_in_sync(entries: list[StatusEntry]) -> None:
    """What `status --check` gates on: PendingMigrationsError (exit 3) unless every file is
    applied (or baselined), and nothing applied has changed or lost its file."""
    behind = [e for e in entries if e.state not in IN_SYNC]
    if behind:
        raise PendingMigrationsError(
            f"migrations are not in sync with the database: {len(behind)} "
            f"{'is' if len(behind) == 1 else 'are'} not applied as committed"
        )
