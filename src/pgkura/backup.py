"""`db.backup`: pg_dump streamed through parallel gzip into a file that is complete or absent.

The dump goes to a temporary name in the target directory, created readable by the owner
only; it becomes `<db>_YYYYMMDD_HHMMSS.sql.gz` only after pg_dump exited 0, its completion
trailer went by, and the data is fsynced. A JSON manifest beside it records what is needed to
verify the file later without the server.
"""

from __future__ import annotations

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
from typing import Any

from pgkura.config import Settings
from pgkura.connection import wait_until_ready
from pgkura.dump_stream import TRAILERS
from pgkura.errors import PgkuraError
from pgkura.gzip_blocks import BLOCK, ParallelGzipWriter
from pgkura.pg_tools import choose

MANIFEST_FORMAT = "pgkura-backup/1"
MODES = {
    "full": ("pg_dump", ["--clean", "--if-exists", "--no-owner", "--no-acl"]),
    "schema": ("pg_dump", ["--schema-only", "--clean", "--if-exists", "--no-owner", "--no-acl"]),
    "data": ("pg_dump", ["--data-only", "--no-owner", "--no-acl"]),
    "cluster": ("pg_dumpall", ["--clean", "--if-exists"]),
}
_TAIL = 4096

Log = Callable[[str], None]
Progress = Callable[[int, int, float], None]  # plaintext bytes, compressed bytes, seconds


class BackupError(PgkuraError):
    """The backup failed; no file that looks like a backup was left behind."""


@dataclass(frozen=True)
class Backup:
    path: Path
    manifest: dict[str, Any]

    @property
    def manifest_path(self) -> Path:
        return manifest_path(self.path)


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def series(dbname: str, mode: str) -> str:
    """The file-name stem shared by one database's backups of one kind."""
    return f"{dbname}_cluster" if mode == "cluster" else dbname


def own_backups(directory: Path, dbname: str, mode: str = "full") -> list[Path]:
    """This tool's backups of `dbname`, oldest first: name pattern *and* pgkura manifest."""
    pattern = re.compile(rf"^{re.escape(series(dbname, mode))}_\d{{8}}_\d{{6}}(_\d+)?\.sql\.gz$")
    found = []
    for path in sorted(directory.glob("*.sql.gz")) if directory.is_dir() else []:
        if pattern.match(path.name) and read_manifest(path).get("format") == MANIFEST_FORMAT:
            found.append(path)
    return found


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(manifest_path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def take_backup(
    settings: Settings,
    *,
    output: Path | None = None,
    mode: str = "full",
    level: int | None = None,
    keep: int | None = None,
    dbname: str | None = None,
    reason: str = "",
    log: Log,
    progress: Progress | None = None,
) -> Backup:
    """Dump the target database (or the cluster) into a verified, owner-only .sql.gz."""
    program, options = MODES[mode]
    target = settings.target if dbname is None else settings.target.for_database(dbname)
    server = wait_until_ready(target, settings.connect_wait_ms)
    tool = choose(settings, program, server // 10000, warn=log, dbname=target.dbname)
    final = _final_path(settings, output, series(target.dbname, mode))
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
    log(f"backing up {target.redacted()} with {tool.source} → {final}")
    started = time.monotonic()
    sha256, size, plain = _dump_to(final, tool.command(*options), tool.environment(),
                                   level or settings.backup_level, progress, program)  # fmt: skip
    manifest = {
        "format": MANIFEST_FORMAT,
        "file": final.name,
        "database": target.dbname,
        "mode": mode,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "server_version": f"{server // 10000}.{server % 10000}",
        "dump_tool": f"{program} {tool.version}",
        "source": tool.source,
        "compression": f"gzip level {level or settings.backup_level}",
        "size": size,
        "plain_size": plain,
        "sha256": sha256,
        "duration_s": round(time.monotonic() - started, 3),
        "reason": reason,
    }
    _write_private(manifest_path(final), json.dumps(manifest, indent=2).encode() + b"\n")
    backup = Backup(final, manifest)
    retain = settings.backup_keep if keep is None else keep
    if retain:
        for old in prune(final.parent, target.dbname, mode, retain):
            log(f"retention: removed {old.name}")
    return backup


def _final_path(settings: Settings, output: Path | None, stem: str) -> Path:
    """An explicit file, or a fresh timestamped name in the backup (or given) directory."""
    directory = settings.backup_dir
    if output is not None:
        output = output if output.is_absolute() else Path.cwd() / output
        if not (output.is_dir() or str(output).endswith(os.sep)):
            return output
        directory = output
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    path, n = directory / f"{stem}_{stamp}.sql.gz", 1
    while path.exists():  # two backups in one second
        n += 1
        path = directory / f"{stem}_{stamp}_{n}.sql.gz"
    return path


def _dump_to(
    final: Path,
    argv: list[str],
    env: dict[str, str],
    level: int,
    progress: Progress | None,
    program: str,
) -> tuple[str, int, int]:
    """Stream `argv`'s output into `final` atomically; (sha256, size, plaintext size)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
    tmp = Path(tmp_name)  # mkstemp creates it 0600: readable by the owner only
    with tempfile.TemporaryFile() as errors, os.fdopen(fd, "wb") as out:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, env=env)
        writer = ParallelGzipWriter(out, level)
        try:
            tail = _pump(proc, writer, progress)
            code = proc.wait()
            errors.seek(0)
            stderr = errors.read().decode(errors="replace").strip()
            if code != 0:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                raise BackupError(f"{program} {how}: {stderr or 'no message'}")
            if not any(trailer in tail for trailer in TRAILERS):
                raise BackupError(
                    f"{program} exited 0 but its output lacks the completion trailer: the dump "
                    f"is incomplete. {stderr}".strip()
                )
            writer.close()
            out.flush()
            os.fsync(out.fileno())
            os.link(tmp, final)  # never overwrites an existing backup
            _fsync_dir(final.parent)
            return writer.sha256, writer.size, writer.plain_size
        except BaseException:
            writer.abort()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
        finally:
            tmp.unlink(missing_ok=True)


def _pump(
    proc: subprocess.Popen[bytes], writer: ParallelGzipWriter, progress: Progress | None
) -> bytes:
    """Copy the dump into the writer; the last bytes of plaintext, for the trailer check."""
    assert proc.stdout is not None  # noqa: S101 - Popen(stdout=PIPE) guarantees it
    started = last = time.monotonic()
    tail = b""
    while block := proc.stdout.read(BLOCK):
        writer.write(block)
        tail = (tail + block)[-_TAIL:]
        now = time.monotonic()
        if progress and now - last >= 0.5:
            progress(writer.plain_size, writer.size, now - started)
            last = now
    return tail


def _check_writable(directory: Path) -> None:
    """Fail before dumping, not after: create and remove a probe file."""
    with tempfile.NamedTemporaryFile(prefix=".pgkura-probe-", dir=directory):
        pass


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable by the owner only."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune(directory: Path, dbname: str, mode: str, keep: int) -> list[Path]:
    """Delete this tool's oldest backups of `dbname` beyond the newest `keep`; what went."""
    removed = []
    for path in own_backups(directory, dbname, mode)[:-keep]:
        path.unlink()
        manifest_path(path).unlink(missing_ok=True)
        removed.append(path)
    return removed
