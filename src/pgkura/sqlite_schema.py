"""What a SQLite database holds, and the PostgreSQL types its columns become.

SQLite types loosely: a column's declared type is only an affinity, and any value may sit in
any column. So a type is chosen from the declared type *and* the values actually stored:
INTEGER PRIMARY KEY becomes an identity column; booleans, timestamps and JSON stored as text or
numbers are recognised when every value fits; BLOB becomes bytea. Where the values do not fit
the declared type (or the column declares none and holds several kinds), the column becomes
text and the loss of type is reported by table and column: nothing is changed silently.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$"
)
_BOOL_TEXT = {"true": True, "false": False, "t": True, "f": False}
SQLITE_MAGIC = b"SQLite format 3\x00"


class NotSqlite(ValueError):
    """The file is not a SQLite database."""


@dataclass
class Column:
    name: str
    declared: str
    notnull: bool
    pk: int  # position in the primary key, 0 when not part of it
    pg_type: str = "text"
    identity: bool = False
    convert: Callable[[Any], Any] = field(default=lambda v: v, repr=False)
    note: str = ""  # why the type differs from the declaration, when it does


@dataclass
class Index:
    name: str
    unique: bool
    columns: list[str]
    origin: str  # c: CREATE INDEX, u: a UNIQUE constraint, pk: the primary key


@dataclass
class ForeignKey:
    columns: list[str]
    table: str
    to: list[str]
    on_delete: str
    on_update: str


@dataclass
class Table:
    name: str
    columns: list[Column]
    rows: int
    indexes: list[Index] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # what could not be carried over, and why

    @property
    def primary_key(self) -> list[str]:
        return [c.name for c in sorted(self.columns, key=lambda c: c.pk) if c.pk]


def open_readonly(path: Path) -> sqlite3.Connection:
    """The database at `path`, read-only; NotSqlite for anything else."""
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise NotSqlite(f"cannot read {path}: {exc.strerror}") from None
    if head != SQLITE_MAGIC:
        raise NotSqlite(f"{path} is not a SQLite database (its first bytes are not SQLite's)")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.text_factory = _text
    return conn


def _text(raw: bytes) -> str | bytes:
    """TEXT as str; text that is not UTF-8 stays bytes (reported, then stored as bytea)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def read_tables(conn: sqlite3.Connection) -> list[Table]:
    """Every user table (not SQLite's own, not virtual tables), with its types decided."""
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
        "ESCAPE '\\' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name"
    )]  # fmt: skip
    return [_table(conn, name) for name in names]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table(conn: sqlite3.Connection, name: str) -> Table:
    info = conn.execute(f"PRAGMA table_xinfo({_q(name)})").fetchall()
    columns, skipped = [], []
    for _cid, col, declared, notnull, _default, pk, hidden in info:
        if hidden:  # generated columns: PostgreSQL would need the expression; values are copied
            skipped.append(f"{col}: a generated column; its values are copied as plain data")
        columns.append(Column(col, declared or "", bool(notnull), pk))
    rows = conn.execute(f"SELECT count(*) FROM {_q(name)}").fetchone()[0]  # noqa: S608 - quoted
    table = Table(name, columns, rows, skipped=skipped)
    for column in columns:
        _decide(conn, table, column)
    table.indexes = _indexes(conn, table)
    table.foreign_keys = _foreign_keys(conn, name)
    return table


def _affinity(declared: str) -> str:
    """SQLite's own rules (section 3.1 of its datatype documentation)."""
    d = declared.upper()
    if "INT" in d:
        return "integer"
    if any(w in d for w in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if d == "" or "BLOB" in d:
        return "blob"
    if any(w in d for w in ("REAL", "FLOA", "DOUB")):
        return "real"
    return "numeric"


def _values(conn: sqlite3.Connection, table: str, column: str) -> Iterable[Any]:
    return (r[0] for r in conn.execute(
        f"SELECT {_q(column)} FROM {_q(table)} WHERE {_q(column)} IS NOT NULL"  # noqa: S608
    ))  # fmt: skip


def _decide(conn: sqlite3.Connection, table: Table, column: Column) -> None:
    """Choose the column's PostgreSQL type and the conversion of its values, in one pass over
    the stored values (memory stays flat however many rows there are)."""
    declared = column.declared.upper()
    affinity = _affinity(column.declared)
    candidates = [(t, f) for matches, t, f in _RECOGNISED if matches(declared)]
    if affinity == "numeric":
        candidates.append(("numeric", _decimal))
    fitting = [True] * len(candidates)
    kinds: set[type] = set()
    nul = False
    for value in _values(conn, table.name, column.name):
        kinds.add(type(value))
        nul = nul or (isinstance(value, str) and "\x00" in value)
        for i, (_type, convert) in enumerate(candidates):
            fitting[i] = fitting[i] and _fits(convert, value)
    single_pk = column.pk == 1 and len([c for c in table.columns if c.pk]) == 1
    if single_pk and declared == "INTEGER" and kinds <= {int}:
        column.pg_type, column.identity = "bigint", True  # the rowid: an identity column
        return
    chosen = [c for c, ok in zip(candidates, fitting, strict=True) if ok]
    if kinds and chosen:
        column.pg_type, column.convert = chosen[0]
    elif affinity == "integer" and kinds <= {int}:
        column.pg_type = "bigint"
    elif affinity == "real" and kinds <= {int, float}:
        column.pg_type, column.convert = "double precision", float
    elif affinity == "numeric" and not kinds:
        column.pg_type = "numeric"
    elif kinds == {bytes}:
        column.pg_type = "bytea"
        if affinity != "blob":
            column.note = f"declared {column.declared}, holds only BLOBs (or non-UTF-8 text): bytea"
    elif kinds <= {str} and nul:
        column.pg_type, column.convert = "bytea", _utf8
        column.note = "text with NUL characters, which PostgreSQL text cannot hold: bytea (UTF-8)"
    elif kinds <= {str}:
        column.pg_type = "text"
        if affinity not in ("text", "blob") or (affinity == "blob" and column.declared):
            column.note = f"declared {column.declared or 'without a type'}, holds text: text"
    else:
        shown = ", ".join(sorted(k.__name__ for k in kinds))
        column.pg_type, column.convert = "text", _as_text
        column.note = (f"declared {column.declared or 'without a type'} but holds {shown}: "
                       "stored as text")  # fmt: skip


def _fits(convert: Callable[[Any], Any], value: Any) -> bool:
    try:
        convert(value)
    except (ValueError, TypeError, InvalidOperation, OverflowError):
        return False
    return True


def _boolean(value: Any) -> bool:
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _BOOL_TEXT:
        return _BOOL_TEXT[value.strip().lower()]
    raise ValueError("not a boolean")


def _timestamp(value: Any) -> datetime:
    """ISO-8601 text (SQLite's own date functions write it), or Unix time in seconds."""
    if isinstance(value, str) and _ISO_TIME.match(value.strip()):
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 2**33:
        return datetime.fromtimestamp(value, tz=UTC)
    raise ValueError("not a timestamp")


def _date(value: Any) -> date:
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        return date.fromisoformat(value.strip())
    raise ValueError("not a date")


def _json(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not JSON text")
    json.loads(value)
    return value


def _uuid(value: Any) -> uuid.UUID:
    if isinstance(value, bytes) and len(value) == 16:
        return uuid.UUID(bytes=value)
    if isinstance(value, str):
        return uuid.UUID(value)
    raise ValueError("not a UUID")


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("not a number")
    number = Decimal(str(value).strip())
    if not number.is_finite():
        raise ValueError("not finite")
    return number


def _utf8(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    return str(value)


def _declares(*words: str) -> Callable[[str], bool]:
    return lambda declared: any(w in declared for w in words)


# Declared types with a better PostgreSQL type when every stored value fits (in this order)
_RECOGNISED: list[tuple[Callable[[str], bool], str, Callable[[Any], Any]]] = [
    (_declares("BOOL"), "boolean", _boolean),
    (_declares("TIMESTAMP", "DATETIME"), "timestamp with time zone", _timestamp),
    (lambda d: d == "DATE", "date", _date),
    (_declares("JSON"), "jsonb", _json),
    (_declares("UUID", "GUID"), "uuid", _uuid),
]


def _indexes(conn: sqlite3.Connection, table: Table) -> list[Index]:
    out = []
    for _seq, name, unique, origin, partial in conn.execute(f"PRAGMA index_list({_q(table.name)})"):
        if origin == "pk":
            continue  # the primary key is made from the columns' pk positions
        columns = [r[2] for r in conn.execute(f"PRAGMA index_info({_q(name)})")]
        if partial or any(c is None for c in columns):
            what = "a partial index" if partial else "an index on expressions"
            table.skipped.append(f"index {name}: {what}; recreate it by hand")
            continue
        out.append(Index(name, bool(unique), columns, origin))
    return out


def _foreign_keys(conn: sqlite3.Connection, table: str) -> list[ForeignKey]:
    found: dict[int, ForeignKey] = {}
    for fk_id, _seq, parent, source, target, on_update, on_delete, _match in conn.execute(
        f"PRAGMA foreign_key_list({_q(table)})"
    ):
        key = found.setdefault(fk_id, ForeignKey([], parent, [], on_delete, on_update))
        key.columns.append(source)
        key.to.append(target)
    return list(found.values())
