"""Rows as COPY text, and the checksum that proves PostgreSQL holds what SQLite held.

Each value is written in the text PostgreSQL itself prints for it (integers, text, booleans,
numerics as fixed-point, UUIDs) or read back through an expression whose output Python can
reproduce exactly (a double's IEEE bits, a timestamp in UTC to the microsecond, bytes as hex),
so the verification hashes raw COPY lines on both sides instead of converting every value
twice in Python: the slowest part of the import before. JSON alone is compared by meaning
(PostgreSQL reorders keys), parsed on both sides. The checksum is a sum of per-row SHA-256
digests: independent of row order, and memory stays flat for any table size.
"""

from __future__ import annotations

import functools
import json
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import sql

from pgkura.sqlite.schema import unchanged

Buffer = bytes | bytearray | memoryview

_ESCAPE = str.maketrans(
    {"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
)
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
    "bytea": Form(_bytea, lambda v: bytes(v).hex(), "encode({}, 'hex')"),
    "date": Form(lambda v: v.isoformat(), None, "to_char({}, 'YYYY-MM-DD')"),
    "timestamp with time zone": Form(lambda v: v.isoformat(), _moment, _IN_UTC),
    "jsonb": Form(text, _json, "{}::text"),
}


class Rows:
    """One table's rows as blocks of COPY text lines, summed into a checksum as they go."""

    def __init__(self, types: list[str], converters: list[Callable[[Any], Any]]) -> None:
        forms = [_FORMS[t] for t in types]
        self.fields = [_field(f, c) for f, c in zip(forms, converters, strict=True)]
        self.pairs = [i for i, f in enumerate(forms) if f.check]  # (sent, checked) fields
        self.count, self.total = 0, 0

    def blocks(self, rows: Iterable[tuple[Any, ...]], size: int = 1000) -> Iterator[bytes]:
        """`size` rows at a time (memory stays flat), each block counted before it is yielded."""
        fields, pairs, block = self.fields, self.pairs, []
        for row in rows:
            sent: list[Any] = [NULL if v is None else field(v)
                               for field, v in zip(fields, row, strict=True)]  # fmt: skip
            if pairs:
                checked = list(sent)
                for i in pairs:
                    if row[i] is not None:
                        sent[i], checked[i] = sent[i]
                line = "\t".join(sent)
                self.add("\t".join(checked))
            else:
                line = "\t".join(sent)
                self.add(line)
            block.append(line)
            if len(block) == size:
                yield "\n".join(block).encode() + b"\n"
                block.clear()
                if self.count == 10 * size:
                    _forget_unrepeated(fields)
        if block:
            yield "\n".join(block).encode() + b"\n"

    def add(self, line: str) -> None:
        """Python's own string hash (SipHash, keyed once per process: both sides are summed in
        this one process) is far cheaper than a cryptographic one and catches any change."""
        self.count += 1
        self.total += hash(line)


def _field(form: Form, convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A value's COPY field (or, where the read-back differs, the pair sent and expected),
    converted once; remembered for repeated values (prices, flags, dates), typed so that 1 and
    1.0 stay apart."""
    send, check = form.send, form.check
    if convert is unchanged and send in (str, text) and check is None:
        return send
    if check is None:
        return functools.lru_cache(maxsize=4096, typed=True)(lambda v: send(convert(v)))

    def both(value: Any) -> tuple[str, str]:
        converted = convert(value)
        return send(converted), check(converted)

    return functools.lru_cache(maxsize=4096, typed=True)(both)


def _forget_unrepeated(fields: list[Callable[[Any], Any]]) -> None:
    """Stop remembering where values rarely repeated in the first rows (keys, timestamps): a
    miss costs more than the conversion."""
    for i, field in enumerate(fields):
        info = getattr(field, "cache_info", None)
        if info and info().hits < info().misses:
            fields[i] = field.__wrapped__  # type: ignore[attr-defined]


def read_back(types: list[str], columns: list[str]) -> sql.Composed:
    """The SELECT list whose COPY output the checksum of `Rows` expects."""
    return sql.SQL(", ").join(
        sql.SQL(_FORMS[t].read).format(sql.Identifier(c))
        for t, c in zip(types, columns, strict=True)
    )


def checksum(types: list[str], chunks: Iterable[Buffer]) -> tuple[int, int]:
    """(rows, checksum) of COPY output, with JSON fields compared by meaning."""
    json_at = [i for i, t in enumerate(types) if t == "jsonb"]
    summed = Rows([], [])
    for line in _lines(chunks):
        if json_at:
            fields = line.split("\t")
            for i in json_at:
                fields[i] = fields[i] if fields[i] == NULL else _json(_unescape(fields[i]))
            line = "\t".join(fields)
        summed.add(line)
    return summed.count, summed.total


def _lines(chunks: Iterable[Buffer]) -> Iterator[str]:
    """COPY output as lines (a value's own newlines are escaped, so each \\n ends a row)."""
    rest = b""
    for chunk in chunks:
        *whole, rest = (rest + bytes(chunk)).split(b"\n")
        for line in whole:
            yield line.decode()
