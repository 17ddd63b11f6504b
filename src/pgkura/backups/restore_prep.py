"""The server side of a restore, before psql runs: the server answering, the target database
there (or created with --create), and what it holds kept recoverable (a safety copy on the
same server, or a safety backup file where a copy cannot be made)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pgkura.backups import safety_copies
from pgkura.backups.store import SAFETY, Backup
from pgkura.backups.take import take_backup
from pgkura.config.settings import Settings
from pgkura.connect.databases import create_database, database_exists
from pgkura.engines.readiness import ready
from pgkura.errors import RestoreError
from pgkura.progress import QUIET, Reporter

Log = Callable[[str], None]


def prepare(
    settings: Settings,
    path: Path,
    name: str,
    *,
    create: bool,
    safety_backup: bool,
    log: Log,
    progress: Reporter = QUIET,
) -> tuple[int, Backup | None, str | None]:
    """(server version, safety backup file, safety copy database); RestoreError when `name`
    does not exist and `create` is off."""

    server = ready(settings, settings.target.for_database("postgres"))
    safety = copy = None
    if database_exists(settings, name):
        if safety_backup:
            why = f"before restoring {path.name}"
            # CREATE DATABASE … TEMPLATE reports nothing while it copies: the time ticks
            with progress.meter(f"safety copy of {name}"):
                copy = safety_copies.take(settings, name, why, log)
            if copy is None:
                safety = take_backup(settings, dbname=name, reason=why, purpose=SAFETY, log=log,
                                     progress=progress)  # fmt: skip
                log(f"safety backup of the current {name}: {safety.path}")
            else:
                log(f"safety copy of the current {name}: database {copy}")
                for old in safety_copies.prune(settings, name, settings.backup_retention):
                    log(f"retention: dropped the safety copy {old}")
    elif create:
        create_database(settings, name)
        log(f"created database {name}")
    else:
        raise RestoreError(f"database {name} does not exist; pass --create to create it")
    return server, safety, copy
