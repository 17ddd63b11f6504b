"""The safety net: what pgkura keeps before it deletes or replaces data, and how it is undone.

Every backup taken before destroying something (a migration, `down -v`, `reset`, a restore that
cannot copy the database) is `backup_before`: the same path as `db.backup`, so it is verified,
kept by the retention policy and copied off-site like any other. A restore first tries a safety
copy on the same server (safety_copies: seconds instead of a dump); `latest --safety` puts the
newest net back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pgkura.backups.consent import Consent
from pgkura.backups.store import ORDINARY, SAFETY, Backup, BackupStore
from pgkura.backups.take import take_backup
from pgkura.config.settings import Settings
from pgkura.engines.chosen import engine_for
from pgkura.errors import ConfirmationRequired
from pgkura.progress import QUIET, Reporter

if TYPE_CHECKING:  # safety copies are server work (psycopg): imported where they are used
    from pgkura.backups.safety_copies import SafetyCopy

Log = Callable[[str], None]
Announce = Callable[[Backup], None]


def backup_before(
    settings: Settings,
    why: str,
    *,
    dbname: str | None = None,
    purpose: str = ORDINARY,
    log: Log,
    progress: Reporter = QUIET,
    announce: Announce | None = None,
    report: Log | None = None,
) -> Backup:
    """The backup taken before `why` destroys or replaces data, off-site too when configured;
    an off-site failure stops `why` (the local file is kept), as it fails `db.backup`."""
    return take_backup(settings, dbname=dbname, reason=why, purpose=purpose, log=log,
                       progress=progress, announce=announce, report=report)  # fmt: skip


def before_deleting_volume(
    settings: Settings,
    action: str,
    consent: Consent,
    *,
    backup: bool,
    log: Log,
    progress: Reporter = QUIET,
    announce: Announce | None = None,
    report: Log | None = None,
) -> Backup | None:
    """Production needs --force; everyone confirms; a running database is backed up first, so
    the data stays recoverable (`invoke db.restore latest`). The backup, if one was taken."""
    if settings.is_production and not consent.force:
        raise ConfirmationRequired(f"refusing to {action} in production without --force")
    engine = engine_for(settings)
    consent.require(settings, f"{action} of {engine.label}: ALL DATA IS LOST")
    if backup and engine.running:
        return backup_before(settings, action, log=log, progress=progress, announce=announce,
                             report=report)  # fmt: skip
    return None


def before_replacing(
    settings: Settings, name: str, why: str, *, log: Log, progress: Reporter = QUIET
) -> tuple[Backup | None, str | None]:
    """Keep database `name` recoverable before a restore replaces it: (safety backup file,
    safety copy database), one of them set. A copy on the same server where one can be made,
    else a backup file."""
    from pgkura.backups import safety_copies

    # CREATE DATABASE … TEMPLATE reports nothing while it copies: the time ticks
    with progress.meter(f"safety copy of {name}"):
        copy = safety_copies.take(settings, name, why, log)
    if copy is None:
        safety = backup_before(settings, why, dbname=name, purpose=SAFETY, log=log,
                               progress=progress)  # fmt: skip
        log(f"safety backup of the current {name}: {safety.path}")
        return safety, None
    log(f"safety copy of the current {name}: database {copy}")
    for old in safety_copies.prune(settings, name, settings.backup_retention):
        log(f"retention: dropped the safety copy {old}")
    return None, copy


def newer_safety_copy(settings: Settings, dbname: str) -> SafetyCopy | None:
    """The newest safety copy (a database) of `dbname` when it is newer than the newest safety
    backup file: what undoing the last restore means."""
    from pgkura.backups.safety_copies import copies

    found = copies(settings, dbname)
    if not found:
        return None
    files = BackupStore(settings.backup_dir).own(dbname, purpose=SAFETY)
    newest_file = files[-1].taken_at if files else None
    if newest_file is not None and newest_file > found[-1].taken_at:
        return None
    return found[-1]


def put_back_safety_copy(
    settings: Settings, spec: str, consent: Consent, *, database: str = ""
) -> tuple[SafetyCopy, str] | None:
    """Undo the last restore by swapping names, when `spec` is `latest` and the newest safety
    net of the database is a copy: (that copy, the name the replaced database now has). None
    when the net is a file (restore it as any backup)."""
    name = database or settings.target.dbname
    copy = newer_safety_copy(settings, name) if spec == "latest" else None
    if copy is None:
        return None
    consent.require(settings, f"put database {copy.name} back as {name} (undoing the last restore)")
    from pgkura.backups.safety_copies import swap_back

    return copy, swap_back(settings, name, copy)
