"""The COPY text the importer writes, and the checksum it compares PostgreSQL's output with."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgkura.sqlite.schema import Column, read_source, text_or_bytes
from pgkura.sqlite.stream import Rows, ahead, checksum, text

texts = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)))


def _columns(*types: str) -> list[Column]:
    return [Column(f"c{i}", "", False, 0, pg_type=t) for i, t in enumerate(types)]


def test_text_is_escaped_as_postgresql_escapes_its_copy_output():
    assert text("a\\b\tc\nd\re\bf\fg\vh 日本") == "a\\\\b\\tc\\nd\\re\\bf\\fg\\vh 日本"


@given(st.lists(texts), st.integers(1, 7))
def test_the_checksum_of_what_was_sent_equals_that_of_the_same_rows_read_back(values, cut):
    """PostgreSQL's COPY output arrives in chunks that need not end with a row, and its rows in
    any order."""
    sent = Rows(_columns("text"))
    data = b"".join(sent.blocks([(v,) for v in values], size=3))
    chunks = [data[i : i + cut] for i in range(0, len(data), cut)]
    assert checksum(["text"], chunks) == (sent.count, sent.total)
    backwards = b"".join(r + b"\n" for r in reversed(data.split(b"\n")[:-1]))
    assert checksum(["text"], [backwards]) == (sent.count, sent.total)


def test_json_is_compared_by_meaning_and_a_changed_value_is_not():
    sent = Rows(_columns("jsonb", "bigint"))
    list(sent.blocks([('{"b": 1,"a" :[2]}', 7)]))
    assert checksum(["jsonb", "bigint"], [b'{"a": [2], "b": 1}\t7\n']) == (1, sent.total)
    assert checksum(["jsonb", "bigint"], [b'{"a": [2], "b": 1}\t8\n']) != (1, sent.total)


moments = st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31)).map(
    lambda d: d.replace(microsecond=0).isoformat(" "))  # fmt: skip
stored = st.tuples(
    st.integers(-(2**63), 2**63 - 1),
    texts,
    st.binary(),
    st.sampled_from([0, 1]),
    st.dates().map(lambda d: d.isoformat()),
    moments,
    st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(-1e16, 1e16)),
).map(lambda row: tuple(None if v == "" else v for v in row))


@given(st.lists(stored, min_size=1, max_size=12), st.sampled_from([1, 5, 1000]))
def test_sqlite_writes_the_copy_text_python_would(rows, size):
    """The plain-form fields, written by SQLite (integers, flags, canonical dates and times) or
    by Python a block at a time (escaped text, blobs, numbers), are the bytes, and the
    checksum, of Python's conversion of each value on its own."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)  # read on a second thread
    conn.text_factory = text_or_bytes
    conn.execute("CREATE TABLE t (i INTEGER, s TEXT, b BLOB, f BOOLEAN, d DATE, m DATETIME, "
                 "n NUMERIC)")  # fmt: skip
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    columns = read_source(conn).tables[0].columns
    assert all(c.plain_form for c in columns[:-1])  # the numeric's reals: when SQLite can
    assert [c.pg_type for c in columns] == ["bigint", "text", "bytea", "boolean", "date",
                                            "timestamp with time zone", "numeric"]  # fmt: skip
    by_sqlite = Rows(columns)  # its order: SQLite's fields, Python's plain ones, the rest
    by_python = Rows([dataclasses.replace(c, plain_form=False) for c in by_sqlite.columns])
    assert by_sqlite.line
    assert by_sqlite.writers
    assert not by_python.line
    written = [b"".join(r.blocks(conn.execute(r.select("t")), size))
               for r in (by_sqlite, by_python)]  # fmt: skip
    assert written[0] == written[1]
    assert (by_sqlite.count, by_sqlite.total) == (by_python.count, by_python.total)
    assert by_sqlite.count == len(rows)


def test_values_outside_sqlites_own_form_are_converted_by_python():
    """Dates and times in other forms (a T, an offset, Unix time) still become dates and times,
    converted by Python; the column's fields come after SQLite's in the line."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)  # read on a second thread
    conn.text_factory = text_or_bytes
    conn.execute("CREATE TABLE t (m DATETIME, d DATE, f BOOLEAN, i INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [
        ("2024-01-02T03:04:05+09:00", "2024-01-02", "true", 1), (0, None, 1, None)])  # fmt: skip
    columns = read_source(conn).tables[0].columns
    assert [(c.pg_type, c.plain_form) for c in columns] == [
        ("timestamp with time zone", False), ("date", True), ("boolean", False),
        ("bigint", True)]  # fmt: skip
    rows = Rows(columns)
    assert [c.name for c in rows.columns] == ["d", "i", "m", "f"]
    assert b"".join(rows.blocks(conn.execute(rows.select("t")))) == (
        b"2024-01-02\t1\t2024-01-01 18:04:05+00\tt\n"
        b"\\N\t\\N\t1970-01-01 00:00:00+00\tt\n")  # fmt: skip


def test_rows_read_ahead_arrive_in_order_and_a_reading_error_reaches_the_caller():
    """The reader thread hands over every block in order, raises its error in the caller, and
    stops when the caller does (no thread left reading)."""
    assert list(ahead(range(10), 4)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]

    def broken():
        yield 1
        raise sqlite3.DatabaseError("database disk image is malformed")

    with pytest.raises(sqlite3.DatabaseError, match="malformed"):
        list(ahead(broken(), 1))
    endless = ahead(iter(int, 1), 2, depth=1)  # never ends by itself
    assert next(endless) == [0, 0]
    endless.close()  # joins the reader: it saw the stop


def test_text_that_is_not_utf8_or_holds_nul_is_found_among_plain_text():
    """Only values with a byte outside ASCII or a NUL are looked at in Python: each such kind is
    still found next to plain text, and alone."""
    conn = sqlite3.connect(":memory:")
    conn.text_factory = text_or_bytes
    conn.execute("CREATE TABLE t (ascii TEXT, jp TEXT, mixed TEXT, broken TEXT, nul TEXT)")
    conn.execute("INSERT INTO t VALUES ('plain', 'plain', 'plain', CAST(x'ff41' AS TEXT), "
                 "'plain')")  # fmt: skip
    conn.execute("INSERT INTO t VALUES ('x', '日本語', CAST(x'41ff' AS TEXT), CAST(x'c0' AS TEXT), "
                 "CAST(x'e697a5006100' AS TEXT))")  # fmt: skip
    columns = read_source(conn).tables[0].columns
    assert [(c.pg_type, c.plain_form) for c in columns] == [
        ("text", True),
        ("text", True),
        ("text", False),
        ("bytea", False),
        ("bytea", False),
    ]
    assert "holds bytes, str: stored as text" in (columns[2].note or "")
    assert "NUL" in (columns[4].note or "")


@given(
    st.lists(st.one_of(st.none(), st.sampled_from([0.5, 1.0, 2, 1e-4, 3.25e14])), max_size=40),
    st.lists(st.one_of(st.none(), st.sampled_from([b"", b"\x00\xff", b"\\x"])), max_size=40),
)
def test_repeated_doubles_and_blobs_are_written_once_each_and_the_same(doubles, blobs):
    """Python's block writers convert a value once where a block repeats it: the fields are
    still each value's own (an integer in a double column as the double it becomes)."""
    n = min(len(doubles), len(blobs))
    columns = [Column("d", "REAL", False, 0, pg_type="double precision", plain_form=True),
               Column("b", "BLOB", False, 0, pg_type="bytea", plain_form=True)]  # fmt: skip
    rows = Rows(columns)
    data = b"".join(rows.blocks(list(zip(doubles[:n], blobs[:n], strict=True)), size=7))
    assert data.decode().splitlines() == [
        ("\\N" if d is None else repr(float(d))) + "\t" + ("\\N" if b is None else "\\\\x" + b.hex())
        for d, b in zip(doubles[:n], blobs[:n], strict=True)]  # fmt: skip


def test_a_moment_is_written_as_postgresql_prints_it_in_utc():
    """No fraction of a second when there is none, and none of its trailing zeros: the text
    PostgreSQL's timestamptz output gives under DateStyle ISO and TimeZone UTC."""
    from datetime import timedelta, timezone

    from pgkura.sqlite.stream import _moment

    tokyo = timezone(timedelta(hours=9))
    assert _moment(datetime(2024, 1, 2, 9, 0, tzinfo=tokyo)) == "2024-01-02 00:00:00+00"
    assert _moment(datetime(1, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)) == "0001-01-01 00:00:00.5+00"
    assert _moment(datetime(2024, 1, 2, 3, 4, 5, 1, tzinfo=UTC)) == "2024-01-02 03:04:05.000001+00"
