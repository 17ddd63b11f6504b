"""Rows as COPY text, and the checksum that proves PostgreSQL holds what SQLite held.

Each value is written in the text PostgreSQL itself prints for it (integers, text, booleans,
numerics as fixed-point, UUIDs, UTC timestamps, bytes as hex) or read back through an
expression whose output Python can reproduce exactly (a double's IEEE bits), so the
verification hashes raw COPY lines on both sides instead of converting every value twice.
Where a column's values are all in SQLite's own form of the type, SQLite writes the field
itself (one string a row, no Python call per value): the slowest part of the import was
Python's work per value. JSON alone is compared by meaning (PostgreSQL reorders keys), parsed
on both sides. The checksum is a sum of per-row hashes: independent of row order, and memory
stays flat for any table size.
"""

from __future__ import annotations

import functools
import itertools
import json
import queue
import re
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from psycopg import sql

from pgkura.sqlite.schema import Column, quoted

Buffer = bytes | bytearray | memoryview
T = TypeVar("T")

_ESCAPES = {  # the backslash first: SQLite's replace() calls go in this order
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
_ESCAPE = str.maketrans(_ESCAPES)
_UNESCAPE = re.compile(r"\\(.)")
_UNESCAPED = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
NULL = "\\N"
_IN_UTC = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"


def text(value: Any) -> str:
    """A value as a COPY text field (PostgreSQL escapes its output the same way)."""
    return str(value).translate(_ESCAPE)


def _unescape(field: str) -> str:
    return _UNESCAPE.sub(lambda m: _UNESCAPED.get(m.group(1), m.group(1)), field)


def _json(value: Any) -> str:
    return text(json.dumps(json.loads(value), sort_keys=True, ensure_ascii=False))


def _numeric(value: Any) -> str:
    return format(abs(value) if value.is_zero() else value, "f")  # PostgreSQL has no -0


def _moment(value: datetime) -> str:
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    return utc.isoformat(" ", "microseconds")[:-6]  # without its +00:00


def _bytea(value: Any) -> str:
    return "\\\\x" + bytes(value).hex()


def _double(value: Any) -> str:
    return struct.pack(">d", value).hex()


@dataclass(frozen=True)
class Form:
    """How one PostgreSQL type travels: sent as `send(value)`, read back through `read` (SQL,
    `{}` the column) whose output equals `check(value)`."""

    send: Callable[[Any], str]
    check: Callable[[Any], str] | None = None  # None: the same as send
    read: str = "{}"


_FORMS = {
    "bigint": Form(str),
    "text": Form(text),
    "boolean": Form(lambda v: "t" if v else "f"),
    "uuid": Form(str),
    "numeric": Form(_numeric),
    "double precision": Form(repr, _double, "encode(float8send({}), 'hex')"),
    "bytea": Form(_bytea),  # read back as it is: bytea_output is hex
    "date": Form(lambda v: v.isoformat(), None, "to_char({}, 'YYYY-MM-DD')"),
    "timestamp with time zone": Form(lambda v: _moment(v) + "+00", None, _IN_UTC + " || '+00'"),
    "jsonb": Form(text, _json, "{}::text"),
}


def _escaped(column: str) -> str:
    """SQLite's expression for `text(column)`: replace() calls, the backslash first, only for
    the values that hold a character to escape (few do)."""
    replaced = column
    for char, escape in _ESCAPES.items():  # the characters themselves in SQL string literals
        replaced = f"replace({replaced}, '{char}', '{escape}')"
    return f"CASE WHEN {column} GLOB '*[{''.join(_ESCAPES)}]*' THEN {replaced} ELSE {column} END"


# The COPY field SQLite writes itself (`{0}` the column) for a column whose values are all in
# SQLite's own form of the type (`Column.in_sqlite_form`): the same text as `Form.send`.
IN_SQLITE = {
    "bigint": "ifnull({0}, '\\N')",
    "text": "ifnull(" + _escaped("{0}") + ", '\\N')",
    "bytea": "ifnull('\\\\x' || lower(hex({0})), '\\N')",
    "boolean": "CASE {0} WHEN 1 THEN 't' WHEN 0 THEN 'f' ELSE '\\N' END",
    "date": "ifnull({0}, '\\N')",
    "numeric": "ifnull({0} || '', '\\N')",
    "double precision": "ifnull({0} || '', '\\N')",
    "timestamp with time zone": "ifnull({0} || '.000000+00', '\\N')",
}


class Rows:
    """One table's rows as blocks of COPY text lines, summed into a checksum as they go.

    SQLite writes the fields of the columns whose values are in its own form of the type, as
    one string a row; Python converts the others and appends them. So the COPY (and the
    read-back) lists those columns first: `columns` is the order."""

    def __init__(self, columns: list[Column]) -> None:
        ours = [c for c in columns if c.in_sqlite_form and c.pg_type in IN_SQLITE]
        theirs = [c for c in columns if c not in ours]
        self.columns = ours + theirs
        fields = ", ".join(IN_SQLITE[c.pg_type].format(quoted(c.name)) for c in ours)
        tabbed = "\t".join(["%s"] * len(ours))  # one printf: cheaper than || between fields
        # as bytes: decoded a block at a time, not by the connection's text factory a row
        self.line = f"CAST(printf('{tabbed}', {fields}) AS BLOB)" if ours else ""
        forms = [_FORMS[c.pg_type] for c in theirs]
        self.fields = [_field(f, c.convert) for f, c in zip(forms, theirs, strict=True)]
        self.pairs = [f.check is not None for f in forms]  # fields that are (sent, checked)
        self.count, self.total = 0, 0

    def select(self, table: str) -> str:
        """The query whose rows `blocks` reads: SQLite's part of the line, then raw values."""
        parts = ([self.line] if self.line else []) + [
            quoted(c.name) for c in self.columns[len(self.columns) - len(self.fields) :]
        ]
        return f"SELECT {', '.join(parts)} FROM {quoted(table)}"  # noqa: S608 - quoted

    def blocks(self, rows: Iterable[tuple[Any, ...]], size: int = 4096) -> Iterator[bytes]:
        """`size` rows at a time (memory stays flat), each block counted before it is yielded.
        A block is handled column by column (map and join run in C), so Python's own code runs
        only to convert a value it has not seen recently."""
        skip = 1 if self.line else 0  # SQLite's part of the line comes first
        for block in ahead(rows, size):
            columns: list[Any] = list(zip(*block, strict=True))
            if skip:
                columns[0] = b"\n".join(columns[0]).decode().split("\n")
            sent, checked = columns[:skip], columns[:skip]
            for field, pair, values in zip(self.fields, self.pairs, columns[skip:], strict=True):
                out = list(map(field, values))
                sent.append([s for s, _c in out] if pair else out)
                checked.append([c for _s, c in out] if pair else out)
            lines = list(map("\t".join, zip(*sent, strict=True)))
            expected = lines if not any(self.pairs) else map("\t".join, zip(*checked, strict=True))
            self.count += len(lines)
            # Python's own string hash (SipHash, keyed once per process: both sides are summed
            # in this one process) is far cheaper than a cryptographic one and catches any change
            self.total += sum(map(hash, expected))
            yield ("\n".join(lines) + "\n").encode()
            if self.count == 10 * size:
                _forget_unrepeated(self.fields)


def ahead(rows: Iterable[T], size: int, depth: int = 4) -> Iterator[list[T]]:
    """Blocks of `size` rows read on a second thread while the caller handles the ones before:
    SQLite steps (and formats its part of each line) without holding Python's GIL, so reading
    and converting overlap. At most `depth` blocks wait (memory stays flat); a reading error is
    raised in the caller, and the reader stops when the caller does."""
    ready: queue.Queue[list[T] | BaseException] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: list[T] | BaseException) -> None:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read() -> None:
        try:
            source = iter(rows)
            while not stop.is_set():
                block = list(itertools.islice(source, size))
                put(block)
                if not block:
                    return
        except BaseException as exc:  # handed to the caller, who raises it
            put(exc)

    reader = threading.Thread(target=read, name="sqlite-reader", daemon=True)
    reader.start()
    try:
        while block := ready.get():
            if isinstance(block, BaseException):
                raise block
            yield block
    finally:
        stop.set()
        reader.join()


def _field(form: Form, convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A value's COPY field (or, where the read-back differs, the pair sent and expected; \\N
    for NULL), converted once; remembered for repeated values (prices, flags, dates), typed so
    that 1 and 1.0 stay apart."""
    send, check = form.send, form.check

    def one(value: Any) -> str:
        return NULL if value is None else send(convert(value))

    def both(value: Any) -> tuple[str, str]:
        if value is None:
            return NULL, NULL
        converted = convert(value)
        return send(converted), check(converted)  # type: ignore[misc]

    return functools.lru_cache(maxsize=4096, typed=True)(one if check is None else both)


def _forget_unrepeated(fields: list[Callable[[Any], Any]]) -> None:
    """Stop remembering where values rarely repeated in the first rows (keys, timestamps): a
    miss costs more than the conversion."""
    for i, field in enumerate(fields):
        info = getattr(field, "cache_info", None)
        if info and info().hits < info().misses:
            fields[i] = field.__wrapped__  # type: ignore[attr-defined]


# How PostgreSQL prints what SQLite wrote, where `Form.read` expects Python's check: a double
# SQLite wrote as Python's repr (`schema.shortest`) is printed the shortest way too, without
# the ".0" of a whole number (extra_float_digits at its default, 1). Dates and times in
# SQLite's form are read as PostgreSQL prints them (DateStyle ISO, TimeZone UTC): to_char
# costs more than the rest of the read-back; a time SQLite wrote has no fraction of a second,
# so one stored would show (".5.000000+00") and differ.
_READ_AS_SQLITE_WROTE = {
    "double precision": "CASE WHEN {0}::text ~ '^-?[0-9]+$' THEN {0}::text || '.0' "
    "ELSE {0}::text END",
    "date": "{0}::text",
    "timestamp with time zone": "replace({0}::text, '+00', '.000000+00')",
}


def read_back(rows: Rows) -> sql.Composed:
    """The SELECT list (in the order sent) whose COPY output the checksum of `rows` expects."""
    ours = len(rows.columns) - len(rows.fields)
    return sql.SQL(", ").join(
        sql.SQL(_READ_AS_SQLITE_WROTE.get(c.pg_type, _FORMS[c.pg_type].read) if i < ours
                else _FORMS[c.pg_type].read).format(sql.Identifier(c.name))
        for i, c in enumerate(rows.columns)
    )  # fmt: skip


def checksum(types: list[str], chunks: Iterable[Buffer]) -> tuple[int, int]:
    """(rows, checksum) of COPY output, with JSON fields compared by meaning."""
    json_at = [i for i, t in enumerate(types) if t == "jsonb"]
    count = total = 0
    for lines in _lines(chunks):
        if json_at:
            lines = [_json_fields(line, json_at) for line in lines]
        count += len(lines)
        total += sum(map(hash, lines))
    return count, total


def _json_fields(line: str, json_at: list[int]) -> str:
    fields = line.split("\t")
    for i in json_at:
        fields[i] = fields[i] if fields[i] == NULL else _json(_unescape(fields[i]))
    return "\t".join(fields)


def _lines(chunks: Iterable[Buffer], size: int = 1 << 20) -> Iterator[list[str]]:
    """COPY output (a message a row) as lists of lines, decoded about `size` bytes at a time
    (a value's own newlines are escaped, so each \\n ends a row)."""
    pending: list[bytes] = []
    held = 0
    for chunk in chunks:
        pending.append(bytes(chunk))
        held += len(chunk)
        if held >= size:
            data = b"".join(pending)
            cut = data.rfind(b"\n") + 1
            yield data[:cut].decode().split("\n")[:-1]
            pending, held = [data[cut:]], len(data) - cut
    yield b"".join(pending).decode().split("\n")[:-1]
