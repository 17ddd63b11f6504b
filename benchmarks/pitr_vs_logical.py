"""Point-in-time recovery against the logical dumps, on the same container and data, same run:

    recovery point: rows written after the last backup, then a bad DELETE; what each restore
                    brings back (db.restore latest of a dump, db.restore-to the moment before)
    recovery time:  db.restore latest --no-safety-backup against db.restore-to (which also
                    switches volumes and takes a fresh full base backup: both are in its time)
    backup time:    db.basebackup (full) against db.backup --no-offsite and pg_dump alone

    python -m benchmarks.pitr_vs_logical [--rows 1700000] [--after 20000]
Needs a Docker engine and the image (PG_BASE_IMAGE / PGKURA_BUILD_TARGET as for `db.up`); one
run of each (a restore-to switches volumes, so runs are not repeatable on one project).
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.backup_vs_raw import ROWS_SQL
from pgkura.config.settings import load_settings
from pgkura.engines.docker.compose import compose_env

ROOT = Path(__file__).resolve().parent.parent
LATE = """INSERT INTO events SELECT g, now(), 'late', 'あと ' || g, 'b', '{{}}', NULL
FROM generate_series({first}, {last}) g"""
PROJECT = "pgkura-bench-pitr"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_700_000)  # about 1 GB on disk
    parser.add_argument("--after", type=int, default=20_000)  # written after the backups
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pgkura-bench-pitr-"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "PGKURA_COMPOSE_PROJECT": PROJECT,
        "PGKURA_CONTAINER": PROJECT,
        "POSTGRES_PASSWORD": secrets.token_urlsafe(12),
        "POSTGRES_PORT": str(port),
        "PGKURA_ENV_FILE": str(work / ".env"),  # restore-to records the new volume here
        "PGKURA_EXTENSIONS": "vector",
        "PGKURA_BACKUP_DIR": str(work / "backups"),
        "PGKURA_SOCKET_DIR": str(work / "sock"),
        "PGKURA_PITR": "on",
        "PGKURA_OFFSITE_URL": "",
        "DATABASE_URL": "",
    }
    env = {**env, **compose_env(load_settings(ROOT, env))}
    invoke = [sys.executable, "-m", "invoke", "--search-root", str(ROOT)]
    psql = ["docker", "exec", "-i", PROJECT, "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
            "-U", "app", "-d", "app"]  # fmt: skip

    def task(*argv: str) -> float:
        print(f"… {' '.join(argv)}", file=sys.stderr, flush=True)  # a long run shows where it is
        started = time.perf_counter()
        done = subprocess.run([*invoke, *argv], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{argv} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return time.perf_counter() - started

    def sql(query: str) -> str:
        return subprocess.run([*psql, "-c", query], env=env, check=True, capture_output=True,
                              text=True).stdout.strip()  # fmt: skip

    task("db.up", "--build")
    try:
        sql(ROWS_SQL.format(rows=args.rows))
        size = sql("SELECT pg_size_pretty(pg_database_size('app'))")
        base = task("db.basebackup", "--type", "full")
        dump = task("db.backup", "--no-offsite", "--keep", "2")
        started = time.perf_counter()
        subprocess.run(["docker", "exec", PROJECT, "pg_dump", "-U", "app", "-d", "app", "-f",
                        "/dev/null"], check=True, env=env)  # fmt: skip
        pg_dump = time.perf_counter() - started
        # the afternoon's work, after both backups; then the moment, then the bad DELETE
        first, last = args.rows + 1, args.rows + args.after
        sql(LATE.format(first=first, last=last))
        expected = int(sql("SELECT count(*) FROM events"))
        time.sleep(1)  # the moment lies strictly between the last write and the DELETE
        moment = datetime.now(UTC).isoformat(sep=" ")
        time.sleep(1)
        sql("DELETE FROM events")
        logical = task("db.restore", "latest", "--yes", "--no-safety-backup")
        lost_logical = expected - int(sql("SELECT count(*) FROM events"))
        pitr = task("db.restore-to", moment, "--yes")
        lost_pitr = expected - int(sql("SELECT count(*) FROM events"))
    finally:
        subprocess.run([*invoke, "db.down", "--volumes", "--yes", "--no-backup"], env=env,
                       capture_output=True)  # fmt: skip
        left = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"name={PROJECT}_"],
                              capture_output=True, text=True).stdout.split()  # fmt: skip
        subprocess.run(["docker", "volume", "rm", "-f", *left], capture_output=True)
    print(f"{datetime.now(UTC):%Y-%m-%d}: database {args.rows} rows, {size} on disk; "
          f"{args.after} rows written after the last backup")  # fmt: skip
    print(f"recovery point: logical restore lost {lost_logical} rows, point-in-time {lost_pitr}")
    print(f"recovery time : db.restore {logical:.1f} s, db.restore-to {pitr:.1f} s "
          f"(with its fresh full base backup), ratio {pitr / logical:.2f}")  # fmt: skip
    print(f"backup time   : db.basebackup {base:.1f} s, db.backup {dump:.1f} s (ratio "
          f"{base / dump:.2f}), pg_dump alone {pg_dump:.1f} s "
          f"(ratio {base / pg_dump:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
