"""A plain-format dump on its way from a gzip file into psql.

pg_dump wraps large-object data in top-level `BEGIN;` / `COMMIT;` lines: `lo_open` and the
`lowrite` calls on its descriptor must share one transaction. Who holds the transactions
differs by use, so each use states it (`Transactions`): inside a restore that commits all or
nothing, such a COMMIT would commit everything before it, so those two lines (outside COPY
data, where they can only be pg_dump's own) become comments; a load with no transaction of
its own keeps them. The stream also remembers whether the dump's completion trailer went by:
a dump cut off between statements is otherwise valid SQL.
"""

from __future__ import annotations

from enum import Enum

TRAILERS = (
    b"-- PostgreSQL database dump complete",
    b"-- PostgreSQL database cluster dump complete",
)
_NEUTRALISED = {
    b"BEGIN;\n": b"-- pgkura: BEGIN; (the restore is one transaction)\n",
    b"COMMIT;\n": b"-- pgkura: COMMIT; (the restore commits once, at the end)\n",
}
_COPY_END = b"\\.\n"


class Transactions(Enum):
    """Who holds the transactions while the dump is loaded."""

    CALLER = "caller"  # one around the whole stream (db.restore): pg_dump's own are comments
    DUMP = "dump"  # none around it (db.upgrade's load): pg_dump's own BEGIN/COMMIT stay


class DumpStream:
    """feed() chunks of dump text, get back what psql should receive; finish() at the end."""

    def __init__(self, transactions: Transactions) -> None:
        self._neutralised = _NEUTRALISED if transactions is Transactions.CALLER else {}
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
        if line.startswith(b"COPY ") and line.rstrip().endswith(b"FROM stdin;"):
            self._in_copy = True
        elif line.startswith(TRAILERS):
            self.trailer_seen = True
        return line

    def finish(self) -> bytes:
        """What is left (a last line without a newline)."""
        rest, self._pending = self._pending, b""
        if rest.startswith(TRAILERS):
            self.trailer_seen = True
        return rest
