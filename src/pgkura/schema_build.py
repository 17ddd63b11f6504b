"""Schema snapshots and drift against the real server (the container, or DATABASE_URL)."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from pgkura.config import Settings
from pgkura.connection import wait_until_ready
from pgkura.databases import create_database, drop_database
from pgkura.errors import PgkuraError
from pgkura.migrations import Migrator
from pgkura.pg_tools import choose
from pgkura.schema_snapshot import Drift, compare, dump_schema, run_sql_file, snapshot, version_rows

Log = Callable[[str], None]


def build_snapshot(settings: Settings, log: Log) -> str:
    """init.sql + every migration in a scratch database on the target server, dumped by the
    server's own pg_dump, then dropped."""
    major = wait_until_ready(settings.target, settings.connect_wait_ms) // 10000
    scratch = f"pgkura_schema_{secrets.token_hex(4)}"
    create_database(settings, scratch)
    try:
        target = settings.target.for_database(scratch)
        psql = choose(settings, "psql", major, stdin=True, warn=log, dbname=scratch)
        run_sql_file(psql, settings.init_sql)
        migrator = Migrator(settings, log, target=target)
        migrator.migrate()
        pg_dump = choose(settings, "pg_dump", major, warn=log, dbname=scratch)
        return snapshot(dump_schema(pg_dump), version_rows(target, migrator.table))
    finally:
        drop_database(settings, scratch)


def drift(settings: Settings, log: Log) -> Drift:
    """The live target database against the committed schema snapshot."""
    if not settings.schema_file.is_file():
        raise PgkuraError(
            f"{settings.schema_file} does not exist; create it with `invoke db.dump-schema`"
        )
    major = wait_until_ready(settings.target, settings.connect_wait_ms) // 10000
    pg_dump = choose(settings, "pg_dump", major, warn=log)
    return compare(settings.schema_file.read_text(), dump_schema(pg_dump))
