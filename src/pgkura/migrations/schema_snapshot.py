"""`db/schema.sql`: the schema built from init.sql + every migration, as reviewers read it.

pg_dump's output is made deterministic (a fixed \\restrict key, no owners, no privileges, no
version banner) and the version rows are appended, so the same migrations give the same bytes on
every run and machine, and a pull request shows its schema change as a diff.
"""

from __future__ import annotations

import difflib
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from pgkura.connect.connection import connect
from pgkura.dsn import Target
from pgkura.engines.pg_tools import Tool
from pgkura.errors import MigrationError, PgkuraError
from pgkura.migrations.version_table import VersionTable

Log = Callable[[str], None]
_BANNER = re.compile(r"^-- Dumped (?:from database|by pg_dump) version .*\n", re.MULTILINE)
_OBJECT = re.compile(
    r"^--\n-- (?:Data for )?Name: (?P<name>.+?); Type: (?P<type>.+?); Schema: (?P<schema>.+?);"
    r" Owner: .*\n--\n",
    re.MULTILINE,
)
_ROWS_HEADER = "\n--\n-- pgkura: the migrations this schema reflects\n--\n\n"
DUMP_OPTIONS = ("--schema-only", "--no-owner", "--no-privileges", "--restrict-key=pgkura")


def run_sql_file(psql: Tool, path: Path) -> None:
    """Run a file as the image's entrypoint runs init scripts: psql, stop at the first error."""
    result = subprocess.run(
        psql.command("-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"),
        input=path.read_bytes(),
        env=psql.environment(),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise MigrationError(f"{path} failed:\n{result.stderr.decode(errors='replace').strip()}")


def dump_schema(pg_dump: Tool) -> str:
    """The schema, deterministic: fixed \\restrict key, no owners or grants, no banner."""
    result = subprocess.run(
        pg_dump.command(*DUMP_OPTIONS),
        env=pg_dump.environment(),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise PgkuraError(f"pg_dump failed: {result.stderr.decode(errors='replace').strip()}")
    return _BANNER.sub("", result.stdout.decode())


def version_rows(target: Target, table: VersionTable) -> str:
    """INSERTs for the version rows (version, name, checksum: nothing that varies by run)."""
    with connect(target, purpose="schema") as conn:
        rows = sorted(table.rows(conn).values(), key=lambda r: r.version)
        values = ",\n".join(
            sql.SQL("    ({}, {}, {})")
            .format(sql.Literal(r.version), sql.Literal(r.name), sql.Literal(r.checksum))
            .as_string(conn)
            for r in rows
        )
        if not rows:
            return ""
        insert = sql.SQL("INSERT INTO {} (version, name, checksum) VALUES\n").format(table.ident)
        return insert.as_string(conn) + values + ";\n"


def snapshot(schema: str, rows: str) -> str:
    return schema + _ROWS_HEADER + (rows or "-- (none)\n")


def schema_part(snapshot_text: str) -> str:
    """The pg_dump part of a snapshot, without the appended version rows."""
    return snapshot_text.split(_ROWS_HEADER, 1)[0]


def diff(expected: str, actual: str, expected_name: str, actual_name: str) -> str:
    lines = difflib.unified_diff(
        expected.splitlines(), actual.splitlines(), expected_name, actual_name, lineterm=""
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class Drift:
    """How a live schema differs from the snapshot, object by object."""

    added: list[str]  # in the live database only
    removed: list[str]  # in schema.sql only
    changed: dict[str, str]  # object → unified diff of its definition

    @property
    def clean(self) -> bool:
        return not (self.added or self.removed or self.changed)


def objects(dump: str) -> dict[str, str]:
    """pg_dump's objects by 'TYPE schema.name', each with its definition text."""
    found: dict[str, str] = {}
    matches = list(_OBJECT.finditer(dump))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(dump)
        body = dump[m.end() : end]
        body = body.split("\n\\unrestrict", 1)[0].strip()
        schema = "" if m["schema"] == "-" else f"{m['schema']}."  # extensions have none
        found[f"{m['type']} {schema}{m['name']}"] = body
    return found


def compare(snapshot_text: str, live_dump: str) -> Drift:
    want, have = objects(schema_part(snapshot_text)), objects(live_dump)
    changed = {
        key: diff(want[key], have[key], f"schema.sql: {key}", f"live: {key}")
        for key in sorted(want.keys() & have.keys())
        if want[key] != have[key]
    }
    return Drift(sorted(have.keys() - want.keys()), sorted(want.keys() - have.keys()), changed)
