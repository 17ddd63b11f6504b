"""zstd backups' writer and reader: the same contract as gzip's (hash, size, refusals)."""

import hashlib
import io

import pytest

from pgkura.compression.gzip_blocks import CorruptArchive
from pgkura.compression.zstd_stream import MAGIC, ZstdWriter, unzstd, zstd

TEXT = ("-- 日本語のダンプ\n" + "COPY public.docs (id, body) FROM stdin;\n" * 3000).encode() * 20


def written(text: bytes = TEXT, level: int = 6) -> tuple[bytes, ZstdWriter]:
    out = io.BytesIO()
    writer = ZstdWriter(out, level)
    for start in range(0, len(text), 1 << 20):
        writer.write(text[start : start + (1 << 20)])
    writer.close()
    return out.getvalue(), writer


def blocks(data: bytes, size: int = 1 << 20):
    return (data[i : i + size] for i in range(0, len(data), size))


def test_round_trip_with_hash_and_sizes():
    data, writer = written()
    assert data.startswith(MAGIC)
    assert writer.sha256 == hashlib.sha256(data).hexdigest()
    assert writer.size == len(data)
    assert writer.plain_size == len(TEXT)
    assert b"".join(unzstd(blocks(data))) == TEXT
    assert zstd.decompress(data) == TEXT  # plain zstd, as the zstd tool reads it


def test_pieces_stay_bounded():
    data, _ = written(bytes(64 << 20))  # 64 MiB of zeros: a thousandfold ratio
    largest = max(len(piece) for piece in unzstd(blocks(data)))
    assert largest <= 4 << 20


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d[: len(d) // 2], "truncated"),
        (lambda d: d[:-3], "truncated"),
        (lambda d: d[:40] + bytes([d[40] ^ 0xFF]) + d[41:], "damaged"),
        (lambda d: b"", "empty"),
    ],
)
def test_damage_is_refused(damage, message):
    data, _ = written()
    with pytest.raises(CorruptArchive, match=message):
        b"".join(unzstd(blocks(damage(data), 4096)))


def test_concatenated_frames_read_as_one_stream():
    first, _ = written(b"-- one\n")
    second, _ = written(b"-- two\n")
    assert b"".join(unzstd(blocks(first + second, 5))) == b"-- one\n-- two\n"
