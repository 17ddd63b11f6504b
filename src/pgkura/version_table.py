"""The `schema_migrations` table: one row per applied (or baselined) migration file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

_MS_SINCE_TRANSACTION_START = sql.SQL(
    "(extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint"
)


@dataclass(frozen=True)
class AppliedRow:
    version: int
    name: str
    checksum: str
    applied_at: datetime
    duration_ms: int
    applied_by: str
    how: str  # "applied", "baseline" or "repaired"


class VersionTable:
    """Reads and writes the version rows; identifiers are always quoted, never interpolated."""

    def __init__(self, schema: str, table: str) -> None:
        self.schema = schema
        self.table = table
        self.ident = sql.Identifier(schema, table)

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}"

    def ensure(self, conn: psycopg.Connection) -> None:
        """Create the schema and table on first use (callers hold the runner lock)."""
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
        conn.execute(
            sql.SQL(
                """CREATE TABLE IF NOT EXISTS {} (
                    version     bigint PRIMARY KEY CHECK (version > 0),
                    name        text NOT NULL,
                    checksum    text NOT NULL,
                    applied_at  timestamptz NOT NULL DEFAULT now(),
                    duration_ms bigint NOT NULL DEFAULT 0,
                    applied_by  text NOT NULL DEFAULT current_user,
                    how         text NOT NULL DEFAULT 'applied'
                                CHECK (how IN ('applied', 'baseline', 'repaired'))
                )"""
            ).format(self.ident)
        )

    def exists(self, conn: psycopg.Connection) -> bool:
        row = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL",
            (sql.Identifier(self.schema, self.table).as_string(conn),),
        ).fetchone()
        return bool(row and row[0])

    def rows(self, conn: psycopg.Connection) -> dict[int, AppliedRow]:
        if not self.exists(conn):
            return {}
        cur = conn.execute(
            sql.SQL(
                "SELECT version, name, checksum, applied_at, duration_ms, applied_by, how "
                "FROM {} ORDER BY version"
            ).format(self.ident)
        )
        return {row[0]: AppliedRow(*row) for row in cur}

    def record(
        self,
        conn: psycopg.Connection,
        version: int,
        name: str,
        checksum: str,
        duration_ms: int | None,
        how: str = "applied",
    ) -> None:
        """Insert the row; without `duration_ms` the server measures the time since the
        transaction began (the file ran in it, pipelined, so the client cannot)."""
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (version, name, checksum, duration_ms, how) VALUES (%s, %s, %s, "
                "COALESCE(%s::bigint, {}), %s)"
            ).format(self.ident, _MS_SINCE_TRANSACTION_START),
            (version, name, checksum, duration_ms, how),
        )

    def forget(self, conn: psycopg.Connection, version: int) -> None:
        conn.execute(sql.SQL("DELETE FROM {} WHERE version = %s").format(self.ident), (version,))

    def update_checksum(self, conn: psycopg.Connection, version: int, checksum: str) -> None:
        conn.execute(
            sql.SQL("UPDATE {} SET checksum = %s, how = 'repaired' WHERE version = %s").format(
                self.ident
            ),
            (checksum, version),
        )
