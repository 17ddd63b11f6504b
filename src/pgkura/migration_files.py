"""Discovery of `NNN_name.sql` / `NNN_name.down.sql` files, strict before any SQL is sent."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from pgkura.errors import MigrationError
from pgkura.sql_text import (
    Statement,
    has_code,
    is_transaction_control,
    line_at,
    line_col,
    meta_command_offsets,
    split_statements,
)

FILE_PATTERN = re.compile(
    r"^(?P<version>[0-9]+)_(?P<name>[a-z0-9]+(?:_[a-z0-9]+)*)(?P<down>\.down)?\.sql$"
)
NO_TRANSACTION = "pgkura:no-transaction"
_DIRECTIVE_LINES = 5
MAX_VERSION = 2**63 - 1  # the version column is a bigint
_BOM = "\ufeff"


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
        return self.up.path.name.removesuffix(".sql")


def read_sql_file(path: Path) -> SqlFile:
    """Read and validate one file; MigrationError naming file and line on anything psycopg
    could not run faithfully."""
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MigrationError(
            f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    sql = normalize(raw)
    split = split_statements(sql)
    # Only text the grammar rejected needs the scanner: a psql meta-command is never valid SQL.
    for offset in [] if split.parsed else meta_command_offsets(sql):
        line, _ = line_col(sql, offset)
        raise MigrationError(
            f"{path}:{line}: psql meta-command {line_at(sql, line).strip()!r} is not SQL; "
            "migrations run through a driver, not psql. Write it as SQL "
            "(e.g. SET instead of \\set, one file per database instead of \\c)."
        )
    empty = not split.statements if split.parsed else not has_code(sql)
    if empty:
        raise MigrationError(f"{path}: the file is empty (only whitespace or comments)")
    statements = split.statements
    no_transaction = _has_no_transaction_directive(sql)
    if not no_transaction:
        for stmt in filter(is_transaction_control, statements):
            line, _ = line_col(sql, stmt.offset)
            raise MigrationError(
                f"{path}:{line}: {line_at(sql, line).strip()!r}: pgkura runs each file in its own "
                "transaction; remove BEGIN/COMMIT, or put "
                f"'-- {NO_TRANSACTION}' on the first line to manage transactions yourself."
            )
    return SqlFile(path, sql, checksum(raw), no_transaction, statements)


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


def discover(directory: Path) -> list[Migration]:
    """All migrations in `directory`, sorted by number; MigrationError on anything irregular."""
    if not directory.is_dir():
        raise MigrationError(
            f"migrations directory {directory} does not exist; create it or set "
            "PGKURA_MIGRATIONS_DIR"
        )
    ups: dict[int, Path] = {}
    downs: dict[int, Path] = {}
    names: dict[int, str] = {}
    files = [p for p in sorted(directory.iterdir()) if not p.name.startswith(".")]
    for path in files:
        if path.is_dir() or path.suffix.lower() != ".sql":
            continue
        match = FILE_PATTERN.match(path.name)
        if not match:
            raise MigrationError(
                f"{path}: name does not match NNN_snake_case_name.sql "
                "(or NNN_snake_case_name.down.sql, lowercase .sql); rename it, e.g. "
                f"{_suggested_name(path.name, files)}"
            )
        version = int(match["version"])
        if not 0 < version <= MAX_VERSION:
            raise MigrationError(f"{path}: version must be between 1 and {MAX_VERSION}")
        bucket = downs if match["down"] else ups
        if version in bucket:
            raise MigrationError(
                f"duplicate migration number {version}: {bucket[version].name} and {path.name}; "
                "renumber one of them"
            )
        bucket[version] = path
        if names.setdefault(version, match["name"]) != match["name"]:
            raise MigrationError(
                f"{path}: its up and down files must share a name "
                f"({version}_{names[version]}.sql / {version}_{names[version]}.down.sql)"
            )
    for version, path in downs.items():
        if version not in ups:
            raise MigrationError(f"{path}: down file without its up file {path.name[:-9]}.sql")
    return [
        Migration(
            version,
            names[version],
            read_sql_file(ups[version]),
            read_sql_file(downs[version]) if version in downs else None,
        )
        for version in sorted(ups)
    ]
