"""What each backup level costs and saves: zlib (the standard library) against ISA-L, which
pgkura uses, on a plain pg_dump of application-like rows from a throwaway PostgreSQL 18.
One thread, 1 MiB blocks as the backup writer compresses them.

    python -m benchmarks.deflate_levels [--rows 150000]
"""

from __future__ import annotations

import argparse
import subprocess
import time
import zlib
from collections.abc import Callable

import psycopg
from isal import isal_zlib

from benchmarks.backup_vs_raw import ROWS_SQL
from pgkura.gzip_blocks import BLOCK, isal_level
from pgkura.throwaway import ThrowawayServer, bin_dir


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


def _packer(engine: int) -> Callable[[bytes], bytes]:
    return lambda block: isal_zlib.compress(block, engine, 31)


if __name__ == "__main__":
    main()
