"""Which tables several processes read, and the ranges of rowids they split into."""

from __future__ import annotations

import sqlite3

import pytest

from pgkura.sqlite import parallel
from pgkura.sqlite.schema import open_readonly, read_source


@pytest.fixture(autouse=True)
def small(monkeypatch):
    monkeypatch.setattr(parallel, "ENOUGH_ROWS", 100)
    monkeypatch.setattr(parallel, "RANGE", 64)
    monkeypatch.setattr(parallel, "workers", lambda: 2)


def _plans(tmp_path, *statements):
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()
    conn = open_readonly(path)
    try:
        return {t.name: parallel.split(conn, t) for t in read_source(conn, path).tables}
    finally:
        conn.close()


def _filled(name: str, rows: int, step: int = 1) -> str:
    return (
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "  # noqa: S608
        f"INSERT INTO {name} (rowid) SELECT i * {step} FROM n"
    )


def test_ranges_cover_every_rowid_once_in_order(tmp_path):
    plan = _plans(tmp_path, "CREATE TABLE t (a TEXT)", _filled("t", 300))["t"]
    assert plan is not None
    assert plan.alias == "rowid"
    assert plan.ranges == [(1, 64), (65, 128), (129, 192), (193, 256), (257, 300)]


def test_small_sparse_and_rowless_tables_are_read_by_one_process(tmp_path, monkeypatch):
    plans = _plans(tmp_path, "CREATE TABLE small (a TEXT)", _filled("small", 99),
                   "CREATE TABLE sparse (a TEXT)", _filled("sparse", 200, step=5),
                   "CREATE TABLE keyed (k INTEGER PRIMARY KEY, a TEXT) WITHOUT ROWID",
                   "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) "
                   "INSERT INTO keyed SELECT i, 'x' FROM n")  # fmt: skip
    assert plans == {"small": None, "sparse": None, "keyed": None}
    monkeypatch.setattr(parallel, "workers", lambda: 1)  # one core: never
    (tmp_path / "one").mkdir()
    assert _plans(tmp_path / "one", "CREATE TABLE one (a TEXT)", _filled("one", 300)) == \
        {"one": None}  # fmt: skip


def test_a_column_named_rowid_leaves_another_name_for_it(tmp_path):
    plan = _plans(tmp_path, "CREATE TABLE t (rowid TEXT, a TEXT)", _filled("t", 200).replace(
        "(rowid)", "(_rowid_)"))["t"]  # fmt: skip
    assert plan is not None
    assert plan.alias == "_rowid_"
