"""Restore drills: proof that a backup restores, on the same server, without touching the
database it came from."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from psycopg import sql

from pgkura.backups.restore import restore
from pgkura.config.settings import Settings
from pgkura.connect.connection import connect
from pgkura.connect.databases import drop_database
from pgkura.progress import QUIET, Reporter

Log = Callable[[str], None]


def restore_test(
    settings: Settings, path: Path, log: Log, progress: Reporter = QUIET
) -> tuple[int, int]:
    """Restore into a scratch database on the same server, count tables and rows, drop it.
    Each table's own rows only (ONLY): a partitioned or inherited parent would count its
    partitions' or children's rows a second time."""
    scratch = f"pgkura_verify_{secrets.token_hex(4)}"
    try:
        restore(settings, path, dbname=scratch, create=True, safety_backup=False, log=log,
                progress=progress)  # fmt: skip
        with connect(settings.target.for_database(scratch), purpose="verify") as conn:
            tables = conn.execute(
                "SELECT schemaname, tablename FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            ).fetchall()
            rows = 0
            for schema, table in tables:
                query = sql.SQL("SELECT count(*) FROM ONLY {}").format(
                    sql.Identifier(schema, table)
                )
                count = conn.execute(query).fetchone()
                rows += count[0] if count else 0
        return len(tables), rows
    finally:
        drop_database(settings, scratch)
