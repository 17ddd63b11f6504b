"""Discovery of numbered migration files, strict before any SQL is sent.

Names: `N_name.sql` (+ `N_name.down.sql`), and golang-migrate's `N_name.up.sql` /
`N_name.down.sql` pairs as they are. The leading number is the version; after `N_` any name
is accepted but path separators and control characters. Every problem in every file is
collected and reported together, each with its remedy, before anything runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pgkura.errors import MigrationError
from pgkura.migrations.parse_cache import ParseCache
from pgkura.migrations.sql_text import Statement, line_at, line_col
from pgkura.migrations.version_table import VersionTableName

if TYPE_CHECKING:
    from pgkura.config.settings import Settings

FILE_PATTERN = re.compile(
    r"^(?P<version>[0-9]+)_(?P<name>[^/\\\x00-\x1f\x7f]+?)(?:\.(?P<kind>up|down))?\.sql$"
)
NO_TRANSACTION = "pgkura:no-transaction"
_DIRECTIVE_LINES = 5
MAX_VERSION = 2**63 - 1  # the version column is a bigint
_BOM = "\ufeff"


class MigrationProblems(MigrationError):
    """Everything wrong with a migrations directory, found in one pass."""

    def __init__(self, directory: Path, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        super().__init__(
            f"{count} in {directory}; nothing was run:\n" + "\n".join(f"  - {p}" for p in problems)
        )


def normalize(text: str) -> str:
    """The text every checksum and every statement is computed from: no BOM, LF line ends."""
    return text.removeprefix(_BOM).replace("\r\n", "\n").replace("\r", "\n")


def checksum(text: str) -> str:
    """SHA-256 of the normalized text, so a CRLF checkout is not mistaken for an edit."""
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SqlFile:
    """One migration script (up or down), read and validated."""

    path: Path
    sql: str  # normalized
    checksum: str
    no_transaction: bool
    statements: tuple[Statement, ...]  # split once, by the real grammar

    def where(self, offset: int) -> str:
        line, col = line_col(self.sql, offset)
        return f"{self.path.name}:{line}:{col}"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: SqlFile
    down: SqlFile | None

    @property
    def label(self) -> str:
        """The file's stem as written, e.g. 003_add_users (numbers keep their zeros)."""
        return self.up.path.name.removesuffix(".sql").removesuffix(".up")


def read_sql_file(
    path: Path,
    problems: list[str],
    version_table: VersionTableName | None = None,
    cache: ParseCache | None = None,
) -> SqlFile | None:
    """Read and check one file, adding to `problems` everything psycopg could not run
    faithfully (file and line, and the remedy); None when it cannot be read at all."""
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"{path.name}: not UTF-8 text (byte {exc.start}); save it as UTF-8")
        return None
    sql = normalize(raw)
    file = SqlFile(path, sql, checksum(raw), _has_no_transaction_directive(sql), ())
    slices = cache.get(file.checksum) if cache is not None else None
    if slices is None:
        before = len(problems)
        statements = _parse(file, problems, version_table)
        if cache is not None and len(problems) == before:
            cache.put(file.checksum, [(s.offset, s.offset + len(s.text)) for s in statements])
    else:
        statements = tuple(Statement(sql[start:end], start) for start, end in slices)
    return dataclasses.replace(file, statements=statements)


def _parse(
    file: SqlFile, problems: list[str], version_table: VersionTableName | None
) -> tuple[Statement, ...]:
    """Split by the real grammar and check every statement (the slow path: pglast)."""
    from pgkura.migrations.sql_text import (
        caret,
        has_code,
        meta_command_offsets,
        split_statements,
    )

    sql = file.sql
    split = split_statements(sql)
    before = len(problems)
    # Only text the grammar rejected needs the scanner: a psql meta-command is never valid SQL.
    for offset in [] if split.parsed else meta_command_offsets(sql):
        line, _ = line_col(sql, offset)
        problems.append(
            f"{file.path.name}:{line}: psql meta-command '{line_at(sql, line).strip()}' is not "
            "SQL; migrations run through a driver, not psql. Write it as SQL "
            "(e.g. SET instead of \\set, one file per database instead of \\c)."
        )
    if split.error and len(problems) == before:  # PostgreSQL 18's own grammar (pglast 8)
        message, offset = split.error
        line, col = line_col(sql, offset)
        text = line_at(sql, line)
        problems.append(f"{file.path.name}:{line}:{col}: {message}\n    {text}\n    "
                        f"{caret(text, col)}")  # fmt: skip
    # A file of comments only is a valid no-op (a down file for an irreversible step, say).
    statements = split.statements if split.parsed or has_code(sql) else ()
    for stmt in statements:
        problems += _statement_problems(file, stmt, version_table)
    return statements


def _statement_problems(
    file: SqlFile, stmt: Statement, version_table: VersionTableName | None
) -> list[str]:
    from pgkura.migrations.sql_rules import no_transaction_reason, touches_version_table
    from pgkura.migrations.sql_text import is_transaction_control

    where = file.where(stmt.offset).rsplit(":", 1)[0]  # file:line
    line = line_at(file.sql, line_col(file.sql, stmt.offset)[0]).strip()
    found = []
    if not file.no_transaction:
        if is_transaction_control(stmt):
            found.append(
                f"{where}: '{line}': pgkura runs each file in its own transaction; remove "
                f"BEGIN/COMMIT, or put '-- {NO_TRANSACTION}' on the first line to manage "
                "transactions yourself."
            )
        reason = no_transaction_reason(stmt.text)
        if reason:
            found.append(
                f"{where}: {reason} cannot run inside a transaction block, and pgkura runs "
                f"this file in one. Put '-- {NO_TRANSACTION}' on its first line (its statements "
                "then commit one by one; keep it to this statement and make it idempotent, "
                "e.g. IF NOT EXISTS)."
            )
    if version_table is not None:
        verb = touches_version_table(stmt.text, version_table)
        if verb:
            found.append(
                f"{where}: {verb} on {version_table.schema}.{version_table.table}, pgkura's own "
                "version table. If your application has a table of that name, give pgkura "
                "another one (PGKURA_MIGRATIONS_TABLE, or PGKURA_MIGRATIONS_SCHEMA) before "
                "migrating; pgkura's bookkeeping is not a migration's to change."
            )
    return found


def _has_no_transaction_directive(sql: str) -> bool:
    for line in sql.split("\n")[:_DIRECTIVE_LINES]:
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            return False
        if stripped.removeprefix("--").strip().lower() == NO_TRANSACTION:
            return True
    return False


def snake_case(text: str) -> str:
    """The a-z0-9 words of `text` joined by `_` (what a migration file name may hold)."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _suggested_name(bad: str, files: list[Path]) -> str:
    """A valid name for `bad`: its own number if no other file uses it, else the next free
    one; its words in snake_case."""
    numbered = [re.match(r"^(\d+)", p.name) for p in files if p.name != bad]
    taken = {int(m[1]) for m in numbered if m}
    own = re.match(r"^(\d+)", bad)
    down = bad.lower().endswith(".down.sql")
    stem = bad[: -len(".down.sql")] if down else bad.rsplit(".", 1)[0]
    words = snake_case(stem[own.end() if own else 0 :])
    number = int(own[1]) if own and int(own[1]) not in taken else max(taken, default=0) + 1
    width = len(own[1]) if own else 3
    return f"{number:0{width}d}_{words or 'migration'}{'.down' if down else ''}.sql"


def discover(directory: Path, version_table: VersionTableName | None = None) -> list[Migration]:
    """All migrations in `directory`, sorted by number; MigrationProblems listing everything
    irregular in every file at once."""
    if not directory.is_dir():
        raise MigrationError(
            f"migrations directory {directory} does not exist; create it or set "
            "PGKURA_MIGRATIONS_DIR"
        )
    problems: list[str] = []
    ups: dict[int, Path] = {}
    downs: dict[int, Path] = {}
    names: dict[int, str] = {}
    files = [p for p in sorted(directory.iterdir()) if not p.name.startswith(".")]
    for path in files:
        if path.is_dir() or path.suffix.lower() != ".sql":
            continue
        match = FILE_PATTERN.match(path.name)
        if not match:
            problems.append(
                f"{path.name}: name does not match N_name.sql (or N_name.down.sql, or "
                "golang-migrate's N_name.up.sql / N_name.down.sql; lowercase .sql); rename it, "
                f"e.g. {_suggested_name(path.name, files)}"
            )
            continue
        version = int(match["version"])
        if not 0 < version <= MAX_VERSION:
            problems.append(f"{path.name}: version must be between 1 and {MAX_VERSION}")
            continue
        bucket = downs if match["kind"] == "down" else ups
        if version in bucket:
            problems.append(
                f"duplicate migration number {version}: {bucket[version].name} and "
                f"{path.name}; renumber one of them"
            )
            continue
        bucket[version] = path
        if names.setdefault(version, match["name"]) != match["name"]:
            problems.append(
                f"{path.name}: its up and down files must share a name "
                f"({ups.get(version, path).name} / {version}_{names[version]}.down.sql)"
            )
    for version, path in downs.items():
        if version not in ups:
            problems.append(f"{path.name}: down file without its up file")
    # Unreadable files are problems: once none are left, every path below is in `read`.
    cache = ParseCache(directory, str(version_table))
    read = {
        path: file
        for path in sorted([*ups.values(), *downs.values()])
        if (file := read_sql_file(path, problems, version_table, cache)) is not None
    }
    cache.save()
    if problems:
        raise MigrationProblems(directory, problems)
    migrations = []
    for version in sorted(ups):
        down = read[downs[version]] if version in downs else None
        migrations.append(Migration(version, names[version], read[ups[version]], down))
    return migrations


def project_migrations(settings: Settings) -> list[Migration]:
    """The project's migrations, checked against its version table's name too."""
    table = VersionTableName(settings.migrations_schema, settings.migrations_table)
    return discover(settings.migrations_dir, table)
