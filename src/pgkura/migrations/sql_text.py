"""SQL text as PostgreSQL's own parser (pglast) sees it: statements, meta-commands, positions.

pglast is imported by the functions that parse: importing it costs more than a whole run with
nothing to do, which never needs it (see parse_cache)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_BACKSLASH = "ASCII_92"
_COMMENTS = {"SQL_COMMENT", "C_COMMENT"}
# split_statements() yields statements without their leading comments, so a match at the
# start is the statement's own first keyword; ROLLBACK TO SAVEPOINT stays allowed.
_TRANSACTION_CONTROL = re.compile(
    r"^(BEGIN|START\s+TRANSACTION|COMMIT|END|ABORT|ROLLBACK(?!\s+TO\b))\b", re.IGNORECASE
)


@dataclass(frozen=True)
class Statement:
    """One statement of a file and where it starts (0-based character offset)."""

    text: str
    offset: int


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a 0-based character offset."""
    before = text[:offset]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1


def line_at(text: str, line: int) -> str:
    lines = text.split("\n")
    return lines[line - 1] if 0 < line <= len(lines) else ""


def has_code(sql: str) -> bool:
    """False when `sql` holds only whitespace and comments; text the scanner rejects (an
    unterminated string, say) counts as code, so the server reports it with its position."""
    from pglast import parser

    try:
        return any(tok.name not in _COMMENTS for tok in parser.scan(sql))
    except parser.ParseError:
        return True


def meta_command_offsets(sql: str) -> list[int]:
    """Offsets of backslashes outside strings and comments: psql meta-commands such as \\c."""
    from pglast import parser

    try:
        return [tok.start for tok in parser.scan(sql) if tok.name == _BACKSLASH]
    except parser.ParseError:
        return []


@dataclass(frozen=True)
class Split:
    """A file's top-level statements; when PostgreSQL 18's grammar rejects the text, it comes
    back whole with the parser's message and the offset it points at (`error`)."""

    statements: tuple[Statement, ...]
    error: tuple[str, int] | None = None

    @property
    def parsed(self) -> bool:
        return self.error is None


def split_statements(sql: str) -> Split:
    """Split by the real grammar (dollar quotes, strings, comments), in one pass."""
    from pglast import parser

    try:
        parts = parser.split(sql, only_slices=True)
    except parser.ParseError as exc:  # args: the message, the offset of the token it rejects
        message, offset = exc.args[0], exc.args[1] if len(exc.args) > 1 else 0
        return Split((Statement(sql, 0),), error=(str(message), int(offset)))
    return Split(tuple(Statement(sql[p], p.start) for p in parts if sql[p].strip()))


def is_transaction_control(stmt: Statement) -> bool:
    """BEGIN / START TRANSACTION / COMMIT / END / ROLLBACK / ABORT at the top level: in a file
    that pgkura wraps in a transaction they would commit half of it."""
    return bool(_TRANSACTION_CONTROL.match(stmt.text))


def caret(text: str, col: int) -> str:
    """Padding that lines a caret up under column `col`, tabs and wide (CJK) characters too."""
    return "".join(_pad(c) for c in text[: col - 1]) + "^"


def _pad(char: str) -> str:
    if char == "\t":
        return char
    return "  " if unicodedata.east_asian_width(char) in ("W", "F") else " "
