"""A large table read by several processes, and numbers written without a conversion each:
still in SQLite's order, still verified to the last bit, and a reading error still the one
refusal."""

from __future__ import annotations

import math
import sqlite3
import struct
from decimal import Decimal
from pathlib import Path

import psutil
import psycopg
import pytest

from pgkura.config.settings import load_settings
from pgkura.errors import PgkuraError
from pgkura.sqlite import parallel
from pgkura.sqlite.importer import SqliteImportError, import_sqlite
from pgkura.sqlite.schema import open_readonly, read_source
from pgkura.sqlite.stream import Rows


@pytest.fixture
def small_ranges(monkeypatch):
    """Ranges of a few rows, from a few thousand rows on, on three processes: the parallel path
    on a file that takes a second to make."""
    monkeypatch.setattr(parallel, "ENOUGH_ROWS", 1000)
    monkeypatch.setattr(parallel, "RANGE", 97)
    monkeypatch.setattr(parallel, "workers", lambda: 3)
    used = []
    original = parallel.blocks

    def counted(*args, **kwargs):
        used.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(parallel, "blocks", counted)
    return used


def _orders(path: Path, rows: int = 3000) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE 注文 (id INTEGER PRIMARY KEY, note TEXT, price NUMERIC, "
                     "amount REAL, tag BLOB, at DATETIME)")  # fmt: skip
        conn.executemany("INSERT INTO 注文 VALUES (?, ?, ?, ?, ?, ?)", [
            (i * 2 if i % 500 else i * 2 + 1, None if i % 7 == 0 else f"メモ\t{i}\\n",
             i / 100, (i % 977) * 1.25e-3, None if i % 11 == 0 else bytes([i % 256, 0]),
             f"2024-01-01 00:{i % 60:02d}:00") for i in range(1, rows + 1)])  # fmt: skip
        conn.execute("DELETE FROM 注文 WHERE id BETWEEN 1000 AND 1400")  # a range of nothing
    conn.close()
    return path


def test_a_large_table_read_by_several_processes_arrives_in_order_and_verified(
    pg_server, database, tmp_path, small_ranges
):
    path = _orders(tmp_path / "orders.db")
    target = load_settings(tmp_path, {"DATABASE_URL": pg_server.url(database)}).target
    done = import_sqlite(path, target, log=lambda _m: None)
    assert small_ranges == ["注文"]
    with sqlite3.connect(path) as conn:
        want = conn.execute("SELECT id, note, amount, tag FROM 注文 ORDER BY rowid").fetchall()
    conn.close()
    assert done.rows == len(want) == 2799
    with psycopg.connect(pg_server.url(database)) as conn:
        got = conn.execute('SELECT id, note, amount, tag FROM "注文"').fetchall()  # heap order
    assert got == want


def test_a_change_after_a_parallel_copy_is_noticed(pg_server, database, tmp_path, monkeypatch,
                                                   small_ranges):  # fmt: skip
    from pgkura.sqlite import importer as sqlite_import

    path = _orders(tmp_path / "orders.db")
    target = load_settings(tmp_path, {"DATABASE_URL": pg_server.url(database)}).target
    original = sqlite_import._advance_identities

    def then_tamper(conn, tables, schema):
        original(conn, tables, schema)
        conn.execute('UPDATE "注文" SET amount = amount + 1e-16 WHERE id = 2998')

    monkeypatch.setattr(sqlite_import, "_advance_identities", then_tamper)
    with pytest.raises(SqliteImportError, match="checksums differ"):
        import_sqlite(path, target, log=lambda _m: None)
    assert small_ranges == ["注文"]


def test_sqlites_error_in_a_reading_process_reaches_the_caller(tmp_path, small_ranges):
    path = _orders(tmp_path / "orders.db")
    conn = open_readonly(path)
    table = read_source(conn, path).tables[0]
    plan = parallel.split(conn, table)
    conn.close()
    assert plan is not None
    assert len(plan.ranges) > 3
    with pytest.raises(sqlite3.DatabaseError, match="no such table"):
        list(parallel.blocks(path, "gone", table.columns, plan, Rows(table.columns)))


EDGES = [0.0, -0.0, 1e-4, math.nextafter(1e-4, 0), 1e15, math.nextafter(1e15, 0), 1e16,
         math.nextafter(1e16, 0), -123456789012345.67, 0.1 + 0.2, 1 / 3, 5e-324, -2.5,
         1.7976931348623157e308, 100.0, 7.0]  # fmt: skip


@pytest.mark.parametrize("declared", ["REAL", "NUMERIC"])
def test_numbers_on_either_side_of_the_fixed_point_bounds_arrive_exact(
    pg_server, database, tmp_path, declared
):
    """Python writes a number's repr where PostgreSQL prints the same digits (doubles from 1e-4
    up to 1e15, numerics up to 1e16) and converts the rest one by one: every one arrives to the
    bit, and the import's own check passes."""
    path = tmp_path / "edges.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE t (n INTEGER PRIMARY KEY, v {declared})")
        conn.executemany("INSERT INTO t (v) VALUES (?)", [(v,) for v in EDGES])
    conn.close()
    target = load_settings(tmp_path, {"DATABASE_URL": pg_server.url(database)}).target
    assert import_sqlite(path, target, log=lambda _m: None).rows == len(EDGES)
    with sqlite3.connect(path) as conn:  # SQLite itself keeps -0.0 as 0.0
        held = [r[0] for r in conn.execute("SELECT v FROM t ORDER BY n")]
    conn.close()
    with psycopg.connect(pg_server.url(database)) as conn:
        got = [r[0] for r in conn.execute("SELECT v FROM t ORDER BY n")]
    if declared == "REAL":
        assert [struct.pack(">d", v) for v in got] == [struct.pack(">d", v) for v in held]
    else:
        assert got == [Decimal(repr(v)) for v in held]


def test_a_reading_process_that_dies_is_named_and_the_others_are_stopped(tmp_path, small_ranges):
    path = _orders(tmp_path / "orders.db", rows=20000)
    conn = open_readonly(path)
    table = read_source(conn, path).tables[0]
    plan = parallel.split(conn, table)
    conn.close()
    assert plan is not None
    blocks = parallel.blocks(path, table.name, table.columns, plan, Rows(table.columns))
    next(blocks)
    readers = [
        p
        for p in psutil.Process().children()  # only ours: other fixtures run some
        if "pgkura.sqlite.parallel import serve" in " ".join(p.cmdline())
    ]
    assert len(readers) == 3
    readers[1].kill()
    with pytest.raises(PgkuraError, match=r"SQLite reader \d ended unexpectedly \(exit code -9"):
        list(blocks)
    assert not any(r.is_running() and r.status() != psutil.STATUS_ZOMBIE for r in readers)
