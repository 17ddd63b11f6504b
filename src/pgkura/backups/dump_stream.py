"""A plain-format dump on its way from a gzip file into psql.

pg_dump wraps large-object data in top-level `BEGIN;` / `COMMIT;` lines: `lo_open` and the
`lowrite` calls on its descriptor must share one transaction. Who holds the transactions
differs by use, so each use states it (`Transactions`): inside a restore that commits all or
nothing, such a COMMIT would commit everything before it, so those two lines (outside COPY
data, where they can only be pg_dump's own) become comments; a load with no transaction of
its own keeps them. A restore runs the dump over an existing database, so two of pg_dump's
--clean drops are adapted there (see `_over_existing`). The stream also remembers whether the
dump's completion trailer went by (integrity says what a trailer is).
"""

from __future__ import annotations

import re
from enum import Enum

from pgkura.backups.integrity import is_trailer

_NEUTRALISED = {
    b"BEGIN;\n": b"-- pgkura: BEGIN; (the restore is one transaction)\n",
    b"COMMIT;\n": b"-- pgkura: COMMIT; (the restore commits once, at the end)\n",
}
_COPY_END = b"\\.\n"
# pg_dump --clean's drops that cannot run as written over an existing database (found by the
# production rehearsal): each partition's inherited constraint is dropped on its own, which the
# server refuses; and every extension is dropped and created again, which ends the statements
# the application's sessions prepared with its types ("cache lookup failed for type").
_IDENT = rb'(?:"(?:[^"]|"")+"|[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*)'
_DROP_CONSTRAINT = re.compile(
    rb"ALTER TABLE IF EXISTS ONLY (?P<table>" + _IDENT + rb"\." + _IDENT + rb") "
    rb"DROP CONSTRAINT IF EXISTS (?P<name>" + _IDENT + rb");\n"
)
_DROP_EXTENSION = re.compile(rb"DROP EXTENSION IF EXISTS " + _IDENT + rb";\n")


class Transactions(Enum):
    """Who holds the transactions while the dump is loaded."""

    CALLER = "caller"  # one around the whole stream (db.restore): pg_dump's own are comments
    DUMP = "dump"  # none around it (db.upgrade's load): pg_dump's own BEGIN/COMMIT stay


class DumpStream:
    """feed() chunks of dump text, get back what psql should receive; finish() at the end."""

    def __init__(self, transactions: Transactions) -> None:
        self._neutralised = _NEUTRALISED if transactions is Transactions.CALLER else {}
        self._over_existing = transactions is Transactions.CALLER  # a restore over a database
        self._pending = b""
        self._in_copy = False
        self.trailer_seen = False

    def feed(self, data: bytes) -> bytes:
        buf = self._pending + data if self._pending else data
        out: list[bytes] = []
        pos = 0
        while pos < len(buf):
            if self._in_copy:
                pos = self._copy_data(buf, pos, out)
                if self._in_copy:
                    break
                continue
            newline = buf.find(b"\n", pos)
            if newline < 0:
                break
            line = buf[pos : newline + 1]
            pos = newline + 1
            out.append(self._statement_line(line))
        self._pending = buf[pos:]
        return b"".join(out)

    def _copy_data(self, buf: bytes, pos: int, out: list[bytes]) -> int:
        """Pass COPY rows through untouched up to the `\\.` line; returns the new position."""
        if buf.startswith(_COPY_END, pos):
            end = pos
        else:
            found = buf.find(b"\n" + _COPY_END, pos)
            if found < 0:
                keep = buf.rfind(b"\n", pos) + 1  # a partial last line could be the start of \.
                if keep > pos:
                    out.append(buf[pos:keep])
                return keep if keep > pos else pos
            end = found + 1
        out.append(buf[pos : end + len(_COPY_END)])
        self._in_copy = False
        return end + len(_COPY_END)

    def _statement_line(self, line: bytes) -> bytes:
        if line in self._neutralised:
            return self._neutralised[line]
        if self._over_existing and line.startswith((b"ALTER TABLE IF EXISTS ONLY ", b"DROP EXT")):
            return _over_existing(line)
        if line.startswith(b"COPY ") and line.rstrip().endswith(b"FROM stdin;"):
            self._in_copy = True
        elif is_trailer(line):
            self.trailer_seen = True
        return line

    def finish(self) -> bytes:
        """What is left (a last line without a newline)."""
        rest, self._pending = self._pending, b""
        if is_trailer(rest):
            self.trailer_seen = True
        return rest


def _over_existing(line: bytes) -> bytes:
    """A clean-section drop as it must run over an existing database: an inherited constraint
    is left to its parent's drop (which takes the partitions' with it), and an installed
    extension is kept (the dump's CREATE EXTENSION IF NOT EXISTS then does nothing)."""
    if _DROP_EXTENSION.fullmatch(line):
        return b"-- pgkura: kept installed: " + line
    found = _DROP_CONSTRAINT.fullmatch(line)
    if found is None or b"$pgkura$" in line:
        return line
    table = found["table"].replace(b"'", b"''")
    name = found["name"].replace(b"'", b"''")
    return (
        b"DO $pgkura$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint"
        b" WHERE conrelid = pg_catalog.to_regclass('" + table + b"')"
        b" AND pg_catalog.quote_ident(conname) = '"
        + name
        + b"' AND coninhcount > 0) THEN "
        + line.rstrip(b"\n")
        + b" END IF; END $pgkura$;\n"
    )
