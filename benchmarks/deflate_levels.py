"""What each backup level costs and saves: zlib (the standard library) against ISA-L, which
pgkura's gzip backups use (1 MiB blocks, as the backup writer compresses them), and zstd (one
frame, as PGKURA_BACKUP_COMPRESSION=zstd writes it), on a plain pg_dump of application-like
rows from a throwaway PostgreSQL 18. One thread each.

    python -m benchmarks.deflate_levels [--rows 150000]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import time
import zlib
from collections.abc import Callable

import psycopg
from isal import isal_zlib

from benchmarks.backup_vs_raw import ROWS_SQL
from pgkura.clusters.throwaway import ThrowawayServer, bin_dir
from pgkura.compression.gzip_blocks import BLOCK, isal_level
from pgkura.compression.zstd_stream import ZstdWriter, unzstd, zstd_level


def dump(rows: int) -> bytes:
    with ThrowawayServer() as server:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(ROWS_SQL.format(rows=rows))
        argv = [str(bin_dir() / "pg_dump"), "-h", "127.0.0.1", "-p", str(server.port),
                "-U", server.user, "postgres"]  # fmt: skip
        env = {"PGPASSWORD": server.password}
        return subprocess.run(argv, capture_output=True, env=env, check=True).stdout


def measure(
    name: str, text: bytes, pack: Callable[[bytes], bytes], unpack: Callable[[bytes], bytes]
) -> str:
    blocks = [text[i : i + BLOCK] for i in range(0, len(text), BLOCK)]
    started = time.perf_counter()
    packed = [pack(b) for b in blocks]
    deflate = time.perf_counter() - started
    started = time.perf_counter()
    for member in packed:
        unpack(member)
    inflate = time.perf_counter() - started
    size = sum(map(len, packed))
    mb = len(text) / 1e6
    return (
        f"  {name:26} deflate {mb / deflate:6.0f} MB/s  ratio {len(text) / size:4.2f}  "
        f"inflate {mb / inflate:5.0f} MB/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=150_000)
    args = parser.parse_args()
    text = dump(args.rows)
    print(f"deflate on {len(text) / 1e6:.0f} MB of pg_dump output (one thread)")
    print(measure("zlib 6 (gzip -6)", text, lambda b: zlib.compress(b, 6, 31),
                  lambda m: zlib.decompress(m, 31)))  # fmt: skip
    for level in (1, 2, 6, 9):
        engine = isal_level(level)
        print(measure(f"pgkura {level} (ISA-L {engine})", text, _packer(engine),
                      lambda m: isal_zlib.decompress(m, 31)))  # fmt: skip
    for level in (6, 9):
        print(measure_zstd(text, level))


def measure_zstd(text: bytes, level: int) -> str:
    out = io.BytesIO()
    started = time.perf_counter()
    writer = ZstdWriter(out, level, threads=1)
    for start in range(0, len(text), BLOCK):
        writer.write(text[start : start + BLOCK])
    writer.close()
    deflate = time.perf_counter() - started
    packed = out.getvalue()
    started = time.perf_counter()
    for _ in unzstd(packed[i : i + BLOCK] for i in range(0, len(packed), BLOCK)):
        pass
    inflate = time.perf_counter() - started
    mb = len(text) / 1e6
    name = f"zstd, pgkura {level} (zstd {zstd_level(level)})"
    return (
        f"  {name:26} deflate {mb / deflate:6.0f} MB/s  ratio {len(text) / len(packed):4.2f}  "
        f"inflate {mb / inflate:5.0f} MB/s"
    )


def _packer(engine: int) -> Callable[[bytes], bytes]:
    return lambda block: isal_zlib.compress(block, engine, 31)


if __name__ == "__main__":
    main()
