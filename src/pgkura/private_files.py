"""Files replaced whole or not at all, never readable by others on the way: passwords, keys,
manifests and records that a crash or a full disk must not leave half-written."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def write_private(path: Path, data: str | bytes, *, mode: int = 0o600) -> None:
    """Replace `path` with `data` atomically. The temporary file in the same directory is
    created owner-only (whatever the umask), given `mode` once written whole (0o644 for what
    another user must read), fsynced, renamed, and the directory fsynced; on any failure it is
    removed and the old file stays as it was."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
            out.flush()
            os.fsync(out.fileno())
        if mode != 0o600:
            os.chmod(name, mode)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new link in `directory` survive a power cut (POSIX; Windows has no
    directory handles to flush)."""
    if sys.platform == "win32":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
