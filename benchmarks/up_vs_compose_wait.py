"""Time from start to the first successful query: `invoke db.up` (polls the server itself)
against `docker compose up -d --wait` (waits for the healthcheck), with the project's own
compose files, same machine, same run, alternating. Both start a stopped container whose
volume is already initialised (the everyday case).

    python -m benchmarks.up_vs_compose_wait [--repeat 5]
Needs a Docker engine and the image (PG_BASE_IMAGE / PGKURA_BUILD_TARGET as for `db.up`).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from benchmarks.common import report, run_timed
from pgkura.config.settings import load_settings
from pgkura.engines.docker.compose import compose_argv, compose_env

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = secrets.token_urlsafe(12)


def first_query(url: str, deadline_s: float = 120) -> None:
    end = time.monotonic() + deadline_s
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
                return
        except psycopg.OperationalError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = {
        "PGKURA_COMPOSE_PROJECT": "pgkura-bench",
        "PGKURA_CONTAINER": "pgkura-bench",
        "POSTGRES_PASSWORD": PASSWORD,
        "POSTGRES_PORT": "55499",
        "PGKURA_ENV_FILE": "/nonexistent/.env",
    }
    os.environ.update(env)
    settings = load_settings(ROOT)
    url = f"postgresql://app:{PASSWORD}@127.0.0.1:55499/app"
    compose = compose_argv(settings)
    invoke = [sys.executable, "-m", "invoke", "--search-root", str(ROOT), "db.up"]

    os.environ.update(compose_env(settings))  # resolved paths, as db.up passes them

    def stop() -> None:
        run_timed([*compose, "stop"])

    def timed_start(start: Callable[[], float]) -> float:
        stop()
        began = time.perf_counter()
        start()
        first_query(url)
        return time.perf_counter() - began

    run_timed([*compose, "up", "--detach", "--build", "--wait"])  # build + initialise once
    ours: list[float] = []
    theirs: list[float] = []
    try:
        for _ in range(args.repeat):
            ours.append(timed_start(lambda: run_timed(invoke)))
            theirs.append(timed_start(lambda: run_timed([*compose, "up", "--detach", "--wait"])))
    finally:
        run_timed([*compose, "down", "--volumes"])
    print(report("start a stopped container until the first query succeeds",
                 ours, theirs, "compose --wait", 1))  # fmt: skip


if __name__ == "__main__":
    main()
