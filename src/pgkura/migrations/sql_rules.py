"""What a migration's statements may not do, found with PostgreSQL's own parser (pglast):
statements that cannot run inside a transaction block, and writes to pgkura's version table.

Parsing a whole history statement by statement costs more than the rest of validation, so each
statement is parsed only when a keyword that could make it a problem appears in its text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ObjectType, ReindexObjectType
from pglast.parser import ParseError

from pgkura.migrations.version_table import VersionTableName

_NEEDS_A_LOOK = re.compile(
    r"\b(CONCURRENTLY|VACUUM|DATABASE|SYSTEM|TABLESPACE|CLUSTER|SUBSCRIPTION)\b", re.IGNORECASE
)


def no_transaction_reason(text: str) -> str | None:
    """Why the statement cannot run inside a transaction block, or None."""
    if not _NEEDS_A_LOOK.search(text):
        return None
    return next(map(_outside_transaction, _parsed(text)), None)


def _parsed(text: str) -> Iterator[ast.Node]:
    try:
        yield from (raw.stmt for raw in parse_sql(text) if raw.stmt is not None)
    except ParseError:
        return  # the server reports it, with its position, when the file runs


def _outside_transaction(stmt: ast.Node) -> str | None:
    if isinstance(stmt, ast.IndexStmt) and stmt.concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if isinstance(stmt, ast.DropStmt) and stmt.concurrent:
        return "DROP INDEX CONCURRENTLY"
    if isinstance(stmt, ast.ReindexStmt):
        if any(p.defname == "concurrently" for p in stmt.params or ()):
            return "REINDEX CONCURRENTLY"
        if stmt.kind in (
            ReindexObjectType.REINDEX_OBJECT_DATABASE,
            ReindexObjectType.REINDEX_OBJECT_SYSTEM,
        ):
            return f"REINDEX {stmt.kind.name.rsplit('_', 1)[1]}"
    if isinstance(stmt, ast.AlterDatabaseStmt) and any(
        o.defname == "tablespace" for o in stmt.options or ()
    ):
        return "ALTER DATABASE ... SET TABLESPACE"
    if isinstance(stmt, ast.VacuumStmt) and stmt.is_vacuumcmd:
        return "VACUUM"
    if isinstance(stmt, ast.ClusterStmt) and stmt.relation is None:
        return "CLUSTER without a table"
    if isinstance(stmt, ast.AlterTableStmt) and any(
        c.subtype == AlterTableType.AT_DetachPartition and getattr(c.def_, "concurrent", False)
        for c in stmt.cmds or ()
    ):
        return "DETACH PARTITION CONCURRENTLY"
    simple = {
        ast.CreatedbStmt: "CREATE DATABASE",
        ast.DropdbStmt: "DROP DATABASE",
        ast.AlterSystemStmt: "ALTER SYSTEM",
        ast.CreateTableSpaceStmt: "CREATE TABLESPACE",
        ast.DropTableSpaceStmt: "DROP TABLESPACE",
        ast.CreateSubscriptionStmt: "CREATE SUBSCRIPTION",
        ast.DropSubscriptionStmt: "DROP SUBSCRIPTION",
    }
    return simple.get(type(stmt))


def touches_version_table(text: str, table: VersionTableName) -> str | None:
    """What the statement does to pgkura's version table (ALTER, DROP, RENAME, TRUNCATE,
    INSERT, UPDATE, DELETE), or None."""
    if table.table.lower() not in text.lower():
        return None
    return next(filter(None, (_write(stmt, table) for stmt in _parsed(text))), None)


def _write(stmt: ast.Node, table: VersionTableName) -> str | None:
    relations: dict[type, str] = {
        ast.AlterTableStmt: "ALTER TABLE",
        ast.RenameStmt: "RENAME",
        ast.InsertStmt: "INSERT INTO",
        ast.UpdateStmt: "UPDATE",
        ast.DeleteStmt: "DELETE FROM",
    }
    verb = relations.get(type(stmt))
    if verb and table.named_by(getattr(stmt, "relation", None)):
        return verb
    if isinstance(stmt, ast.TruncateStmt) and any(map(table.named_by, stmt.relations or ())):
        return "TRUNCATE"
    if (
        isinstance(stmt, ast.DropStmt)
        and stmt.removeType == ObjectType.OBJECT_TABLE
        and any(_names(table, obj) for obj in stmt.objects or () if isinstance(obj, tuple))
    ):
        return "DROP TABLE"
    return None


def _names(table: VersionTableName, name: tuple[ast.Node, ...]) -> bool:
    parts = [getattr(p, "sval", None) for p in name]
    if parts[-1:] != [table.table]:
        return False
    return parts[-2] == table.schema if len(parts) > 1 else table.schema == "public"
