"""`db.restore`: stream a backup into the server's own psql, committing only a whole archive.

pgkura sends BEGIN, streams the dump (ON_ERROR_STOP), and sends COMMIT only after the gzip
stream ended cleanly, the dump's trailer went by and the SHA-256 matched the manifest. On any
problem it ends psql's input without COMMIT and the server rolls everything back: one pass
over the file, and a database that is either fully restored or exactly as it was.
"""

from __future__ import annotations

import contextlib
import queue
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pgkura.backups.archive import ArchiveCheck, looks_like_a_dump, stream_archive
from pgkura.backups.dump_stream import Transactions
from pgkura.backups.store import Backup, read_manifest
from pgkura.config.settings import Settings
from pgkura.engines.pg_tools import Tool, choose, container_tool, could_not_connect
from pgkura.errors import RestoreError
from pgkura.progress import QUIET, Reporter

Log = Callable[[str], None]
_PSQL_LINE = re.compile(r"^psql:<stdin>:(\d+):", re.MULTILINE)


class _NotConnected(RestoreError):
    """psql could not connect (the server starting, or no such database): nothing ran."""


@dataclass(frozen=True)
class Restored:
    database: str
    check: ArchiveCheck
    safety_backup: Backup | None
    safety_copy: str | None = None  # a database on the same server holding what was replaced


def restore(
    settings: Settings,
    path: Path,
    *,
    dbname: str | None = None,
    create: bool = False,
    safety_backup: bool = True,
    log: Log,
    progress: Reporter = QUIET,
) -> Restored:
    """Restore `path` into the target database (or `dbname`). Nothing is touched (no safety
    backup either) unless the file starts like a gzip'd SQL dump."""
    if not path.is_file():
        raise RestoreError(f"{path} does not exist")
    problem = looks_like_a_dump(path)
    if problem:
        raise RestoreError(f"{problem}, so nothing was committed and the database is unchanged "
                           "(no safety backup was taken).\n→ choose a pgkura backup "
                           "(`invoke db.backups` lists them)")  # fmt: skip
    if read_manifest(path).get("mode") == "cluster":
        raise RestoreError(
            f"{path.name} is a whole-cluster dump (roles and every database); restore it as a "
            "superuser with psql against the postgres database, not into one database"
        )
    name = dbname or settings.target.dbname
    if settings.target.is_container and not safety_backup and not create:
        # Nothing to do on the server first: the running container's own psql at once, with no
        # connection from here (and no psycopg import). If it cannot connect, the careful path
        # below waits for the server or says what is missing.
        quick = container_tool(settings, "psql", settings.target.for_database(name), stdin=True)
        if quick is not None:
            with contextlib.suppress(_NotConnected):
                done = _restore_with(settings, quick, path, name, log, progress)
                return Restored(name, done, None)
    from pgkura.backups.restore_prep import prepare  # connects: imports psycopg

    server, safety, copy = prepare(settings, path, name, create=create,
                                   safety_backup=safety_backup, log=log,
                                   progress=progress)  # fmt: skip
    tool = choose(settings, "psql", server, stdin=True, warn=log, dbname=name)
    return Restored(name, _restore_with(settings, tool, path, name, log, progress), safety, copy)


def _restore_with(
    settings: Settings, tool: Tool, path: Path, name: str, log: Log, progress: Reporter
) -> ArchiveCheck:
    log(f"restoring {path.name} into {name} with {tool.source}")
    try:
        # -f - (not plain stdin): psql then names the failing line in its errors
        return _stream_into(
            tool.command("-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"),
            tool.environment(),
            path,
            progress,
        )
    except KeyboardInterrupt:
        from pgkura.connect.databases import end_sessions  # connects: only when interrupted

        # psql's input ended without COMMIT; make sure its session is gone, whatever it waits on
        end_sessions(settings.target.for_database("postgres"), tool.session)
        raise


def _stream_into(
    argv: list[str], env: dict[str, str], path: Path, progress: Reporter
) -> ArchiveCheck:
    # the meter closes after the checks below: a failed restore ends without a summary
    with progress.meter("restore", path.stat().st_size) as meter:
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors, env=env
            )
            assert proc.stdin is not None  # noqa: S101 - Popen(stdin=PIPE) guarantees it
            stdin = proc.stdin
            check: ArchiveCheck | None = None
            try:
                stdin.write(b"BEGIN;\n")
                writer = _BackgroundWriter(stdin)
                check = stream_archive(path, writer.put, Transactions.CALLER, meter)
                if writer.finish() and check.ok:
                    stdin.write(b"COMMIT;\n")  # the only COMMIT: the whole archive went through
            except BrokenPipeError:
                pass  # psql stopped on an error; its message says which
            finally:
                with contextlib.suppress(BrokenPipeError):
                    stdin.close()  # without COMMIT, the end of input rolls everything back
                code = proc.wait()
            errors.seek(0)
            stderr = errors.read().decode(errors="replace").strip()
        if check is not None and not check.ok:
            raise RestoreError(
                f"{path.name} is not a whole backup, so nothing was committed and the database is "
                "unchanged:\n" + "\n".join(f"  - {p}" for p in check.problems)
            )
        if code != 0 or check is None:
            failed = _NotConnected if could_not_connect(stderr) else RestoreError
            raise failed(
                f"psql stopped with status {code}; the transaction was rolled back and the "
                f"database is unchanged.\n{_dump_lines(stderr) or 'no message from psql'}"
            )
        return check


class _BackgroundWriter:
    """Feeds psql on its own thread, so decompressing the next block overlaps the pipe write
    (both release the GIL). If psql goes away, the rest is drained and dropped."""

    def __init__(self, stdin: IO[bytes]) -> None:
        self._stdin = stdin
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._broken = False
        self._thread = threading.Thread(target=self._run, name="psql-writer", daemon=True)
        self._thread.start()

    def put(self, data: bytes) -> None:
        if data:
            self._queue.put(data)

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if not self._broken:
                try:
                    self._stdin.write(data)
                except BrokenPipeError:
                    self._broken = True

    def finish(self) -> bool:
        """Wait until everything is written; False if psql stopped reading."""
        self._queue.put(None)
        self._thread.join()
        return not self._broken


def _dump_lines(stderr: str) -> str:
    """psql counts pgkura's BEGIN as line 1: renumber to lines of the dump itself."""
    return _PSQL_LINE.sub(lambda m: f"dump line {int(m.group(1)) - 1}:", stderr)
