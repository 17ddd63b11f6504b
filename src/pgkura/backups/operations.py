"""Operations that replace or delete data: restore, and deleting the volume (down -v, reset).

Each confirms first (or needs --yes), is refused in production without --force where it deletes
a volume, and keeps what it replaces recoverable: a backup of a running database is taken before
its volume goes, and a safety copy before a restore replaces it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pgkura.backups.restore import Restored, restore
from pgkura.backups.store import SAFETY, Backup, BackupStore
from pgkura.backups.take import take_backup
from pgkura.config.settings import Settings
from pgkura.confirm import confirm
from pgkura.engines.chosen import engine_for
from pgkura.errors import ConfirmationRequired
from pgkura.progress import QUIET, Reporter

if TYPE_CHECKING:  # safety copies are server work (psycopg): imported where they are used
    from pgkura.backups.safety_copies import SafetyCopy

Log = Callable[[str], None]
Ask = Callable[[str], str]


@dataclass(frozen=True)
class Consent:
    """How a destructive step was agreed to: --yes, --force, and whether a person is there."""

    yes: bool = False
    force: bool = False
    interactive: bool = False
    ask: Ask = input

    def require(self, settings: Settings, action: str) -> None:
        confirm(action, yes=self.yes, production=settings.is_production,
                dbname=settings.target.dbname, interactive=self.interactive,
                ask=self.ask)  # fmt: skip


def before_deleting_volume(
    settings: Settings,
    action: str,
    consent: Consent,
    *,
    backup: bool,
    log: Log,
    take: Callable[..., Backup] = take_backup,
) -> Backup | None:
    """Production needs --force; everyone confirms; a running database is backed up first, so
    the data stays recoverable (`invoke db.restore latest`). The backup, if one was taken."""
    if settings.is_production and not consent.force:
        raise ConfirmationRequired(f"refusing to {action} in production without --force")
    engine = engine_for(settings)
    consent.require(settings, f"{action} of {engine.label}: ALL DATA IS LOST")
    if backup and engine.running:
        return take(settings, reason=action, log=log)
    return None


def resolve_backup(settings: Settings, spec: str, dbname: str, *, safety: bool = False) -> Path:
    """FILE or `latest` (`safety`: the newest copy a restore took) for `dbname`."""
    return BackupStore(settings.backup_dir).resolve(spec, dbname, safety=safety)


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


def restore_backup(
    settings: Settings,
    spec: str,
    consent: Consent,
    *,
    database: str = "",
    create: bool = False,
    safety_backup: bool = True,
    from_safety: bool = False,
    log: Log,
    progress: Reporter = QUIET,
) -> tuple[Path, Restored]:
    """Resolve `spec`, confirm, restore (all or nothing, after a safety copy)."""
    name = database or settings.target.dbname
    path = resolve_backup(settings, spec, name, safety=from_safety)
    consent.require(settings, f"replace the contents of {name} with {path.name}")
    done = restore(settings, path, dbname=database or None, create=create,
                   safety_backup=safety_backup, log=log, progress=progress)  # fmt: skip
    return path, done
