"""Exclusive locks on a file, held by an open handle and released when the process ends (even
when killed): flock on POSIX, msvcrt's byte-range lock on Windows."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _try(fh: IO[str]) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def is_locked(path: Path) -> bool:
    """Whether another process holds the lock on `path` now (probing takes and drops it)."""
    if not path.exists():
        return False
    with path.open("a") as fh:
        return not _try(fh)  # closing the handle releases a lock taken by the probe


@contextmanager
def locked(path: Path, *, wait: bool, on_wait: Callable[[], None] | None = None) -> Iterator[bool]:
    """Hold the lock on `path` (created if needed); yields False at once, holding nothing, when
    another process has it and `wait` is off. `on_wait` is called once before waiting."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        got = _try(fh)
        if not got and wait:
            if on_wait is not None:
                on_wait()
            while not (got := _try(fh)):
                time.sleep(0.2)
        yield got
