"""The restore operation: resolve which backup, confirm, restore all or nothing.

What it replaces stays recoverable through the safety net (safety_net.py), as does a volume
deleted by `down -v` or `reset`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pgkura.backups.consent import Consent
from pgkura.backups.restore import Restored, restore
from pgkura.backups.store import Backup, BackupStore, read_manifest
from pgkura.config.settings import Settings
from pgkura.progress import QUIET, Reporter

Log = Callable[[str], None]


def resolve_backup(settings: Settings, spec: str, dbname: str, *, safety: bool = False) -> Path:
    """FILE or `latest` (`safety`: the newest copy a restore took) for `dbname`."""
    return BackupStore(settings.backup_dir).resolve(spec, dbname, safety=safety)


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
    backup = Backup(path, read_manifest(path))
    consent.require(settings, f"replace the contents of {name} with {path.name} "
                              f"({backup.summary()})")  # fmt: skip
    done = restore(settings, path, dbname=database or None, create=create,
                   safety_backup=safety_backup, log=log, progress=progress)  # fmt: skip
    return path, done
