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
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, cast

from pgkura.errors import PgkuraError

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$"
)
_BOOL_TEXT = {"true": True, "false": False, "t": True, "f": False}
SQLITE_MAGIC = b"SQLite format 3\x00"


class NotSqlite(PgkuraError, ValueError):
    """The file is not a SQLite database, or not a whole one."""


def damaged(path: Path, exc: sqlite3.Error | str) -> NotSqlite:
    """One refusal for a file SQLite cannot read through, whichever step found it."""
    return NotSqlite(
        f"{path} is damaged or cut off (SQLite says: {exc}); nothing was imported.\n"
        f"→ use a whole copy, or save what SQLite can read: sqlite3 {path.name} .recover "
        "| sqlite3 recovered.db, then import recovered.db"
    )


def unchanged(value: Any) -> Any:
    return value


@dataclass
class Column:
    name: str
    declared: str
    notnull: bool
    pk: int  # position in the primary key, 0 when not part of it
    default: str | None = None  # the DEFAULT expression as SQLite keeps it
    pg_type: str = "text"
    identity: bool = False
    convert: Callable[[Any], Any] = field(default=unchanged, repr=False)
    note: str = ""  # why the type differs from the declaration, when it does
    plain_form: bool = False  # every value in the form of pg_type's COPY text, or one
    # SQLite or Python writes without converting it (`stream.Rows`)


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
    deferred: bool = False  # DEFERRABLE INITIALLY DEFERRED


@dataclass
class Check:
    name: str | None
    tokens: list[Token]

    @property
    def text(self) -> str:
        return joined(t.text for t in self.tokens)


@dataclass
class View:
    name: str
    tokens: list[Token]  # what follows the name: optional column list, AS, the query


@dataclass
class Source:
    """Everything in the file: tables to import, views to try, and what is left out."""

    tables: list[Table]
    views: list[View]
    left_out: list[str]  # by name, with why


@dataclass
class Table:
    name: str
    columns: list[Column]
    rows: int
    indexes: list[Index] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # what could not be carried over, and why
    fts: str = ""  # the full-text module (fts5, fts4, fts3) when this was a full-text table

    @property
    def primary_key(self) -> list[str]:
        return [c.name for c in sorted(self.columns, key=lambda c: c.pk) if c.pk]


def open_readonly(path: Path) -> sqlite3.Connection:
    """The database at `path`, read-only; NotSqlite for anything else."""
    _header(path)
    conn = connect_readonly(path)
    problems = _quick_check(conn)  # the header alone proves little: a cut-off file fails here
    if problems != "ok":
        conn.close()
        raise damaged(path, problems)
    return conn


def open_and_read(path: Path) -> tuple[sqlite3.Connection, Source]:
    """The database at `path`, read-only, and what it holds. SQLite's quick check of every
    page runs on its own connection while the types are decided (scans that leave a core
    free); its finding comes first: a damaged file is refused whichever step met the damage."""
    _header(path)
    found: list[str] = []
    checker = threading.Thread(target=lambda: found.append(_checked(path)), name="quick-check")
    checker.start()
    conn = connect_readonly(path)
    failure: sqlite3.DatabaseError | None = None
    try:
        source = read_source(conn, path)
    except sqlite3.DatabaseError as exc:
        failure = exc
    finally:
        checker.join()
    if found != ["ok"] or failure is not None:
        conn.close()
        raise damaged(path, found[0] if found != ["ok"] else cast(sqlite3.DatabaseError, failure))
    return conn, source


def _header(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise NotSqlite(f"cannot read {path}: {exc.strerror}") from None
    if head != SQLITE_MAGIC:
        raise NotSqlite(f"{path} is not a SQLite database (its first bytes are not SQLite's)")


def _quick_check(conn: sqlite3.Connection) -> str:
    """ "ok", or what SQLite found wrong."""
    try:
        return "; ".join(r[0] for r in conn.execute("PRAGMA quick_check(3)"))
    except sqlite3.DatabaseError as exc:
        return str(exc)


def _checked(path: Path) -> str:
    conn = connect_readonly(path)
    try:
        return _quick_check(conn)
    finally:
        conn.close()


def connect_readonly(path: Path) -> sqlite3.Connection:
    """Another read-only connection to a file `open_readonly` has checked."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    conn.text_factory = text_or_bytes
    return conn


def text_or_bytes(raw: bytes) -> str | bytes:
    """TEXT as str; text that is not UTF-8 stays bytes (reported, then stored as bytea)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


_FTS_SHADOWS = {
    "fts5": ("content", "data", "idx", "docsize", "config"),
    "fts4": ("content", "segments", "segdir", "docsize", "stat"),
    "fts3": ("content", "segments", "segdir", "docsize", "stat"),
    "rtree": ("node", "rowid", "parent"),
}
_USING = re.compile(r"\bUSING\s+(\w+)\s*(?:\((.*)\))?\s*$", re.I | re.S)


def read_source(conn: sqlite3.Connection, path: Path | None = None) -> Source:
    """Every user table (full-text tables as plain tables of their columns, never their
    shadow tables), the views in creation order, and what is left out. Given the file's
    `path`, the columns' types are decided on several connections at once."""
    master = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
        "ORDER BY rowid"
    ).fetchall()
    shadows = _shadows(conn, master)
    tables, views, left_out = [], [], []
    for kind, name, text in master:
        if kind == "table" and name not in shadows:
            using = _virtual(text)
            module = using.group(1).lower() if using else ""
            if not using:
                tables.append(_table(conn, name, parse_create(text or "")))
            elif module in ("fts3", "fts4", "fts5") and _fts_copyable(using.group(2) or ""):
                tables.append(_table(conn, name, ([], {}), fts=module))
            elif module in ("fts3", "fts4", "fts5"):
                left_out.append(f"{name}: an {module} index over another table's text "
                                "(content=); not carried over: index that table in PostgreSQL "
                                "instead")  # fmt: skip
            else:
                left_out.append(f"{name}: a virtual table ({module}); not carried over")
        elif kind == "view":
            views.append(View(name, _view_body(tokenize(text or ""))))
        elif kind == "trigger":
            left_out.append(f"trigger {name}: not carried over; rewrite it as a PostgreSQL "
                            "trigger function")  # fmt: skip
    tables.sort(key=lambda t: t.name)
    _decide_all(conn, path, tables)
    return Source(tables, views, left_out)


def _decide_all(conn: sqlite3.Connection, path: Path | None, tables: list[Table]) -> None:
    """Every column's type: each a few scans of its table, which SQLite runs without holding
    Python's GIL, so with the file's path they run on up to 4 connections at once (a large
    table's storage classes in ranges of rowids, then a column on each)."""
    if path is None:
        for t in tables:
            kinds = _stored(conn, t)
            for c in t.columns:
                _decide(conn, t, c, kinds[c.name])
        return
    local, opened = threading.local(), []

    def connection() -> sqlite3.Connection:
        if not hasattr(local, "conn"):
            local.conn = connect_readonly(path)
            opened.append(local.conn)
        return cast(sqlite3.Connection, local.conn)

    parts = [(t, where) for t in tables for where in _slices(conn, t)]
    try:
        with ThreadPoolExecutor(min(os.cpu_count() or 1, 4)) as pool:
            found = list(pool.map(lambda part: _stored(connection(), *part), parts))
            stored: dict[str, dict[str, set[str]]] = {t.name: {} for t in tables}
            for (t, _where), kinds in zip(parts, found, strict=True):
                for name, seen in kinds.items():
                    stored[t.name][name] = stored[t.name].get(name, set()) | seen
            work = [(t, c, stored[t.name][c.name]) for t in tables for c in t.columns]
            list(pool.map(lambda item: _decide(connection(), *item), work))
    finally:
        for each in opened:
            each.close()


def _slices(conn: sqlite3.Connection, table: Table, rows: int = 100_000) -> list[str]:
    """WHERE clauses splitting a large table with a rowid into up to four ranges of it (the
    whole table otherwise)."""
    span = rowid_span(conn, table) if table.rows >= rows else None
    if span is None:
        return [""]
    alias, low, high = span
    step = (high - low) // 4 + 1
    return [f" WHERE {alias} BETWEEN {lo} AND {lo + step - 1}" for lo in range(low, high + 1, step)]


def rowid_span(conn: sqlite3.Connection, table: Table) -> tuple[str, int, int] | None:
    """A name of an ordinary table's rowid no column has taken, and its smallest and largest
    value; None for a virtual, empty or WITHOUT ROWID table."""
    named = {c.name.lower() for c in table.columns}
    alias = next((a for a in ("rowid", "_rowid_", "oid") if a not in named), None)
    listed = {r[1]: r for r in conn.execute("PRAGMA table_list") if r[0] == "main"}
    entry = listed.get(table.name)
    if alias is None or table.fts or entry is None or entry[2] != "table" or entry[4]:  # wr
        return None
    bounds = f"SELECT min({alias}), max({alias}) FROM {quoted(table.name)}"  # noqa: S608
    low, high = conn.execute(bounds).fetchone()
    return None if low is None else (alias, low, high)


def _virtual(text: str | None) -> re.Match[str] | None:
    """`USING module(args)` of a CREATE VIRTUAL TABLE; None for an ordinary table."""
    text = text or ""
    return _USING.search(text) if text.upper().startswith("CREATE VIRTUAL") else None


def _shadows(conn: sqlite3.Connection, master: list[tuple[str, str, str]]) -> set[str]:
    """The tables a virtual table keeps its index in: never the user's data."""
    found = set()
    for _kind, name, text in master:
        using = _virtual(text)
        if using:
            found |= {f"{name}_{s}" for s in _FTS_SHADOWS.get(using.group(1).lower(), ())}
    found |= {r[1] for r in conn.execute("PRAGMA table_list") if r[2] == "shadow"}
    return found


def _fts_copyable(args: str) -> bool:
    """A contentless (content='') or external-content table holds no data of its own."""
    for token in tokenize(args):
        if token.kind == "word" and token.text.lower() == "content":
            return False
    return True


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


Parsed = tuple[list["Check"], dict[tuple[str, ...], bool]]  # CHECKs; deferred foreign keys


def _table(conn: sqlite3.Connection, name: str, parsed: Parsed, fts: str = "") -> Table:
    info = conn.execute(f"PRAGMA table_xinfo({quoted(name)})").fetchall()
    columns, skipped = [], []
    for _cid, col, declared, notnull, default, pk, hidden in info:
        if hidden == 1:  # a virtual table's own hidden columns (fts5: the table name, rank)
            continue
        if hidden:  # generated columns: PostgreSQL would need the expression; values are copied
            skipped.append(f"{col}: a generated column; its values are copied as plain data")
        columns.append(Column(col, declared or ("TEXT" if fts else ""), bool(notnull), pk,
                              default))  # fmt: skip
    if fts and "rowid" not in {c.name.lower() for c in columns}:
        columns.insert(0, Column("rowid", "INTEGER", True, 1))  # what joins to other tables
    rows = conn.execute(f"SELECT count(*) FROM {quoted(name)}").fetchone()[0]  # noqa: S608 - quoted
    table = Table(name, columns, rows, checks=parsed[0], skipped=skipped, fts=fts)
    table.indexes = _indexes(conn, table)
    table.foreign_keys = _foreign_keys(conn, name)
    for fk in table.foreign_keys:
        fk.deferred = parsed[1].get((fk.table.lower(), *(c.lower() for c in fk.columns)), False)
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


def _values(conn: sqlite3.Connection, table: str, column: str, where: str) -> sqlite3.Cursor:
    """Each distinct stored value once (by type and bytes: 1 and 1.0, 'a' and 'A' stay apart):
    a type is decided by what values there are, not how often, and SQLite deduplicates far
    faster than Python converts."""
    c = quoted(column)
    return conn.execute(
        f"SELECT v FROM (SELECT DISTINCT typeof({c}) AS kind, {c} COLLATE BINARY AS v "  # noqa: S608
        f"FROM {quoted(table)} WHERE {c} IS NOT NULL AND ({where.format(c)}) IS NOT 1)"
    )


_KINDS = {"integer": int, "real": float, "blob": bytes, "text": str}

# A number whose repr is fixed-point below `{1}` (repr and SQLite agree on the bounds' doubles)
_FIXED = "({0} = 0 OR {0} >= 1e-4 AND {0} < {1} OR {0} <= -1e-4 AND {0} > -{1})"  # abs() overflows

# Values in the one form the type's COPY text takes (a subset of what the Python conversion
# accepts): Python need not look at them, and SQLite or Python writes them without converting.
_SQLITE_FORMS = {
    "boolean": "typeof({0}) = 'integer' AND {0} IN (0, 1)",
    "timestamp with time zone": "typeof({0}) = 'text' AND {0} >= '0001' AND datetime({0}) = {0}",
    "date": "typeof({0}) = 'text' AND {0} >= '0001' AND date({0}) = {0}",
    "numeric": "typeof({0}) = 'integer' OR typeof({0}) = 'real' AND "
    + _FIXED.replace("{1}", "1e16"),
}


def _stored(conn: sqlite3.Connection, table: Table, where: str = "") -> dict[str, set[str]]:
    """The storage classes (typeof) of each column, in one pass over the table (or the part
    `where` selects): SQLite deduplicates the combinations, which are few."""
    kinds = ", ".join(f"typeof({quoted(c.name)})" for c in table.columns)
    found = conn.execute(f"SELECT DISTINCT {kinds} FROM {quoted(table.name)}{where}")  # noqa: S608
    out: dict[str, set[str]] = {c.name: set() for c in table.columns}
    for combination in found:
        for c, kind in zip(table.columns, combination, strict=True):
            out[c.name].add(kind)
    return {name: kinds - {"null"} for name, kinds in out.items()}


def _text_kinds(conn: sqlite3.Connection, table: str, column: str) -> tuple[set[type], bool]:
    """Whether the text values are str (UTF-8) or bytes (not), and whether any str holds NUL:
    whole blocks decoded at once, a value at a time only in a block that fails. Only values
    with a byte outside ASCII or a NUL can fail, so SQLite passes on just those, each once."""
    kinds: set[type] = set()
    nul = False
    conn.text_factory = bytes
    try:
        c, t = quoted(column), quoted(table)
        odd = f"{c} GLOB '*[^\x01-\x7f]*' OR instr(CAST({c} AS BLOB), x'00')"
        plain = conn.execute(f"SELECT 1 FROM {t} WHERE typeof({c}) = 'text' AND NOT ({odd})")  # noqa: S608
        kinds |= {str} if plain.fetchone() else set()  # ASCII without NUL
        cursor = conn.execute(f"SELECT DISTINCT {c} COLLATE BINARY FROM {t} "  # noqa: S608
                              f"WHERE typeof({c}) = 'text' AND ({odd})")  # fmt: skip
        while block := [r[0] for r in cursor.fetchmany(4096)]:
            try:
                nul = nul or "\x00" in b"\n".join(block).decode()
                kinds.add(str)
            except UnicodeDecodeError:
                for value in block:
                    decoded = text_or_bytes(value)
                    kinds.add(type(decoded))
                    nul = nul or (isinstance(decoded, str) and "\x00" in decoded)
    finally:
        conn.text_factory = text_or_bytes
    return kinds, nul


def _fitting(conn: sqlite3.Connection, table: str, column: str, pg_type: str,
             convert: Callable[[Any], Any]) -> tuple[bool, bool]:  # fmt: skip
    """(every value fits the type, every value is in its plain form): Python converts only the
    values outside that form (which SQLite finds), and stops at the first that does not fit.
    A numeric's REAL is plain when its repr is fixed-point (numeric keeps those digits)."""
    form = _SQLITE_FORMS.get(pg_type)
    in_form = form is not None
    for (value,) in _values(conn, table, column, form or "0"):
        if not _fits(convert, value):
            return False, False
        in_form = False
    return True, in_form


def _plain_doubles(conn: sqlite3.Connection, table: str, column: str) -> bool:
    """Whether every number's repr (the shortest text that reads back the same double) is how
    PostgreSQL prints it too, give or take a whole number's ".0": both write fixed-point from
    1e-4 up to 1e15 (repr up to 1e16, where a numeric keeps the digits it is given)."""
    c = quoted(column)
    outside = _FIXED.format(c, "1e15")
    return conn.execute(f"SELECT 1 FROM {quoted(table)} WHERE typeof({c}) IN ('real', "  # noqa: S608
                        f"'integer') AND NOT {outside} LIMIT 1").fetchone() is None  # fmt: skip


def _decide(conn: sqlite3.Connection, table: Table, column: Column, stored: set[str]) -> None:
    """Choose the column's PostgreSQL type and the conversion of its values from what is
    stored (memory stays flat however many rows there are)."""
    declared = column.declared.upper()
    affinity = _affinity(column.declared)
    single_pk = column.pk == 1 and len([c for c in table.columns if c.pk]) == 1
    if single_pk and declared == "INTEGER" and stored <= {"integer"}:
        column.pg_type, column.identity = "bigint", True  # the rowid: an identity column
        column.plain_form = True
        return
    candidates = [(t, f) for matches, t, f in _RECOGNISED if matches(declared)]
    if affinity == "numeric":
        candidates.append(("numeric", _decimal))
    for pg_type, convert in candidates:  # the first that fits
        fits, column.plain_form = _fitting(conn, table.name, column.name, pg_type, convert)
        if fits:  # an empty column takes its declared type (DATETIME: timestamptz, not numeric)
            column.pg_type, column.convert = pg_type, convert
            if column.pg_type == "date" and declared != "DATE":
                column.note = f"declared {column.declared}, holds only dates: date"
            return
    kinds = {_KINDS[k] for k in stored - {"text"}}
    nul = False
    if "text" in stored:
        text_kinds, nul = _text_kinds(conn, table.name, column.name)
        kinds |= text_kinds
    column.plain_form = kinds <= {int} or stored == {"blob"} or (kinds <= {str} and not nul)
    if affinity == "integer" and kinds <= {int}:
        column.pg_type = "bigint"
    elif not column.declared and kinds == {int}:
        column.pg_type = "bigint"
        column.note = "declared without a type, holds only integers: bigint"
    elif affinity == "real" and kinds <= {int, float}:
        column.pg_type, column.convert = "double precision", float
        column.plain_form = _plain_doubles(conn, table.name, column.name)
    elif kinds == {bytes}:
        column.pg_type = "bytea"
        if affinity != "blob":
            column.note = f"declared {column.declared}, holds only BLOBs (or non-UTF-8 text): bytea"
    elif kinds <= {str} and nul:
        column.pg_type, column.convert = "bytea", _utf8
        column.note = "text with NUL characters, which PostgreSQL text cannot hold: bytea (UTF-8)"
    elif kinds <= {str}:
        column.pg_type = "text"
        unfit = [t for t, _f in candidates if t != "numeric"]
        if unfit:
            column.note = (f"declared {column.declared}, but not every value is a valid "
                           f"{unfit[0]} (e.g. NaN in JSON): kept as text")  # fmt: skip
        elif affinity not in ("text", "blob") or (affinity == "blob" and column.declared):
            column.note = f"declared {column.declared or 'without a type'}, holds text: text"
    else:
        shown = ", ".join(sorted(k.__name__ for k in kinds))
        column.pg_type, column.convert = "text", _as_text
        column.note = (f"declared {column.declared or 'without a type'} but holds {shown}: "
                       "stored as text")  # fmt: skip
        column.plain_form = False


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
    found = _ISO_TIME.match(value.strip()) if isinstance(value, str) else None
    if found:  # naive text is UTC; saying so in the text is 4x faster than .replace(tzinfo=)
        text = found.group().replace("Z", "+00:00")
        return datetime.fromisoformat(text if found.group(3) else text + "+00:00")
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 2**33:
        return datetime.fromtimestamp(value, tz=UTC)
    raise ValueError("not a timestamp")


def _date(value: Any) -> date:
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        return date.fromisoformat(value.strip())
    raise ValueError("not a date")


def _json(value: Any) -> str:
    """JSON PostgreSQL accepts: Python's parser also takes NaN and Infinity, jsonb does not."""
    if not isinstance(value, str):
        raise ValueError("not JSON text")
    json.loads(value, parse_constant=_no_constant)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


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
    (_declares("TIMESTAMP", "DATETIME"), "date", _date),  # date-only values
    (lambda d: d == "DATE", "date", _date),
    (_declares("JSON"), "jsonb", _json),
    (_declares("UUID", "GUID"), "uuid", _uuid),
]


def _indexes(conn: sqlite3.Connection, table: Table) -> list[Index]:
    out = []
    listed = conn.execute(f"PRAGMA index_list({quoted(table.name)})")
    for _seq, name, unique, origin, partial in listed:
        if origin == "pk":
            continue  # the primary key is made from the columns' pk positions
        columns = [r[2] for r in conn.execute(f"PRAGMA index_info({quoted(name)})")]
        if partial or any(c is None for c in columns):
            what = "a partial index" if partial else "an index on expressions"
            table.skipped.append(f"index {name}: {what}; recreate it by hand")
            continue
        out.append(Index(name, bool(unique), columns, origin))
    return out


def _foreign_keys(conn: sqlite3.Connection, table: str) -> list[ForeignKey]:
    found: dict[int, ForeignKey] = {}
    for fk_id, _seq, parent, source, target, on_update, on_delete, _match in conn.execute(
        f"PRAGMA foreign_key_list({quoted(table)})"
    ):
        key = found.setdefault(fk_id, ForeignKey([], parent, [], on_delete, on_update))
        key.columns.append(source)
        key.to.append(target)
    return list(found.values())


@dataclass(frozen=True)
class Token:
    kind: str  # word, ident (quoted), string, number, op
    text: str  # as written

    @property
    def name(self) -> str:
        """An identifier's name, unquoted."""
        if self.kind != "ident":
            return self.text
        inner = self.text[1:-1]
        return inner if self.text[0] == "[" else inner.replace(self.text[0] * 2, self.text[0])

    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


_TOKEN = re.compile(
    r"""(?P<space>\s+|--[^\n]*|/\*.*?(?:\*/|$))
    |(?P<string>'(?:[^']|'')*')
    |(?P<ident>"(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`)
    |(?P<number>0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<word>[^\W\d]\w*)
    |(?P<op>==|!=|<>|<=|>=|\|\||<<|>>|.)""",
    re.X | re.S,
)


def tokenize(text: str) -> list[Token]:
    """SQLite's SQL as tokens (comments and spaces dropped): enough to find clauses."""
    found = (Token(str(m.lastgroup), m.group()) for m in _TOKEN.finditer(text))
    return [t for t in found if t.kind != "space"]


def joined(texts: Iterable[str]) -> str:
    out = ""
    for text in texts:
        last = out.rsplit(" ", 1)[-1]  # a function's name, not a keyword such as IN
        call = text == "(" and (last[-1:].isalnum() or last[-1:] == "_") and not last.isupper()
        glue = "" if not out or call or text in (".", ")", ",") or out[-1] in ".(" else " "
        out += glue + text
    return out


def _split(tokens: list[Token]) -> list[list[Token]]:
    """The top-level, comma-separated parts of a parenthesised list."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for t in tokens:
        depth += (t.text == "(") - (t.text == ")")
        if depth == 0 and t.text == ",":
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


def _parens(tokens: list[Token], start: int) -> tuple[list[Token], int]:
    """The tokens inside the parentheses opening at `start`, and the index after them."""
    depth = 0
    for i in range(start, len(tokens)):
        depth += (tokens[i].text == "(") - (tokens[i].text == ")")
        if depth == 0:
            return tokens[start + 1 : i], i + 1
    return tokens[start + 1 :], len(tokens)


def parse_create(text: str) -> Parsed:
    """From CREATE TABLE (SQLite keeps the text, not the parts): its CHECK constraints, and
    for each foreign key (parent, columns...) whether it is DEFERRABLE INITIALLY DEFERRED."""
    tokens = tokenize(text)
    start = next((i for i, t in enumerate(tokens) if t.text == "("), None)
    if start is None:
        return [], {}
    body, _end = _parens(tokens, start)
    checks, deferred = [], {}
    for part in _split(body):
        name = None
        if part and part[0].upper() == "CONSTRAINT" and len(part) > 1:
            name, part = part[1].name, part[2:]
        first = part[0].upper() if part else ""
        columns = [] if first in ("PRIMARY", "UNIQUE", "CHECK", "FOREIGN") else part[:1]
        for i, t in enumerate(part):
            up = t.upper()
            if up == "CHECK" and i + 1 < len(part) and part[i + 1].text == "(":
                checks.append(Check(name, _parens(part, i + 1)[0]))
            elif up == "FOREIGN" and i + 2 < len(part) and part[i + 2].text == "(":
                columns = [c for c in _parens(part, i + 2)[0] if c.text != ","]
            elif up == "REFERENCES" and i + 1 < len(part) and columns:
                key = (part[i + 1].name.lower(), *(c.name.lower() for c in columns))
                words = [w.upper() for w in part[i:]]
                deferred[key] = any(
                    words[j : j + 3] == ["DEFERRABLE", "INITIALLY", "DEFERRED"]
                    and words[j - 1] != "NOT"
                    for j in range(1, len(words))
                )
    return checks, deferred


def _view_body(tokens: list[Token]) -> list[Token]:
    """CREATE [TEMP] VIEW [IF NOT EXISTS] name ...: what follows the name."""
    i = next((i for i, t in enumerate(tokens) if t.upper() == "VIEW"), len(tokens) - 1) + 1
    if [t.upper() for t in tokens[i : i + 3]] == ["IF", "NOT", "EXISTS"]:
        i += 3
    if i + 1 < len(tokens) and tokens[i + 1].text == ".":
        i += 2  # schema.name
    return tokens[i + 1 :]
