"""A large table read by several processes at once, its blocks sent to the COPY in rowid order.

Writing COPY text costs far more than PostgreSQL's parsing of it, and one Python process is held
to one core by its GIL: so a table of many rows is split into ranges of rowids, each process
reads and formats every n-th range on its own read-only connection, and the caller receives the
ranges in order (the table's rows arrive as SQLite holds them). Each process sums the checksum
of what it wrote; the line hash is the same in every process, so the sums add up to the one
the read-back is compared with. At most about eight ranges wait from each process: memory
stays flat.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from pgkura.errors import PgkuraError
from pgkura.sqlite.schema import Column, Table, connect_readonly, rowid_span
from pgkura.sqlite.stream import Rows, ahead

RANGE = 1 << 14  # rowids a range: four blocks of 4,096 rows
AHEAD = 8 * (RANGE // 4096 + 1)  # frames waiting from each process: about eight ranges
ENOUGH_ROWS = 50_000  # below this, starting the processes costs more than they save


@dataclass(frozen=True)
class Plan:
    """How a table is read: `alias` names its rowid, `ranges` in order."""

    alias: str
    ranges: list[tuple[int, int]]


def split(conn: sqlite3.Connection, table: Table) -> Plan | None:
    """Ranges of rowids for a large ordinary table whose rowids are dense enough that ranges
    hold rows; None where one process reads it (small, WITHOUT ROWID, virtual, sparse keys, or
    every name of the rowid taken by a column)."""
    span = rowid_span(conn, table) if table.rows >= ENOUGH_ROWS and workers() > 1 else None
    if span is None or span[2] - span[1] + 1 > 4 * table.rows:
        return None
    alias, low, high = span
    return Plan(alias, [(lo, min(lo + RANGE - 1, high)) for lo in range(low, high + 1, RANGE)])


def workers() -> int:
    """One process a core, up to four (PostgreSQL's COPY needs a core of its own too)."""
    return min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1, 4)  # fmt: skip


def blocks(
    path: Path, table: str, columns: list[Column], plan: Plan, into: Rows
) -> Iterator[bytes]:
    """The table's COPY text, range after range, read by `workers()` processes; `into` (the
    caller's `Rows` of the same columns) receives their count and checksum at the end."""
    count = min(workers(), len(plan.ranges))
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(_Reader(i, (path, table, columns, plan.alias,
                                                   plan.ranges[i::count])))
                   for i in range(count)]  # fmt: skip
        for i in range(len(plan.ranges)):
            while (block := readers[i % count].next()) is not None:
                yield block
        for reader in readers:
            done, total = reader.totals()
            into.count += done
            into.total += total


class _Reader:
    """One reading process: a new interpreter (never a fork of one holding connections, and
    never a re-run of the caller's main module), its work given on stdin, its blocks framed on
    stdout. A thread here drains the pipe into a queue of `AHEAD` frames (about eight ranges):
    while the caller takes another process's range, this one keeps reading, and memory stays
    flat."""

    def __init__(self, number: int, work: tuple[Any, ...]) -> None:
        self.name = f"SQLite reader {number + 1}"
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors,
        )  # fmt: skip
        self.out = cast(IO[bytes], self.proc.stdout)
        given = cast(IO[bytes], self.proc.stdin)
        given.write(pickle.dumps(work))
        given.close()
        self.frames = ahead(self._frames(), 1, depth=AHEAD)

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # the caller stopped early (an error, Ctrl-C)
        self.frames.close()  # its thread sees the end of the pipe, or the stop
        self.out.close()
        self.proc.wait()
        self.errors.close()

    def _frames(self) -> Iterator[tuple[bytes, bytes]]:
        """(kind, payload) up to the totals; the process's error, or its end, raised."""
        while True:
            head = self.out.read(_HEAD.size)
            if len(head) < _HEAD.size:
                self.proc.wait()
                self.errors.seek(0)
                said = self.errors.read().decode(errors="replace").strip().splitlines()
                last = f": {said[-1]}" if said else ""
                code = self.proc.returncode
                raise PgkuraError(f"the {self.name} ended unexpectedly (exit code {code}{last}); "
                                  "nothing was committed")  # fmt: skip
            kind, size = _HEAD.unpack(head)
            payload = self.out.read(size)
            if kind == _FAILED:
                message, database = pickle.loads(payload)  # noqa: S301 - our own process
                if database:
                    raise sqlite3.DatabaseError(message)
                raise PgkuraError(f"reading SQLite failed ({message}); nothing was committed")
            yield kind, payload
            if kind == _TOTALS:
                return

    def next(self) -> bytes | None:
        """The next block of the current range; None at its end."""
        kind, payload = next(self.frames)[0]
        return payload if kind == _BLOCK else None

    def totals(self) -> tuple[int, int]:
        _kind, payload = next(self.frames)[0]
        done, total = pickle.loads(payload)  # noqa: S301 - our own process
        return done, total


# this very pgkura, wherever it was imported from (installed, or a checkout's src/)
_SERVE = (f"import sys; sys.path.insert(0, {str(Path(__file__).parents[2])!r}); "
          "from pgkura.sqlite.parallel import serve; serve()")  # fmt: skip
_HEAD = struct.Struct(">cQ")  # a frame: its kind, the length of what follows
_BLOCK, _END, _TOTALS, _FAILED = b"B", b"E", b"T", b"F"


def serve() -> None:
    """In a reading process: each range's blocks, an end mark after each, then (count, sum)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's; it stops us
    out = sys.stdout.buffer

    def send(kind: bytes, payload: bytes = b"") -> None:
        out.write(_HEAD.pack(kind, len(payload)))
        out.write(payload)

    try:
        path, table, columns, alias, ranges = pickle.loads(sys.stdin.buffer.read())  # noqa: S301
        conn = connect_readonly(path)
        rows = Rows(columns)
        for bounds in ranges:
            for block in rows.read(conn, table, f" WHERE {alias} BETWEEN ? AND ?", bounds):
                send(_BLOCK, block)
            send(_END)
        send(_TOTALS, pickle.dumps((rows.count, rows.total)))
    except Exception as exc:  # in words: an exception object may not survive the pipe
        send(_FAILED, pickle.dumps((str(exc), isinstance(exc, sqlite3.DatabaseError))))
    out.flush()
