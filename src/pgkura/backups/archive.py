"""Reading a backup file once: gzip (or zstd) integrity, then what `integrity` asks of a whole
file (the dump's trailer, the manifest's SHA-256). Which compression a file has comes from its
first bytes, not its name.

The same pass feeds a restore, so a restore needs no separate verification read: it commits
only if this pass ends clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from isal import isal_zlib

from pgkura.backups import integrity
from pgkura.backups.dump_stream import DumpStream, Transactions
from pgkura.backups.store import read_manifest
from pgkura.compression.gzip_blocks import INFLATE_ERROR, CorruptArchive, HashingReader, gunzip
from pgkura.progress import QUIET, Meter, Reporter

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_HEAD = 64 * 1024
_DUMP_HEADERS = (b"-- PostgreSQL database dump", b"-- PostgreSQL database cluster dump")


@dataclass
class ArchiveCheck:
    path: Path
    manifest: dict[str, Any]
    size: int = 0
    plain_size: int = 0
    sha256: str = ""
    trailer_seen: bool = False
    kind: str = "gzip"  # or "zstd": from the file's first bytes
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def stream_archive(
    path: Path,
    sink: Callable[[bytes], object],
    transactions: Transactions,
    meter: Meter | None = None,
) -> ArchiveCheck:
    """Send the dump text (ready for psql, under the caller's `transactions` rule) to `sink`;
    what was found about the file. `meter` hears the bytes read from the file (its size is the
    one known total).

    Problems are collected, not raised: the caller decides (a restore must not commit)."""
    check = ArchiveCheck(path, read_manifest(path))
    stream = DumpStream(transactions)
    try:
        with path.open("rb") as raw:
            reader = HashingReader(raw)
            check.kind, plaintext = _decompressed(raw, reader)
            for plain in plaintext:
                check.plain_size += len(plain)
                sink(stream.feed(plain))
                if meter is not None:
                    meter.update(reader.size)
            sink(stream.finish())
            check.size, check.sha256 = reader.size, reader.sha256
    except CorruptArchive as exc:
        check.problems.append(str(exc))
        return check
    except BrokenPipeError:
        raise  # the sink (psql) went away: the caller reports why
    except OSError as exc:
        check.problems.append(f"cannot read {path}: {exc.strerror}")
        return check
    check.trailer_seen = stream.trailer_seen
    check.problems += integrity.problems(
        check.manifest, check.sha256, trailer_seen=stream.trailer_seen
    )
    return check


def _decompressed(raw: BinaryIO, reader: HashingReader) -> tuple[str, Iterator[bytes]]:
    """The kind of the file (its first bytes say) and the plaintext `reader` reads from it."""
    magic = raw.read(len(_ZSTD_MAGIC))
    raw.seek(0)
    if magic.startswith(_ZSTD_MAGIC):
        from pgkura.compression.zstd_stream import unzstd  # imported only for zstd files

        return "zstd", unzstd(reader.blocks())
    return "gzip", gunzip(reader.blocks())


def looks_like_a_dump(path: Path) -> str | None:
    """What is wrong with `path` as a backup at a glance (None when it starts like a gzip'd or
    zstd'd pg_dump): the cheap check that comes before anything is changed, such as a safety
    backup."""
    try:
        with path.open("rb") as raw:
            head = raw.read(_HEAD)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if head.startswith(_ZSTD_MAGIC):
        kind, plain = "zstd", _zstd_head(head)
    elif head.startswith(_GZIP_MAGIC):
        kind, plain = "gzip", _gzip_head(head)
    else:
        return f"{path.name} is neither a gzip nor a zstd file"
    if plain is None:
        return f"{path.name} is a damaged {kind} file"
    if not any(marker in plain[:_HEAD] for marker in _DUMP_HEADERS):
        return f"{path.name} does not start like a pg_dump or pg_dumpall SQL dump"
    return None


def _gzip_head(head: bytes) -> bytes | None:
    try:
        return isal_zlib.decompressobj(wbits=31).decompress(head, _HEAD)
    except INFLATE_ERROR:
        return None


def _zstd_head(head: bytes) -> bytes | None:
    from pgkura.compression.zstd_stream import unzstd

    try:
        return next(unzstd(iter([head])), b"")[:_HEAD]
    except CorruptArchive as exc:
        return b"" if "truncated" in str(exc) else None  # a head is cut off by nature


def verify(path: Path, progress: Reporter = QUIET) -> ArchiveCheck:
    """Every check a restore makes, without restoring."""
    if not path.is_file():
        check = ArchiveCheck(path, {})
        check.problems.append(f"{path} does not exist")
        return check
    with progress.meter(f"verify {path.name}", path.stat().st_size) as meter:
        return stream_archive(path, lambda _data: None, Transactions.DUMP, meter)  # as it is
