"""gzip on several cores, streaming, in bounded memory.

Each 1 MiB block becomes an independent gzip member, compressed on a thread pool (zlib releases
the GIL); members are written in order, and concatenated members are one valid `.gz` file for
gunzip and Python alike. At most a few blocks per thread are in flight, so memory does not grow
with the database.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

BLOCK = 1 << 20
DEFAULT_LEVEL = 6  # gzip's own default; Python's gzip module uses 9, several times slower


class CorruptArchive(Exception):
    """The gzip stream is damaged or cut off."""


class ParallelGzipWriter:
    """write() plaintext, close() to finish; `sha256` and `size` describe the compressed bytes."""

    def __init__(
        self, out: BinaryIO, level: int = DEFAULT_LEVEL, threads: int | None = None
    ) -> None:
        self.out = out
        self.level = level
        workers = threads or max(2, min(8, os.cpu_count() or 2))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gzip")
        self._inflight: deque[Future[bytes]] = deque()
        self._limit = workers * 2
        self._buffer = bytearray()
        self._hash = hashlib.sha256()
        self.size = 0
        self.plain_size = 0

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def write(self, data: bytes) -> None:
        self.plain_size += len(data)
        self._buffer += data
        while len(self._buffer) >= BLOCK:
            self._submit(bytes(self._buffer[:BLOCK]))
            del self._buffer[:BLOCK]

    def _submit(self, block: bytes) -> None:
        self._inflight.append(self._pool.submit(zlib.compress, block, self.level, 31))
        while len(self._inflight) >= self._limit:
            self._drain_one()

    def _drain_one(self) -> None:
        member = self._inflight.popleft().result()
        self.out.write(member)
        self._hash.update(member)
        self.size += len(member)

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
    decoder = zlib.decompressobj(31)
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
                    decoder = zlib.decompressobj(31)
                else:
                    block = decoder.unconsumed_tail
    except zlib.error as exc:
        raise CorruptArchive(f"the gzip data is damaged ({exc})") from None
    if not seen:
        raise CorruptArchive("the file is empty")
    if member_open:
        raise CorruptArchive("the gzip data stops in the middle of a block: the file is truncated")
