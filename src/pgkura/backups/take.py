"""Every backup pgkura takes: pg_dump streamed through parallel gzip into a file that is complete
or absent, then its off-site copy.

The dump goes to a temporary name in the target directory, created readable by the owner
only; it becomes `<db>_YYYYMMDD_HHMMSS.sql.gz` only after pg_dump exited 0, its completion
trailer went by, and the data is fsynced. A JSON manifest beside it records what is needed to
verify the file later without the server.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from pgkura import validation as v
from pgkura.backups.integrity import ends_complete
from pgkura.backups.store import (
    MANIFEST_FORMAT,
    ORDINARY,
    Backup,
    BackupStore,
    manifest_path,
)
from pgkura.compression.gzip_blocks import BLOCK, ParallelGzipWriter
from pgkura.config.settings import Settings
from pgkura.dsn import Target
from pgkura.engines.pg_tools import Tool, choose, container_tool, could_not_connect
from pgkura.errors import ConfigError, PgkuraError
from pgkura.file_lock import locked
from pgkura.private_files import fsync_dir, write_private
from pgkura.progress import QUIET, Meter, Reporter
from pgkura.replication.roles import require_primary
from pgkura.retention import Policy
from pgkura.units import size

MODES = {
    "full": ("pg_dump", ["--clean", "--if-exists", "--no-owner", "--no-acl"]),
    "schema": ("pg_dump", ["--schema-only", "--clean", "--if-exists", "--no-owner", "--no-acl"]),
    "data": ("pg_dump", ["--data-only", "--no-owner", "--no-acl"]),
    "cluster": ("pg_dumpall", ["--clean", "--if-exists"]),
}
_TAIL = 4096
BACKUP_LOCK = ".pgkura-backup.lock"
# pg_dump's header; the container's pg_dump is the server's own installation
_DUMPED_FROM = re.compile(rb"^-- Dumped from database version (\d+)(?:\.(\d+))?", re.MULTILINE)
_DUMPED_BY = re.compile(rb"^-- Dumped by pg_dump version (\d+(?:\.\d+)?)", re.MULTILINE)

Log = Callable[[str], None]


class Compressor(Protocol):
    """What a backup writes through (gzip_blocks.ParallelGzipWriter, zstd_stream.ZstdWriter)."""

    @property
    def sha256(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def plain_size(self) -> int: ...
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


class BackupError(PgkuraError):
    """The backup failed; no file that looks like a backup was left behind."""


class _NotConnected(BackupError):
    """The dump could not connect (e.g. the server in the container is still starting)."""


@dataclass(frozen=True)
class Dumped:
    sha256: str
    size: int
    plain_size: int
    head: bytes  # the first bytes of plaintext: pg_dump's header


@dataclass(frozen=True)
class BackupOptions:
    """What a person asked of `db.backup`, checked with the same rules as the settings."""

    mode: str = "full"
    level: int | None = None
    keep: int | None = None
    output: Path | None = None
    compression: str | None = None

    @classmethod
    def from_flags(
        cls,
        *,
        output: str = "",
        keep: str | None = None,
        level: str | None = None,
        schema_only: bool = False,
        data_only: bool = False,
        cluster: bool = False,
        compression: str | None = None,
    ) -> BackupOptions:
        chosen = [m for m, on in (("schema", schema_only), ("data", data_only),
                                  ("cluster", cluster)) if on]  # fmt: skip
        if len(chosen) > 1:
            raise ConfigError("choose one of --schema-only, --data-only, --cluster")
        return cls(
            mode=chosen[0] if chosen else "full",
            level=v.GZIP_LEVEL.flag(level, "--level"),
            keep=v.KEEP.flag(keep, "--keep"),
            output=v.FILE_PATH.flag(output, "--output") if output else None,
            compression=v.COMPRESSION.flag(compression, "--compression"),
        )


@dataclass(frozen=True)
class Prepared:
    """A dump its caller set up on a server that is not the project's (db.upgrade's pg_dumpall
    on its helper server of the old cluster), with what is known of it beforehand. The tool's
    command is the whole dump: the mode adds no options."""

    tool: Tool
    what: str  # what is backed up, for the log line
    server_version: str
    estimate: int | None  # bytes of dump text, roughly, for progress
    stop: Callable[[], None]  # ends the dump when it is interrupted


def take_backup(
    settings: Settings,
    *,
    output: Path | None = None,
    mode: str = "full",
    level: int | None = None,
    keep: int | None = None,
    compression: str | None = None,
    dbname: str | None = None,
    reason: str = "",
    purpose: str = ORDINARY,
    offsite: bool = True,
    log: Log,
    progress: Reporter = QUIET,
    announce: Callable[[Backup], None] | None = None,
    report: Log | None = None,
    prepared: Prepared | None = None,
) -> Backup:
    """Dump the target database (or the cluster) into a verified, owner-only .sql.gz, then
    copy it off-site when PGKURA_OFFSITE_URL is set (and `offsite`): every backup pgkura takes,
    whatever it is for, comes this way. `announce` hears of the local backup once it is
    complete, before the copy; `report` (default `log`) what the copy did. `prepared` dumps
    another server instead (named `dbname`)."""
    for name, value, rule in (("level", level, v.GZIP_LEVEL), ("keep", keep, v.KEEP)):
        if value is not None:  # callers other than the tasks get the same checks
            rule.check(str(value), name=name, where="the caller")
    program, options = MODES[mode]
    if prepared is not None:
        options = []  # the caller's command is the whole dump
    target = settings.target if dbname is None else settings.target.for_database(dbname)
    require_primary(settings, target, "a backup")
    server: int | None = None
    # The project's running container: its own pg_dump at once, no connection from here (and
    # no psycopg import); the versions come from the dump's header. Otherwise, or when that
    # dump finds the server still starting, wait for the server as every task does.
    if prepared is not None:
        tool: Tool | None = prepared.tool
    else:
        tool = container_tool(settings, program, target) if _dumps_one(target, program) else None
    if tool is None:
        server, tool = _wait_and_choose(settings, target, program, log)
    compression = compression or settings.backup_compression
    final = _final_path(settings, output, target.dbname, mode, compression)
    if final.exists():
        raise BackupError(f"{final} already exists; pgkura never overwrites a backup")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _check_writable(final.parent)
    except OSError as exc:
        raise BackupError(
            f"cannot write backups to {final.parent}: {exc.strerror or exc}.\n→ choose another "
            "directory with --output or PGKURA_BACKUP_DIR"
        ) from None
    waiting = "waiting for another backup into the same directory to finish"
    # one backup at a time per directory (a scheduled one and one typed by hand): two dumps
    # never compete for the server and the disk, and names stay distinct
    with locked(final.parent / BACKUP_LOCK, wait=True, on_wait=lambda: log(waiting)):
        if final.exists():  # taken while we waited: a fresh name (a named file stays taken)
            final = _final_path(settings, output, target.dbname, mode, compression)
            if final.exists():
                raise BackupError(f"{final} already exists; pgkura never overwrites a backup")
        what = prepared.what if prepared else f"{target.redacted()} with {tool.source}"
        log(f"backing up {what} → {final}")
        started = time.monotonic()
        level = settings.backup_level if level is None else level
        writer = writer_for(compression, level)
        # the dump's text against the database's size on disk: an estimate, shown with ~
        if prepared is not None:
            estimate = prepared.estimate
        else:
            estimate = None if mode == "schema" else _database_size(settings, target, program,
                                                                    server)  # fmt: skip

        def dump(tool: Tool, meter: Meter) -> Dumped:
            stop = prepared.stop if prepared else lambda: _stop(target, tool, log)
            return dump_into(final, tool.command(*options), tool.environment(), writer, meter,
                            program, stop)  # fmt: skip

        with progress.meter("backup", estimate, approx=True) as meter:
            try:
                dumped = dump(tool, meter)
            except _NotConnected:
                if server is not None or prepared is not None:
                    raise
                server, tool = _wait_and_choose(settings, target, program, log)
                dumped = dump(tool, meter)
        if prepared is not None:
            server_version, tool_version = prepared.server_version, tool.version
        else:
            server_version, tool_version = _versions(server, tool, dumped.head)
        backup = record(final, dumped, database=target.dbname, mode=mode,
                        server_version=server_version, dump_tool=f"{program} {tool_version}",
                        source=tool.source, compression=f"{compression} level {level}",
                        duration_s=round(time.monotonic() - started, 3), reason=reason,
                        purpose=purpose, database_size=estimate)  # fmt: skip
        for old in BackupStore(final.parent).prune(target.dbname, mode, retention(settings, keep)):
            log(f"retention: removed {old.name}")
    if announce is not None:
        announce(backup)
    if offsite and settings.offsite is not None:
        from pgkura.backups.offsite import ship  # boto3 only when a location is configured

        ship(settings.offsite, backup, retention(settings, keep), report or log, progress)
    return backup


def record(final: Path, dumped: Dumped, **fields: object) -> Backup:
    """Write the manifest beside a finished dump (owner-only); the Backup."""
    manifest = {
        "format": MANIFEST_FORMAT,
        "file": final.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **fields,
        "size": dumped.size,
        "plain_size": dumped.plain_size,
        "sha256": dumped.sha256,
    }
    write_private(manifest_path(final), json.dumps(manifest, indent=2) + "\n")
    return Backup(final, manifest)


def retention(settings: Settings, keep: int | None = None) -> Policy:
    """The retention policy, with --keep N as its newest-N tier."""
    policy = settings.backup_retention
    return policy if keep is None else dataclasses.replace(policy, last=keep)


def _dumps_one(target: Target, program: str) -> bool:
    """pg_dump of the project's container: the one case that needs no connection from here
    (pg_dumpall's header has no versions to read)."""
    return target.is_container and program == "pg_dump"


def _database_size(
    settings: Settings, target: Target, program: str, server: int | None
) -> int | None:
    """pg_database_size of what is dumped, asked once before the dump the way the dump
    connects (the container's own psql, or a connection from here); None if it cannot be
    asked: the dump then reports its own problem, and progress shows no percentage."""
    query = (
        "SELECT sum(pg_database_size(oid)) FROM pg_database"
        if program == "pg_dumpall"
        else "SELECT pg_database_size(current_database())"
    )
    if server is None:
        psql = container_tool(settings, "psql", target)
        if psql is None:
            return None
        found = subprocess.run(psql.command("-XAtc", query), capture_output=True, text=True,
                               env=psql.environment(), check=False).stdout.strip()  # fmt: skip
        return int(found) if found.isdigit() else None
    from pgkura.connect.connection import (
        connect,  # psycopg: imported already to wait for the server
    )

    try:
        with connect(target, purpose="backup size") as conn:
            row = conn.execute(query).fetchone()
    except PgkuraError:
        return None
    return int(row[0]) if row and row[0] is not None else None


def _wait_and_choose(
    settings: Settings, target: Target, program: str, log: Log
) -> tuple[int, Tool]:
    from pgkura.engines.readiness import ready  # connects: imports psycopg

    server = ready(settings, target)
    return server, choose(settings, program, server, warn=log, dbname=target.dbname)


def _versions(server: int | None, tool: Tool, head: bytes) -> tuple[str, str]:
    """The server's and the dump tool's versions: known, or read from pg_dump's header."""
    if server is None:
        return header_versions(head)
    return f"{server // 10000}.{server % 10000}", tool.version


def header_versions(head: bytes) -> tuple[str, str]:
    """(server, pg_dump) versions as a plain dump's header states them, "unknown" if absent."""
    found = _DUMPED_FROM.search(head)
    by = _DUMPED_BY.search(head)
    server = f"{int(found[1])}.{int(found[2] or 0)}" if found else "unknown"
    return server, by[1].decode() if by else "unknown"


def writer_for(compression: str, level: int) -> Callable[[BinaryIO], Compressor]:
    if compression == "zstd":
        from pgkura.compression.zstd_stream import ZstdWriter  # imported only for zstd backups

        return lambda out: ZstdWriter(out, level)
    return lambda out: ParallelGzipWriter(out, level)


def _final_path(
    settings: Settings, output: Path | None, dbname: str, mode: str, compression: str
) -> Path:
    """An explicit file, or a fresh timestamped name in the backup (or given) directory."""
    directory = settings.backup_dir
    if output is not None:
        output = output if output.is_absolute() else Path.cwd() / output
        if not (output.is_dir() or str(output).endswith(os.sep)):
            return output
        directory = output
    return BackupStore(directory).new_path(dbname, mode, compression=compression)


def dump_into(
    final: Path,
    argv: list[str],
    env: dict[str, str],
    make_writer: Callable[[BinaryIO], Compressor],
    meter: Meter,
    program: str,
    on_abort: Callable[[], None],
) -> Dumped:
    """Stream `argv`'s output into `final` atomically.
    On any failure or interruption the partial file goes and `on_abort` stops the dump."""
    fd, tmp_name = tempfile.mkstemp(prefix=".pgkura-", suffix=".partial", dir=final.parent)
    tmp = Path(tmp_name)  # mkstemp creates it 0600: readable by the owner only
    with tempfile.TemporaryFile() as errors, os.fdopen(fd, "wb") as out:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, env=env)
        writer = make_writer(out)
        try:
            head, tail = _pump(proc, writer, meter)
            code = proc.wait()
            errors.seek(0)
            stderr = errors.read().decode(errors="replace").strip()
            if code != 0:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                never = writer.plain_size == 0 and could_not_connect(stderr)
                failed = _NotConnected if never else BackupError
                raise failed(f"{program} {how}: {stderr or 'no message'}")
            if not ends_complete(tail):
                raise BackupError(
                    f"{program} exited 0 but its output lacks the completion trailer: the dump "
                    f"is incomplete. {stderr}".strip()
                )
            writer.close()
            out.flush()
            os.fsync(out.fileno())
            os.link(tmp, final)  # never overwrites an existing backup
            fsync_dir(final.parent)
            return Dumped(writer.sha256, writer.size, writer.plain_size, head)
        except BaseException as exc:
            writer.abort()
            alive = proc.poll() is None
            if alive:
                proc.kill()
                proc.wait()
            # Ctrl-C reaches the `docker exec` client too, which may be gone by now while
            # pg_dump goes on inside the container: its server session is ended either way
            if alive or isinstance(exc, KeyboardInterrupt):
                on_abort()
            if isinstance(exc, OSError) and exc.errno in _FULL_OR_BROKEN:
                raise BackupError(
                    f"writing {final} failed: {os.strerror(exc.errno or 0)}; the partial file was "
                    f"removed, so no backup was kept → free space in {final.parent}, or write "
                    "elsewhere (PGKURA_BACKUP_DIR, or --output)"
                ) from None
            raise
        finally:
            tmp.unlink(missing_ok=True)


# the disk is full or will not take the file: the user's to fix, not a traceback's
_FULL_OR_BROKEN = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}


def _stop(target: Target, tool: Tool, log: Log) -> None:
    """End the dump's server session: killing `docker exec` leaves pg_dump running inside."""
    from pgkura.connect.databases import end_sessions  # connects: only when interrupted

    try:
        if end_sessions(target, tool.session):
            log(f"stopped the interrupted {tool.source} dump on the server")
    except PgkuraError as exc:
        log(f"warning: could not stop the interrupted dump on the server: {exc}")


def _pump(proc: subprocess.Popen[bytes], writer: Compressor, meter: Meter) -> tuple[bytes, bytes]:
    """Copy the dump into the writer; the first bytes of plaintext (the header) and the last
    (for the trailer check)."""
    assert proc.stdout is not None  # noqa: S101 - Popen(stdout=PIPE) guarantees it
    head = tail = b""
    while block := proc.stdout.read(BLOCK):
        writer.write(block)
        if len(head) < _TAIL:
            head = (head + block)[:_TAIL]
        tail = (tail + block)[-_TAIL:]
        # the compressed size lags behind while blocks are still being compressed
        meter.update(writer.plain_size, f"{size(writer.size)} compressed" if writer.size else "")
    return head, tail


def _check_writable(directory: Path) -> None:
    """Fail before dumping, not after: create and remove a probe file."""
    with tempfile.NamedTemporaryFile(prefix=".pgkura-probe-", dir=directory):
        pass
