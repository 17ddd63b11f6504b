"""Apply N generated migrations (a table and an index each) to a fresh database with pgkura
(`invoke db.migrate`, process start included) and with dbmate, on the same throwaway
PostgreSQL 18 in the same run, alternating so neither always meets a warmer server.

    python -m benchmarks.migrate_vs_dbmate [--count 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from benchmarks.common import report, run_timed
from pgkura.throwaway import ThrowawayServer

ROOT = Path(__file__).resolve().parent.parent


def up_sql(n: int) -> str:
    return (
        f"CREATE TABLE bench_{n} (id bigint PRIMARY KEY, body text, created timestamptz);\n"
        f"CREATE INDEX bench_{n}_created ON bench_{n} (created);\n"
    )


def write_dirs(base: Path, count: int) -> tuple[Path, Path]:
    ours, theirs = base / "pgkura", base / "dbmate"
    ours.mkdir()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    dbmate = shutil.which("dbmate") or str(Path(sys.executable).parent / "dbmate")
    invoke = [sys.executable, "-m", "invoke", "--search-root", str(ROOT), "db.migrate"]
    ours_t: list[float] = []
    theirs_t: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, ThrowawayServer() as server:
        ours, theirs = write_dirs(Path(tmp), args.count)
        for _ in range(args.repeat):
            env = {"PGKURA_MIGRATIONS_DIR": str(ours)}
            env["DATABASE_URL"] = fresh(server, "bench_pgkura")
            ours_t.append(run_timed(invoke, env))
            url = fresh(server, "bench_dbmate") + "?sslmode=disable"
            peer = [dbmate, "--url", url, "--migrations-dir", str(theirs), "--no-dump-schema"]
            theirs_t.append(run_timed([*peer, "up"]))
    title = f"apply {args.count} migrations (a table and an index each) to a fresh database"
    print(report(title, ours_t, theirs_t, "dbmate", args.count))


if __name__ == "__main__":
    main()
