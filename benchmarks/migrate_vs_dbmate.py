"""Apply N generated migrations (a table and an index each) to a fresh database with pgkura
(`invoke db.migrate`, process start included) and with dbmate, on the same throwaway
PostgreSQL 18 in the same run, alternating so neither always meets a warmer server; then a
run with nothing to do against Python's floor for it, `python -c 'import psycopg'`.

    python -m benchmarks.migrate_vs_dbmate [--count 300 --count 40] [--repeat 5]

Python writes bytecode caches as it normally does (an inherited PYTHONDONTWRITEBYTECODE would
make every run compile pgkura from source, which no installed copy does).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from benchmarks.common import report, run_timed
from pgkura.clusters.throwaway import ThrowawayServer

ROOT = Path(__file__).resolve().parent.parent


def up_sql(n: int) -> str:
    return (
        f"CREATE TABLE bench_{n} (id bigint PRIMARY KEY, body text, created timestamptz);\n"
        f"CREATE INDEX bench_{n}_created ON bench_{n} (created);\n"
    )


def write_dirs(base: Path, count: int) -> tuple[Path, Path]:
    ours, theirs = base / "pgkura", base / "dbmate"
    ours.mkdir(parents=True)
    theirs.mkdir()
    for n in range(1, count + 1):
        name = f"{n:04d}_bench_{n}.sql"
        (ours / name).write_text(up_sql(n))
        (theirs / name).write_text(f"-- migrate:up\n{up_sql(n)}\n-- migrate:down\n")
    return ours, theirs


def fresh(server: ThrowawayServer, name: str) -> str:
    with psycopg.connect(server.url(), autocommit=True) as conn:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    return server.url(name)


INVOKE = [sys.executable, "-m", "invoke", "--search-root", str(ROOT), "db.migrate"]


def compare(server: ThrowawayServer, base: Path, count: int, repeat: int) -> None:
    dbmate = shutil.which("dbmate") or str(Path(sys.executable).parent / "dbmate")
    ours_t: list[float] = []
    theirs_t: list[float] = []
    ours, theirs = write_dirs(base / str(count), count)
    for _ in range(repeat):
        env = {"PGKURA_MIGRATIONS_DIR": str(ours), "DATABASE_URL": fresh(server, "bench_pgkura")}
        ours_t.append(run_timed(INVOKE, env))
        url = fresh(server, "bench_dbmate") + "?sslmode=disable"
        peer = [dbmate, "--url", url, "--migrations-dir", str(theirs), "--no-dump-schema"]
        theirs_t.append(run_timed([*peer, "up"]))
    title = f"apply {count} migrations (a table and an index each) to a fresh database"
    print(report(title, ours_t, theirs_t, "dbmate", count))
    # the same directory, everything applied: what CI's `db.migrate` costs on most runs
    noop_t: list[float] = []
    floor_t: list[float] = []
    for _ in range(repeat):
        noop_t.append(run_timed(INVOKE, env))
        floor_t.append(run_timed([sys.executable, "-c", "import psycopg"]))
    title = f"db.migrate with nothing to do ({count} files applied)"
    print(report(title, noop_t, floor_t, "import psycopg", 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, action="append")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as tmp, ThrowawayServer() as server:
        for count in args.count or [300, 40]:
            compare(server, Path(tmp), count, args.repeat)


if __name__ == "__main__":
    main()
