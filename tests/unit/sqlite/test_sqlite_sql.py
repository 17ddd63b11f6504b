"""What the SQLite import reads from CREATE statements (SQLite keeps their text, not their
parts) and how it writes defaults and CHECKs for PostgreSQL: portable or reported, never guessed."""

from __future__ import annotations

import pytest

from pgkura.sqlite.importer import _views, check_sql, default_sql
from pgkura.sqlite.schema import Column, Source, View, parse_create, tokenize


def test_checks_and_deferred_foreign_keys_are_read_from_the_create_text():
    checks, deferred = parse_create(
        "CREATE TABLE [t] (a INTEGER CHECK (a > 0) REFERENCES p(id) DEFERRABLE INITIALLY "
        'DEFERRED, b TEXT REFERENCES "P" NOT DEFERRABLE INITIALLY DEFERRED, -- a, comment\n'
        "c REFERENCES q DEFERRABLE, CONSTRAINT two CHECK (length(b) < 5 AND c IN (1, 2)), "
        "FOREIGN KEY (b, c) REFERENCES r (x, y) DEFERRABLE INITIALLY DEFERRED)"
    )
    assert [(c.name, c.text) for c in checks] == [
        (None, "a > 0"), ("two", "length(b) < 5 AND c IN (1, 2)")]  # fmt: skip
    assert deferred == {("p", "a"): True, ("p", "b"): False, ("q", "c"): False,
                        ("r", "b", "c"): True}  # fmt: skip


COLUMNS = {"qty": "Qty", "name": "Name"}


@pytest.mark.parametrize(("sqlite", "postgres"), [
    ("Qty >= 0 AND Qty <= 100", '"Qty" >= 0 AND "Qty" <= 100'),
    ("[qty] == 1 OR \"Name\" IS NOT NULL", '"Qty" = 1 OR "Name" IS NOT NULL'),
    ("name IN ('a', 'b''c')", "\"Name\" IN ('a', 'b''c')"),
    ("length(Name) BETWEEN 1 AND 10", 'length("Name") BETWEEN 1 AND 10'),
    ("Name GLOB '[A-Z]*'", None),  # no PostgreSQL meaning
    ("Qty IS 1", None),  # SQLite's IS compares values
    ("typeof(Qty) = 'integer'", None),
    ("other > 0", None),  # not a column of this table
])  # fmt: skip
def test_only_portable_checks_are_written(sqlite, postgres):
    assert check_sql(tokenize(sqlite), COLUMNS) == postgres


def _default(raw: str, pg_type: str) -> str | None:
    found = default_sql(Column("c", "", False, 0, raw, pg_type=pg_type))
    return None if found is None else found.as_string(None)


@pytest.mark.parametrize(("raw", "pg_type", "postgres"), [
    ("1", "bigint", "1"), ("-1.5", "double precision", "-1.5"), ("(0)", "numeric", "0"),
    ("1", "boolean", "TRUE"), ("FALSE", "boolean", "FALSE"), ("TRUE", "bigint", "1"),
    ("2", "boolean", None), ("'なし'", "text", "'なし'"), ("'a' || 'b'", "text", None),
    ("CURRENT_TIMESTAMP", "timestamp with time zone", "CURRENT_TIMESTAMP"),
    ("CURRENT_DATE", "date", "CURRENT_DATE"),
    ("CURRENT_TIMESTAMP", "text",
     "to_char(CURRENT_TIMESTAMP AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"),
    ("CURRENT_TIME", "timestamp with time zone", None), ("random()", "bigint", None),
    ("1", "timestamp with time zone", None),
])  # fmt: skip
def test_defaults_are_carried_where_they_mean_the_same(raw, pg_type, postgres):
    assert _default(raw, pg_type) == postgres


def test_a_view_with_a_second_statement_is_never_run():
    source = Source([], [View("v", tokenize("AS SELECT 1; DROP TABLE x"))], [])
    assert _views(source, "public") == []
    assert source.left_out == ["view v: not carried over (more than one statement)"]
