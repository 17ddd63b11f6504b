"""`invoke db.backup` / `db.restore` against the raw pipelines on the same container, same run:

    docker exec C pg_dump ... | gzip -6 > file          (what most projects ship)
    docker exec C pg_dump ... > /dev/null               (the floor: the dump alone)
    gunzip -c file | docker exec -i C psql ...

on a database of application-like rows (text, timestamps, JSON, a vector column), printing
time ratios, archive sizes and pgkura's peak memory.

    python -m benchmarks.backup_vs_raw [--rows 1000000] [--repeat 2]
Needs a Docker engine and the image (PG_BASE_IMAGE / PGKURA_BUILD_TARGET as for `db.up`).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from pgkura.backups.store import BackupStore
from pgkura.config.settings import load_settings
from pgkura.engines.docker.compose import compose_argv, compose_env

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = secrets.token_urlsafe(12)
ROWS_SQL = """
CREATE EXTENSION IF NOT EXISTS vector;
DROP TABLE IF EXISTS events;
CREATE TABLE events (
    id bigint PRIMARY KEY, created_at timestamptz NOT NULL, user_name text NOT NULL,
    title text NOT NULL, body text NOT NULL, payload jsonb NOT NULL, embedding vector(16)
);
INSERT INTO events
SELECT g, now() - g * interval '17 seconds', 'user_' || (g % 5000),
       'お知らせ ' || g || ': ' || md5(g::text),
       repeat(md5((g * 3)::text) || ' 検索対象の本文 ', 3 + g % 5),
       jsonb_build_object('n', g, 'tag', md5((g * 7)::text), 'ok', g % 2 = 0),
       (SELECT array_agg(((g * 31 + i) % 1000) / 1000.0)::vector FROM generate_series(1, 16) i)
FROM generate_series(1, {rows}) g;
"""


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def peak_rss(argv: list[str], env: dict[str, str]) -> int:
    """Run argv; the peak resident memory of its process tree in bytes. Sampling the tree costs
    CPU, so this run is not one of the timed ones."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        parent = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                procs = [parent, *parent.children(recursive=True)]
                total = sum(p.memory_info().rss for p in procs if p.name() != "docker")
                peak = max(peak, total)
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, err = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed: {err.decode()}")
    return peak


def shell_timed(script: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", script], env=env, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=600_000)  # about 350 MB on disk
    parser.add_argument("--repeat", type=int, default=6)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pgkura-bench-"))
    env = {
        **os.environ,
        "PGKURA_COMPOSE_PROJECT": "pgkura-bench-backup",
        "PGKURA_CONTAINER": "pgkura-bench-backup",
        "POSTGRES_PASSWORD": PASSWORD,
        "POSTGRES_PORT": "55498",
        "PGKURA_ENV_FILE": "/nonexistent/.env",
        "PGKURA_EXTENSIONS": "vector",
        "PGKURA_BACKUP_DIR": str(work),
        "PGKURA_SOCKET_DIR": str(work / "sock"),
    }
    settings = load_settings(ROOT, env)
    env = {**env, **compose_env(settings)}
    compose = compose_argv(settings)
    invoke = [sys.executable, "-m", "invoke", "--search-root", str(ROOT)]
    container = settings.container_name
    psql = ["docker", "exec", "-i", container, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-U", "app", "-d", "app"]  # fmt: skip
    up = subprocess.run([*invoke, "db.up", "--build"], env=env, capture_output=True, text=True)
    if up.returncode != 0:
        raise SystemExit(f"db.up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}")
    try:
        subprocess.run([*psql, "-c", ROWS_SQL.format(rows=args.rows)], env=env, check=True)
        size = subprocess.run(
            [*psql, "-At", "-c", "SELECT pg_size_pretty(pg_database_size('app'))"],
            env=env, check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        raw_file = work / "raw.sql.gz"
        dump = (
            f"docker exec {container} pg_dump -U app -d app --clean --if-exists --no-owner --no-acl"
        )
        ours_b: list[float] = []
        raw_b: list[float] = []
        ours_r: list[float] = []
        raw_r: list[float] = []
        raw_tx: list[float] = []
        floor_b: list[float] = []
        safe_r: list[float] = []
        zstd_b: list[float] = []
        zstd_r: list[float] = []
        start_up: list[float] = []  # invoke's own, before any task runs: no task can beat it
        peaks: list[int] = []

        backup = [*invoke, "db.backup", "--keep", "2"]

        def newest(suffix: str) -> Path:
            own = BackupStore(work).own("app")  # not the safety copies
            return [b.path for b in own if b.path.name.endswith(suffix)][-1]

        def restore(*flags: str, suffix: str = ".sql.gz") -> list[str]:
            return [*invoke, "db.restore", str(newest(suffix)), "--yes", *flags]

        def our_backup() -> None:
            ours_b.append(timed(backup, env))
            zstd_b.append(timed([*backup, "--compression", "zstd"], env))

        def our_restore() -> None:
            ours_r.append(timed(restore("--no-safety-backup"), env))
            safe_r.append(timed(restore(), env))  # the default: a safety copy of the database first
            zstd_r.append(timed(restore("--no-safety-backup", suffix=".sql.zst"), env))

        def raw_backup() -> None:
            start_up.append(timed([*invoke, "--list"], env))
            raw_b.append(shell_timed(f"{dump} | gzip -6 > {raw_file}", env))
            floor_b.append(shell_timed(f"{dump} > /dev/null", env))

        def raw_restore() -> None:
            raw_r.append(shell_timed(f"gunzip -c {raw_file} | {shlex.join(psql)}", env))
            # the same, all or nothing: the fair peer for pgkura's one-transaction restore
            one = f"gunzip -c {raw_file} | {shlex.join(psql)} --single-transaction"
            raw_tx.append(shell_timed(one, env))

        for i in range(args.repeat):  # alternate who goes first: checkpoints hit both alike
            pairs = [(our_backup, raw_backup), (our_restore, raw_restore)]
            for first, second in pairs:
                (first if i % 2 == 0 else second)()
                (second if i % 2 == 0 else first)()
        peaks += [peak_rss(backup, env), peak_rss(restore("--no-safety-backup"), env)]
        ours_file, zstd_file = newest(".sql.gz"), newest(".sql.zst")
        a, b = statistics.median(ours_b), statistics.median(raw_b)
        c, d = statistics.median(ours_r), statistics.median(raw_r)
        f, s = statistics.median(floor_b), statistics.median(safe_r)
        print(f"database: {args.rows} rows, {size} on disk")
        print(f"backup : pgkura {a:.2f} s, raw pipeline {b:.2f} s, ratio {a / b:.2f}; "
              f"pg_dump alone {f:.2f} s, ratio {a / f:.2f}")  # fmt: skip
        print(f"archive: pgkura {ours_file.stat().st_size / 2**20:.1f} MiB, "
              f"zstd {zstd_file.stat().st_size / 2**20:.1f} MiB, "
              f"gzip -6 {raw_file.stat().st_size / 2**20:.1f} MiB")  # fmt: skip
        g, h = statistics.median(zstd_b), statistics.median(zstd_r)
        print(
            f"zstd   : backup {g:.2f} s (ratio to pg_dump alone {g / f:.2f}), restore "
            f"--no-safety-backup {h:.2f} s (ratio to raw {h / d:.2f})"
        )
        e = statistics.median(raw_tx)
        print(
            f"restore: pgkura --no-safety-backup {c:.2f} s, raw pipeline {d:.2f} s, ratio "
            f"{c / d:.2f}; raw with --single-transaction {e:.2f} s, ratio {c / e:.2f}"
        )
        print(f"restore, default (safety copy first): {s:.2f} s, ratio to raw {s / d:.2f}")
        u = statistics.median(start_up)
        print(
            f"start-up: `invoke --list` {u:.2f} s; beyond it, backup {a - u:.2f} s (ratio to "
            f"raw {(a - u) / b:.2f}), restore --no-safety-backup {c - u:.2f} s "
            f"(ratio {(c - u) / d:.2f})"
        )
        print(f"pgkura peak memory (RSS, backup and restore): {max(peaks) / 2**20:.0f} MiB")
    finally:
        subprocess.run([*compose, "down", "--volumes"], env=env, capture_output=True, check=False)


if __name__ == "__main__":
    main()
