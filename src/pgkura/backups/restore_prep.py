"""The server side of a restore, before psql runs: the server answering, the target database
there (or created with --create), and what it holds kept recoverable (a safety copy on the
same server, or a safety backup file where a copy cannot be made)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pgkura.backups.safety_net import before_replacing
from pgkura.backups.store import Backup
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
    safety: Backup | None = None
    copy: str | None = None
    if database_exists(settings, name):
        if safety_backup:
            safety, copy = before_replacing(
                settings, name, f"before restoring {path.name}", log=log, progress=progress
            )
    elif create:
        create_database(settings, name)
        log(f"created database {name}")
    else:
        raise RestoreError(f"database {name} does not exist; pass --create to create it")
    return server, safety, copy
