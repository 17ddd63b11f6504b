"""The `schema_migrations` table: one row per applied (or baselined) migration file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from pgkura.errors import MigrationError

if TYPE_CHECKING:
    from pglast.ast import RangeVar

_MS_SINCE_TRANSACTION_START = sql.SQL(
    "(extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint"
)


OUR_COLUMNS = {"version", "name", "checksum", "applied_at", "duration_ms", "applied_by", "how"}
# The version tables of other tools, by their columns (as each tool creates them).
KNOWN_TABLES = {
    "golang-migrate": {"version", "dirty"},
    "dbmate": {"version"},
    "flyway": {"installed_rank", "version", "description", "type", "script", "checksum",
               "installed_by", "installed_on", "execution_time", "success"},
}  # fmt: skip


def looks_like(columns: set[str]) -> str:
    """Which tool made a table with these columns, in words."""
    for tool, known in KNOWN_TABLES.items():
        if columns == known:
            return f"{tool}'s" + (" (or Rails')" if tool == "dbmate" else "")
    return "another tool's or the application's own table"


@dataclass(frozen=True)
class VersionTableName:
    schema: str
    table: str

    def named_by(self, relation: RangeVar | None) -> bool:
        """Whether `relation` names the table: qualified with its schema, or unqualified while
        the table lives in public (where an unqualified name resolves by default)."""
        if relation is None or relation.relname != self.table:
            return False
        schema = relation.schemaname
        return schema == self.schema if schema else self.schema == "public"


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

    def columns(self, conn: psycopg.Connection) -> set[str]:
        """The table's column names (empty when there is no such table)."""
        cur = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
            "AND NOT attisdropped",
            (self.ident.as_string(conn),),
        )
        return {row[0] for row in cur}

    def require_ours(self, conn: psycopg.Connection) -> None:
        """MigrationError when a table of this name exists but was made by another tool (or
        is the application's own): reading it as pgkura's would fail or, worse, succeed."""
        columns = self.columns(conn)
        if not columns or columns >= OUR_COLUMNS:
            return
        raise MigrationError(
            f"{self} exists but is not pgkura's version table: its columns "
            f"({', '.join(sorted(columns))}) look like {looks_like(columns)}.\n→ to take over "
            "that tool's history, `invoke db.adopt --from TOOL` (it reads the table and leaves "
            "it as it is); to keep them apart, set PGKURA_MIGRATIONS_TABLE (or "
            "PGKURA_MIGRATIONS_SCHEMA) to a name of pgkura's own"
        )

    def rows(self, conn: psycopg.Connection) -> dict[int, AppliedRow]:
        if not self.exists(conn):
            return {}
        self.require_ours(conn)
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
