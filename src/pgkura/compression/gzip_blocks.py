"""gzip on several cores, streaming, in bounded memory.

Each 1 MiB block becomes an independent gzip member, compressed on a thread pool (the
compressor releases the GIL); members are written in order, and concatenated members are one
valid `.gz` file for gunzip and Python alike. At most a few blocks per thread are in flight, so
memory does not grow with the database.

Deflate and inflate are ISA-L's (python-isal), not zlib's: on pg_dump output (measured in
benchmarks/deflate_levels.py) its level 2 compresses about 11 times as fast as zlib's level 6
with a slightly better ratio, and inflates about 1.5 times as fast; the output is ordinary gzip.
ISA-L has four levels; pgkura's 1-9 (PGKURA_BACKUP_LEVEL, --level) map onto them.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, cast

from isal import isal_zlib

BLOCK = 1 << 20
DEFAULT_LEVEL = 6
# pgkura level -> ISA-L level. 1: fastest, larger files; 2-5: ISA-L 1; 6-8: ISA-L 2 (the
# default: as fast as 1 on dumps, smaller); 9: ISA-L 3, the smallest, about 2.5 times slower.
_ISAL_LEVEL = {1: 0, 2: 1, 3: 1, 4: 1, 5: 1, 6: 2, 7: 2, 8: 2, 9: 3}


# isal's type stubs declare its error as an instance; at run time it is the exception class.
INFLATE_ERROR = cast("type[Exception]", isal_zlib.error)


def isal_level(level: int) -> int:
    return _ISAL_LEVEL[level]


class CorruptArchive(Exception):
    """The gzip stream is damaged or cut off."""


def worker_count(threads: int | None = None) -> int:
    """Compression threads: as asked, else the cores (at least 2, at most 8)."""
    return threads or max(2, min(8, os.cpu_count() or 2))


class HashingWriter:
    """Writes to a file while hashing and counting exactly the bytes written (the compressed
    stream a backup's manifest describes)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self._hash = hashlib.sha256()
        self.size = 0

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def write(self, data: bytes) -> None:
        self.out.write(data)
        self._hash.update(data)
        self.size += len(data)


class HashedOutput:
    """What a compressing writer reports of the bytes it wrote out (through its HashingWriter,
    `_out`): the manifest's SHA-256 and size."""

    _out: HashingWriter

    @property
    def sha256(self) -> str:
        return self._out.sha256

    @property
    def size(self) -> int:
        return self._out.size


class ParallelGzipWriter(HashedOutput):
    """write() plaintext, close() to finish; `sha256` and `size` describe the compressed bytes."""

    def __init__(
        self, out: BinaryIO, level: int = DEFAULT_LEVEL, threads: int | None = None
    ) -> None:
        self._out = HashingWriter(out)
        self.level = isal_level(level)
        workers = worker_count(threads)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gzip")
        self._inflight: deque[Future[bytes]] = deque()
        self._limit = workers * 2
        self._buffer = bytearray()
        self.plain_size = 0

    def write(self, data: bytes) -> None:
        self.plain_size += len(data)
        self._buffer += data
        while len(self._buffer) >= BLOCK:
            self._submit(bytes(self._buffer[:BLOCK]))
            del self._buffer[:BLOCK]

    def _submit(self, block: bytes) -> None:
        self._inflight.append(self._pool.submit(isal_zlib.compress, block, self.level, 31))
        while len(self._inflight) >= self._limit:
            self._drain_one()

    def _drain_one(self) -> None:
        self._out.write(self._inflight.popleft().result())

    def close(self) -> None:
        """Compress what is left and write every member; the caller fsyncs and closes `out`."""
        try:
            if self._buffer or self.plain_size == 0:
                self._submit(bytes(self._buffer))
                self._buffer.clear()
            while self._inflight:
                self._drain_one()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class HashingReader:
    """Reads a file in blocks while hashing exactly the bytes read."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def blocks(self) -> Iterator[bytes]:
        while block := self.raw.read(BLOCK):
            self._hash.update(block)
            self.size += len(block)
            yield block


def gunzip(compressed: Iterator[bytes]) -> Iterator[bytes]:
    """Plaintext of a (multi-member) gzip stream in bounded pieces; CorruptArchive if it is
    damaged, empty, or cut off inside a member."""
    decoder = isal_zlib.decompressobj(31)
    member_open = False
    seen = False
    try:
        for block in compressed:
            seen = seen or bool(block)
            while block:
                member_open = True
                out = decoder.decompress(block, 4 * BLOCK)
                if out:
                    yield out
                if decoder.eof:
                    member_open = False
                    block = decoder.unused_data
                    decoder = isal_zlib.decompressobj(31)
                else:
                    block = decoder.unconsumed_tail
    except INFLATE_ERROR as exc:
        raise CorruptArchive(f"the gzip data is damaged ({exc})") from None
    if not seen:
        raise CorruptArchive("the file is empty")
    if member_open:
        raise CorruptArchive("the gzip data stops in the middle of a block: the file is truncated")
