"""zstd backups (PGKURA_BACKUP_COMPRESSION=zstd): one zstd frame with a content checksum,
compressed on several threads by libzstd itself, and read back in bounded pieces.

The same contract as gzip_blocks: write()/close()/abort(), the compressed bytes' SHA-256 and
size, and a reader that raises CorruptArchive for a damaged, empty or cut-off stream. The
binding is the standard library's `compression.zstd` (Python 3.14) or its backport: its
decompressor bounds each piece (`max_length`) and says whether a frame ended (`eof`), which the
`zstandard` package's readers do not (a cut-off stream there reads as a shorter whole one).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

try:
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # Python < 3.14
    from backports import zstd  # type: ignore[no-redef,unused-ignore]

from pgkura.compression.gzip_blocks import (
    BLOCK,
    CorruptArchive,
    HashedOutput,
    HashingWriter,
    worker_count,
)

MAGIC = b"\x28\xb5\x2f\xfd"
_PIECE = 4 * BLOCK  # the most plaintext the decoder hands back at a time
# pgkura level -> zstd level, from benchmarks/deflate_levels.py on pg_dump output: zstd's level
# 1 is both its fastest and, on dumps, its smallest up to level 12; only its slowest levels
# shrink dumps further (19: a fifth smaller, two orders of magnitude slower), so 9 asks for that.
_ZSTD_LEVEL = {1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1, 8: 1, 9: 19}


def zstd_level(level: int) -> int:
    return _ZSTD_LEVEL[level]


class ZstdWriter(HashedOutput):
    """write() plaintext, close() to finish; `sha256` and `size` describe the compressed bytes."""

    def __init__(self, out: BinaryIO, level: int, threads: int | None = None) -> None:
        self._out = HashingWriter(out)
        workers = worker_count(threads)
        parameter = zstd.CompressionParameter
        self._compressor = zstd.ZstdCompressor(
            options={
                parameter.compression_level: zstd_level(level),
                parameter.nb_workers: workers,
                parameter.checksum_flag: 1,
            }
        )
        self.plain_size = 0

    def write(self, data: bytes) -> None:
        self.plain_size += len(data)
        self._out.write(self._compressor.compress(data))

    def close(self) -> None:
        """End the frame and write it out; the caller fsyncs and closes the file."""
        self._out.write(self._compressor.flush(zstd.ZstdCompressor.FLUSH_FRAME))

    def abort(self) -> None:
        """Nothing to stop: libzstd's threads finish with the call that started them."""


def unzstd(compressed: Iterator[bytes]) -> Iterator[bytes]:
    """Plaintext of a zstd stream (one or more frames) in bounded pieces; CorruptArchive if it
    is damaged, empty, or cut off inside a frame."""
    decoder = zstd.ZstdDecompressor()
    frame_open = False
    seen = False
    try:
        for block in compressed:
            seen = seen or bool(block)
            data = block
            while data or not decoder.needs_input:
                frame_open = True
                out = decoder.decompress(data, max_length=_PIECE)
                data = b""
                if out:
                    yield out
                if decoder.eof:
                    frame_open = False
                    data = decoder.unused_data
                    decoder = zstd.ZstdDecompressor()
                    if not data:
                        break
                elif decoder.needs_input:
                    break
    except zstd.ZstdError as exc:
        raise CorruptArchive(f"the zstd data is damaged ({exc})") from None
    if not seen:
        raise CorruptArchive("the file is empty")
    if frame_open:
        raise CorruptArchive("the zstd data stops in the middle of a frame: the file is truncated")
