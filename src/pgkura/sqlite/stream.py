"""Rows as COPY text, and the checksum that proves PostgreSQL holds what SQLite held.

Each value is written in the text PostgreSQL itself prints for it (integers, text, booleans,
numerics as fixed-point, UUIDs, UTC timestamps, bytes as hex) or read back through an
expression whose output Python can reproduce exactly (a double's IEEE bits), so the
verification hashes raw COPY lines on both sides instead of converting every value twice.
Where a column's values are all in the plain form of the type (`Column.plain_form`), no value
is converted on its own: SQLite writes the fields that cost it least (integers, flags, dates,
times: one string a row), Python the others a whole block at a time in C (text escaped by one
`replace` over the block, blobs by `bytes.hex`, numbers by `repr`); Python's own code runs
per value only for the rest. JSON alone is compared by meaning (PostgreSQL reorders keys),
parsed on both sides. The checksum is a sum of per-row hashes (the CRC-32C of each line's
bytes: the same in every process, so a table read by several processes sums as one, and the
same as PostgreSQL 18's crc32c(), so the server sums the table it holds without sending it):
independent of row order, and memory stays flat for any table size.
"""

from __future__ import annotations

import functools
import itertools
import json
import queue
import re
import sqlite3
import struct
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from google_crc32c import value as line_hash
from psycopg import sql

from pgkura.sqlite.schema import Column, quoted, text_or_bytes

Buffer = bytes | bytearray | memoryview
T = TypeVar("T")

_ESCAPES = {  # the backslash first: `_texts` replaces in this order
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
    """As PostgreSQL prints a timestamptz in UTC (DateStyle ISO): a fraction of a second only
    when there is one, without its trailing zeros."""
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    text = utc.isoformat(" ", "microseconds")[:-6]  # without its +00:00
    return (text.rstrip("0") if utc.microsecond else text[:-7]) + "+00"


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
    "date": Form(lambda v: v.isoformat(), None, "{}::text"),  # DateStyle ISO, TimeZone UTC
    "timestamp with time zone": Form(_moment, None, "{}::text"),
    "jsonb": Form(text, _json, "{}::text"),
}


# The COPY field SQLite writes itself (`{0}` the column) for a plain-form column of these types:
# the same text as `Form.send`, where SQLite's work is a copy or a CASE (cheaper than handing
# Python the value).
IN_SQLITE = {
    "bigint": "ifnull({0}, '\\N')",
    "boolean": "CASE {0} WHEN 1 THEN 't' WHEN 0 THEN 'f' ELSE '\\N' END",
    "date": "ifnull({0}, '\\N')",
    "timestamp with time zone": "ifnull({0} || '+00', '\\N')",
}


def _nulls(values: tuple[Any, ...], fields: list[str]) -> list[str]:
    return [NULL if v is None else f for v, f in zip(values, fields, strict=True)]


def _texts(values: tuple[Any, ...]) -> list[str]:
    """Text, a block at a time: joined by NUL (which PostgreSQL text never holds), escaped by
    one replace a character to escape, split again."""
    empty = None in values
    joined = "\x00".join(["" if v is None else v for v in values] if empty else values)
    for char, escape in _ESCAPES.items():
        if char in joined:
            joined = joined.replace(char, escape)
    fields = joined.split("\x00")
    return _nulls(values, fields) if empty else fields


def _blobs(values: tuple[Any, ...]) -> list[str]:
    empty = None in values
    hexes = map(bytes.hex, [b"" if v is None else v for v in values] if empty else values)
    fields = list(map("\\\\x".__add__, hexes))
    return _nulls(values, fields) if empty else fields


def _numbers(values: tuple[Any, ...]) -> list[str]:
    """Integers and reals whose repr is fixed-point: the text PostgreSQL's numeric keeps."""
    fields = list(map(str, values))
    return _nulls(values, fields) if None in values else fields


def _doubles(values: tuple[Any, ...]) -> list[str]:
    empty = None in values
    fields = list(map(repr, map(float, [0.0 if v is None else v for v in values] if empty
                                else values)))  # fmt: skip
    return _nulls(values, fields) if empty else fields


Writer = Callable[[tuple[Any, ...]], list[str]]


def _repeated(write: Writer) -> Writer:
    """`write` once per distinct value where a block repeats its values (amounts, flags, small
    blobs): finding them is a dict built in C. Only where equal keys write the same text (1 and
    1.0 are one key: a double writes both as 1.0, a numeric would not)."""

    def once(values: tuple[Any, ...]) -> list[str]:
        distinct = dict.fromkeys(values)
        if 2 * len(distinct) > len(values):
            return write(values)
        written = dict(zip(distinct, write(tuple(distinct)), strict=True))
        return list(map(written.__getitem__, values))

    return once


# The COPY fields Python writes a block at a time for a plain-form column of these types.
PLAIN: dict[str, Writer] = {
    "text": _texts,
    "bytea": _repeated(_blobs),
    "numeric": _numbers,
    "double precision": _repeated(_doubles),
}


class Rows:
    """One table's rows as blocks of COPY text lines, summed into a checksum as they go.

    SQLite writes its part of the plain-form columns as one string a row; Python writes the
    other plain-form columns a block at a time, then converts the rest value by value. So the
    COPY (and the read-back) lists the columns in that order: `columns` is the order."""

    def __init__(self, columns: list[Column]) -> None:
        ours = [c for c in columns if c.plain_form and c.pg_type in IN_SQLITE]
        plain = [c for c in columns if c.plain_form and c.pg_type in PLAIN and c not in ours]
        theirs = [c for c in columns if c not in ours and c not in plain]
        self.columns = ours + plain + theirs
        self.ours = len(ours)
        fields = ", ".join(IN_SQLITE[c.pg_type].format(quoted(c.name)) for c in ours)
        tabbed = "\t".join(["%s"] * len(ours))  # one printf: cheaper than || between fields
        # as bytes: decoded a block at a time, not by the connection's text factory a row
        self.line = f"CAST(printf('{tabbed}', {fields}) AS BLOB)" if ours else ""
        self.writers = [PLAIN[c.pg_type] for c in plain]
        forms = [_FORMS[c.pg_type] for c in theirs]
        self.fields = [_field(f, c.convert) for f, c in zip(forms, theirs, strict=True)]
        self.pairs = [f.check is not None for f in forms]  # fields that are (sent, checked)
        # every text Python reads is UTF-8 when all its columns are plain: decoded in C
        self.text_factory: Callable[[bytes], Any] = str if not theirs else text_or_bytes
        self.count, self.total = 0, 0

    def read(self, conn: sqlite3.Connection, table: str, where: str = "",
             bounds: tuple[int, int] | None = None) -> Iterator[bytes]:  # fmt: skip
        """The table's blocks (those `where` selects) read from `conn`."""
        before, conn.text_factory = conn.text_factory, self.text_factory
        try:
            yield from self.blocks(conn.execute(self.select(table) + where, bounds or ()))
        finally:
            conn.text_factory = before

    def select(self, table: str) -> str:
        """The query whose rows `blocks` reads: SQLite's part of the line, then raw values."""
        parts = ([self.line] if self.line else []) + [
            quoted(c.name) for c in self.columns[self.ours :]
        ]
        return f"SELECT {', '.join(parts)} FROM {quoted(table)}"  # noqa: S608 - quoted

    def blocks(self, rows: Iterable[tuple[Any, ...]], size: int = 4096) -> Iterator[bytes]:
        """`size` rows at a time (memory stays flat), each block counted before it is yielded.
        A block is handled column by column (map and join run in C), so Python's own code runs
        only to convert a value outside the plain form it has not seen recently."""
        skip = 1 if self.line else 0  # SQLite's part of the line comes first
        for block in ahead(rows, size):
            columns: list[Any] = list(zip(*block, strict=True))
            if skip:
                columns[0] = b"\n".join(columns[0]).decode().split("\n")
            sent, checked = columns[:skip], columns[:skip]
            plain = columns[skip : skip + len(self.writers)]
            written = [write(v) for write, v in zip(self.writers, plain, strict=True)]
            sent += written
            checked += written
            theirs = columns[skip + len(self.writers) :]
            for field, pair, values in zip(self.fields, self.pairs, theirs, strict=True):
                out = list(map(field, values))
                sent.append([s for s, _c in out] if pair else out)
                checked.append([c for _s, c in out] if pair else out)
            data = ("\n".join(map("\t".join, zip(*sent, strict=True))) + "\n").encode()
            expected = data if not any(self.pairs) else \
                ("\n".join(map("\t".join, zip(*checked, strict=True))) + "\n").encode()  # fmt: skip
            lines = expected.split(b"\n")[:-1]
            self.count += len(lines)
            self.total += sum(map(line_hash, lines))  # far cheaper than a cryptographic hash
            yield data
            if self.count == 10 * size:
                _forget_unrepeated(self.fields)


def ahead(rows: Iterable[T], size: int, depth: int = 4) -> Generator[list[T], None, None]:
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


# How PostgreSQL prints a plain-form field, where `Form.read` expects Python's check: a double
# written as Python's repr (fixed-point, `schema._plain_doubles`) is printed the shortest way
# too, without the ".0" of a whole number (extra_float_digits at its default, 1).
_READ_PLAIN = {
    "double precision": "CASE WHEN {0} = trunc({0}) THEN {0}::text || '.0' ELSE {0}::text END",
}


# The settings under which PostgreSQL prints a table as the checksum of what was sent expects:
# bytea as hex, the shortest doubles, dates and times as SQLite writes them.
PRINTING = {"bytea_output": "hex", "extra_float_digits": "1", "DateStyle": "ISO",
            "TimeZone": "UTC"}  # fmt: skip


def _reads(rows: Rows) -> list[str]:
    """Each column's read-back expression (`{}` the column), in the order sent."""
    plain = len(rows.columns) - len(rows.fields)
    return [_READ_PLAIN.get(c.pg_type, _FORMS[c.pg_type].read) if i < plain
            else _FORMS[c.pg_type].read for i, c in enumerate(rows.columns)]  # fmt: skip


def read_back(rows: Rows) -> sql.Composed:
    """The SELECT list (in the order sent) whose COPY output the checksum of `rows` expects."""
    return sql.SQL(", ").join(
        sql.SQL(read).format(sql.Identifier(c.name))
        for read, c in zip(_reads(rows), rows.columns, strict=True)
    )


# A read-back field as COPY prints it, as SQL text (`{}` the read expression): text escaped as
# COPY escapes it, a boolean and bytea as their output functions write them (chr() is folded
# once, whatever standard_conforming_strings says); other types print no character to escape.
def _escaped(expression: str) -> str:
    for char, escape in _ESCAPES.items():
        into = " || ".join(f"chr({ord(e)})" for e in escape)
        expression = f"replace({expression}, chr({ord(char)}), {into})"
    return expression


_PRINTED = {
    "text": _escaped("{}"),
    "boolean": "CASE {} WHEN true THEN 't' WHEN false THEN 'f' END",
    "bytea": "chr(92) || chr(92) || 'x' || encode({}, 'hex')",
}


def summed(rows: Rows) -> sql.Composed | None:
    """A query PostgreSQL answers with (rows, checksum) of the table as the COPY read-back would
    print it, hashed and summed where it is (CRC-32C of each line, PostgreSQL 18's crc32c(),
    in parallel where the server allows): none of it crosses the network. None where a column
    is compared by meaning (JSON)."""
    if any(c.pg_type == "jsonb" for c in rows.columns):
        return None
    line = sql.SQL(", ").join(
        sql.SQL("coalesce(" + _PRINTED.get(c.pg_type, "({})::text").format(read)
                + ", chr(92) || 'N')").format(sql.Identifier(c.name))
        for read, c in zip(_reads(rows), rows.columns, strict=True)
    )  # fmt: skip
    return sql.SQL("SELECT count(*), coalesce(sum(crc32c(convert_to(concat_ws(chr(9), {}), "
                   "'UTF8'))), 0)").format(line)  # fmt: skip


def checksum(types: list[str], chunks: Iterable[Buffer]) -> tuple[int, int]:
    """(rows, checksum) of COPY output, with JSON fields compared by meaning."""
    json_at = [i for i, t in enumerate(types) if t == "jsonb"]
    count = total = 0
    for lines in _lines(chunks):
        if json_at:
            lines = [_json_fields(line, json_at) for line in lines]
        count += len(lines)
        total += sum(map(line_hash, lines))
    return count, total


def _json_fields(line: bytes, json_at: list[int]) -> bytes:
    fields = line.decode().split("\t")
    for i in json_at:
        fields[i] = fields[i] if fields[i] == NULL else _json(_unescape(fields[i]))
    return "\t".join(fields).encode()


def _lines(chunks: Iterable[Buffer], rows: int = 4096) -> Iterator[list[bytes]]:
    """COPY output (a message a row) as lists of lines, `rows` messages joined at a time in C
    (a value's own newlines are escaped, so each \\n ends a row; a message may end mid-row)."""
    source = iter(chunks)
    rest = b""
    while data := b"".join(itertools.islice(source, rows)):
        data = rest + data
        cut = data.rfind(b"\n") + 1
        yield data[:cut].split(b"\n")[:-1]
        rest = data[cut:]
    yield rest.split(b"\n")[:-1]
