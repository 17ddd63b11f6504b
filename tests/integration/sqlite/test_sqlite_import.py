"""db.import-sqlite on a real server: a SQLite database with every type and awkward value the
import claims to handle, the keys, indexes and sequences after it, lossy columns reported by
table and column, existing tables refused, and a failure half-way leaving the target as it was."""

from __future__ import annotations

import io
import itertools
import json
import sqlite3
from datetime import date, datetime
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql as pgsql

from pgkura.clusters.throwaway import bin_dir
from pgkura.config.settings import load_settings
from pgkura.progress import Reporter
from pgkura.sqlite.importer import SqliteImportError, import_sqlite
from pgkura.sqlite.schema import NotSqlite, Table, connect_readonly
from pgkura.sqlite.stream import PRINTING, Rows, checksum, read_back, summed
from tests.conftest import run_invoke

SCHEMA = """
CREATE TABLE users (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE, active BOOLEAN,
  created_at DATETIME, seen_at TIMESTAMP, birthday DATE, score REAL, balance NUMERIC,
  avatar BLOB, settings JSON, token UUID, anything, misc INTEGER, raw TEXT
);
CREATE TABLE posts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  title TEXT, body TEXT, UNIQUE (user_id, title)
);
CREATE INDEX posts_by_user ON posts (user_id);
CREATE TABLE "Order Items" ("Post" INTEGER, "Tag" TEXT, PRIMARY KEY ("Post", "Tag"));
"""
USERS = [
    (1, "山田太郎", "taro@example.jp", 1, "2024-01-02 03:04:05", 1700000000, "1990-05-01", 1.5,
     "10.50", b"\x00\x01\xff", '{"a": [1, 2], "名前": "値"}', "8f14e45f-ceea-467a-9f0c-3c8b5ac9a4d1",
     42, 7, "plain"),
    (5, "🍣 emoji", None, 0, "2024-02-29T23:59:59Z", 0, "2000-02-29", -1e300, 3, None,
     "[]", "00000000-0000-0000-0000-000000000000", "text here", "not a number", "tab\there"),
    (9, "O'Brien \\ back", "x@y.z", None, None, None, None, None, None, b"", None, None, 2.5,
     None, "line\nbreak"),
]  # fmt: skip


def make_sqlite(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA)
        conn.executemany(f"INSERT INTO users VALUES ({', '.join('?' * 15)})", USERS)  # noqa: S608
        conn.executemany("INSERT INTO posts (user_id, title, body) VALUES (?, ?, ?)",
                         [(1, "初投稿", "こんにちは"), (1, "二回目", None), (5, "寿司", "🍣" * 100)])  # fmt: skip
        conn.executemany('INSERT INTO "Order Items" VALUES (?, ?)', [(1, "a"), (1, "b"), (2, "a")])
    conn.close()
    return path


def cli(tmp_path: Path, url: str, *args: str):
    env = {"DATABASE_URL": url, "PGKURA_PG_BIN": str(bin_dir()),
           "PGKURA_ENV_FILE": str(tmp_path / "none.env")}  # fmt: skip
    return run_invoke("db.import-sqlite", *args, env=env, cwd=tmp_path)


def test_every_type_and_awkward_value_arrives_verified(pg_server, database, tmp_path):
    url = pg_server.url(database)
    done = cli(tmp_path, url, str(make_sqlite(tmp_path / "app.db")))
    assert done.returncode == 0, done.stderr
    assert "imported 3 tables, 9 rows into public" in done.stdout
    assert "compared with SQLite" in done.stdout
    # lossy or re-typed columns are named, never changed silently
    assert "note: users.anything: declared without a type but holds float, int, str" in done.stdout
    assert "note: users.misc: declared INTEGER but holds int, str: stored as text" in done.stdout
    with psycopg.connect(url) as conn:
        types = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'users'").fetchall())  # fmt: skip
        assert types == {
            "id": "bigint", "name": "text", "email": "text", "active": "boolean",
            "created_at": "timestamp with time zone", "seen_at": "timestamp with time zone",
            "birthday": "date", "score": "double precision", "balance": "numeric",
            "avatar": "bytea", "settings": "jsonb", "token": "uuid", "anything": "text",
            "misc": "text", "raw": "text",
        }  # fmt: skip
        row = conn.execute("SELECT name, active, birthday::text, balance::text, avatar, "
                           "settings->>'名前', raw FROM users WHERE id = 1").fetchone()  # fmt: skip
        # SQLite itself stored '10.50' in a NUMERIC column as the number 10.5 (its affinity rules)
        assert row == ("山田太郎", True, "1990-05-01", "10.5", b"\x00\x01\xff", "値", "plain")
        assert conn.execute("SELECT name FROM users WHERE id = 9").fetchone() == (
            "O'Brien \\ back",
        )
        # keys, indexes and the identity sequence
        conn.execute("INSERT INTO users (name) VALUES ('new')")
        assert conn.execute("SELECT max(id) FROM users").fetchone() == (10,)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO posts (user_id, title) VALUES (1, '初投稿')")
        conn.rollback()
        indexes = {
            r[0]
            for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
        }
        assert "posts_by_user" in indexes
        conn.execute("DELETE FROM users WHERE id = 1")  # ON DELETE CASCADE came along
        assert conn.execute("SELECT count(*) FROM posts").fetchone() == (1,)
        assert conn.execute('SELECT count(*) FROM "Order Items"').fetchone() == (3,)


def test_existing_tables_are_refused_and_a_fresh_schema_works(pg_server, database, tmp_path):
    url = pg_server.url(database)
    source = str(make_sqlite(tmp_path / "app.db"))
    assert cli(tmp_path, url, source).returncode == 0
    again = cli(tmp_path, url, source)
    assert again.returncode == 1
    assert "public already has table(s) Order Items, posts, users" in again.stderr
    assert "Nothing was changed" in again.stderr
    fresh = cli(tmp_path, url, source, "--schema", "from_sqlite")
    assert fresh.returncode == 0, fresh.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM from_sqlite.users").fetchone() == (3,)


def test_a_failure_half_way_leaves_the_target_as_it_was(pg_server, database, tmp_path):
    """SQLite never enforced this foreign key (foreign_keys is off by default): PostgreSQL
    refuses it after the data went in, and everything is rolled back."""
    path = make_sqlite(tmp_path / "app.db")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO posts (user_id, title) VALUES (999, 'orphan')")
    conn.close()
    url = pg_server.url(database)
    failed = cli(tmp_path, url, str(path))
    assert failed.returncode == 1
    assert "nothing was committed and the database is as it was" in failed.stderr
    assert "foreign key" in failed.stderr
    assert "is not present in table" in failed.stderr  # PostgreSQL's detail, on the same line
    assert len(failed.stderr.strip().splitlines()) == 2  # not PostgreSQL's multi-line report
    with psycopg.connect(url) as conn:
        left = conn.execute("SELECT count(*) FROM information_schema.tables "
                            "WHERE table_schema = 'public'").fetchone()  # fmt: skip
    assert left == (0,)


def test_the_dry_run_prints_the_ddl_and_changes_nothing(pg_server, database, tmp_path):
    url = pg_server.url(database)
    shown = cli(tmp_path, url, str(make_sqlite(tmp_path / "app.db")), "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert (
        'CREATE TABLE "public"."users" ("id" bigint GENERATED BY DEFAULT AS IDENTITY'
        in shown.stdout
    )
    assert 'ALTER TABLE "public"."posts" ADD FOREIGN KEY ("user_id") REFERENCES' in shown.stdout
    assert "users (3 rows): id INTEGER → bigint identity" in shown.stdout
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('public.users')").fetchone() == (None,)


def test_json_reports_the_dry_run_and_the_import(pg_server, database, tmp_path):
    """--json: one document with the same facts, for the dry run and the committed import."""
    url = pg_server.url(database)
    path = str(make_fidelity(tmp_path / "northwind.db"))
    planned = cli(tmp_path, url, path, "--dry-run", "--json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert (plan["dry_run"], plan["verified"], plan["seconds"], plan["rows"]) == (True, False,
                                                                                  None, 5)  # fmt: skip
    details = next(t for t in plan["tables"] if t["name"] == "Order Details")
    assert details["rows"] == 2
    assert {"name": "Added", "declared": "DATETIME", "type": "timestamp with time zone",
            "identity": False} in details["columns"]  # fmt: skip
    assert any(d["tried"] and d["statement"].startswith('CREATE VIEW "public"."Expensive"')
               for d in plan["ddl"])  # fmt: skip
    assert "trigger touch: not carried over; rewrite it as a PostgreSQL trigger function" in (
        plan["notes"])  # fmt: skip
    with psycopg.connect(url) as conn:  # the dry run changed nothing
        assert conn.execute("SELECT to_regclass('public.notes')").fetchone() == (None,)
    done = cli(tmp_path, url, path, "--json")
    assert done.returncode == 0, done.stderr
    imported = json.loads(done.stdout)  # nothing but the document on stdout
    assert (imported["dry_run"], imported["verified"], imported["ddl"]) == (False, True, None)
    assert imported["rows"] == 5
    assert imported["seconds"] >= 0
    assert imported["target"].startswith("postgresql://")
    # what PostgreSQL refused comes after the plan's own notes, by table and CHECK
    assert "Order Details: CHECK (ProductID < 3): not carried over (not every row satisfies it)" \
        in imported["notes"]  # fmt: skip
    assert set(plan["notes"]) <= set(imported["notes"])


def test_a_database_in_another_encoding_gets_the_japanese_text_intact(pg_server, tmp_path):
    """The COPY text is UTF-8 whatever the database's encoding (EUC_JP here) would default to."""
    path = tmp_path / "jp.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (name TEXT, at DATETIME)")
        conn.execute("INSERT INTO t VALUES ('山田太郎 ｶﾅ', '2024-01-02 03:04:05')")
    conn.close()
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
        admin.execute("CREATE DATABASE euc ENCODING 'EUC_JP' LC_COLLATE 'C' LC_CTYPE 'C' "
                      "TEMPLATE template0")  # fmt: skip
    try:
        done = cli(tmp_path, pg_server.url("euc"), str(path))
        assert done.returncode == 0, done.stderr
        with psycopg.connect(pg_server.url("euc")) as conn:
            assert conn.execute("SELECT name FROM t").fetchone() == ("山田太郎 ｶﾅ",)
    finally:
        with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
            admin.execute("DROP DATABASE euc WITH (FORCE)")


def test_a_file_that_is_not_sqlite_is_refused(pg_server, database, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    refused = cli(tmp_path, pg_server.url(database), str(tmp_path / "notes.txt"))
    assert refused.returncode == 1
    assert "is not a SQLite database" in refused.stderr


_schemas = itertools.count(1)
texts = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=30)
floats = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(rows=st.lists(st.tuples(texts, floats, st.integers(-(2**63), 2**63 - 1), st.binary(max_size=20)),
                     max_size=8))  # fmt: skip
def test_whatever_users_stored_comes_back_equal(pg_server, database, tmp_path_factory, rows):
    """The import's own check (counts and checksums, read back from PostgreSQL) passes for any
    text, float, 64-bit integer and blob: it would raise otherwise."""
    path = tmp_path_factory.mktemp("sq") / "gen.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (s TEXT, f REAL, i INTEGER, b BLOB)")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    conn.close()
    target = load_settings(
        tmp_path_factory.getbasetemp(), {"DATABASE_URL": pg_server.url(database)}
    ).target
    done = import_sqlite(path, target, schema=f"gen_{next(_schemas)}", log=lambda _m: None)
    assert done.rows == len(rows)


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE posts SET body = 'changed' WHERE title = '初投稿'",
        "UPDATE users SET score = score + 1e-15 WHERE id = 1",  # one step of the double's last bit
        "UPDATE users SET created_at = created_at + interval '1 microsecond' WHERE id = 1",
        """UPDATE users SET settings = '{"a": [1, 2], "名前": "値", "b": 0}' WHERE id = 1""",
        "UPDATE users SET avatar = '\\x0001fe' WHERE id = 1",
        "UPDATE users SET balance = 10.50 WHERE id = 1",  # 10.5 in SQLite: the scale counts
        'DELETE FROM "Order Items" WHERE "Tag" = \'b\'',
    ],
)
def test_the_import_check_notices_a_difference(pg_server, database, tmp_path, monkeypatch, change):
    """The verification is real: a value changed in PostgreSQL after the COPY (by the smallest
    step its type has) makes the import fail, and nothing is left behind."""
    from pgkura.sqlite import importer as sqlite_import

    path = make_sqlite(tmp_path / "app.db")
    target = load_settings(tmp_path, {"DATABASE_URL": pg_server.url(database)}).target
    original = sqlite_import._advance_identities

    def then_tamper(conn, tables, schema):
        original(conn, tables, schema)
        conn.execute(change)

    monkeypatch.setattr(sqlite_import, "_advance_identities", then_tamper)
    with pytest.raises(SqliteImportError, match=r"rows read back, 3 in SQLite; checksums differ|"
                       r"2 rows read back, 3 in SQLite"):  # fmt: skip
        import_sqlite(path, target, log=lambda _m: None)
    with psycopg.connect(pg_server.url(database)) as conn:
        assert conn.execute("SELECT to_regclass('public.posts')").fetchone() == (None,)


def test_progress_counts_the_rows_of_all_tables(pg_server, database, tmp_path):
    out = io.StringIO()
    every_row = Reporter(out, settle=0, every=0, heartbeat=None)  # no timing assumption
    source = make_sqlite(tmp_path / "app.db")
    target = load_settings(tmp_path, {"DATABASE_URL": pg_server.url(database)}).target
    import_sqlite(source, target, progress=every_row, log=lambda _m: None)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("import: 3 rows of 9 rows, 33%, ")  # a block at a time
    assert lines[0].endswith(", Order Items")  # the table being copied
    assert lines[1].startswith("import: 6 rows of 9 rows, 66%, ")  # the next table adds on
    assert lines[-2].startswith("import: 9 rows of 9 rows, 99%, ")  # done only once committed
    assert lines[-1].startswith("import: 9 rows in ")


def make_damaged(tmp_path: Path) -> dict[str, Path]:
    """A real file of about 250 pages, cut off in three places, and one with a page flipped."""
    good = tmp_path / "whole.db"
    with sqlite3.connect(good) as conn:
        conn.execute("CREATE TABLE memo (id INTEGER PRIMARY KEY, body TEXT)")
        conn.executemany("INSERT INTO memo (body) VALUES (?)",
                         [(f"本文 {i} " * 20,) for i in range(2000)])  # fmt: skip
        conn.execute("CREATE INDEX memo_body ON memo (body)")
    conn.close()
    raw = good.read_bytes()
    page = 4096
    flipped = bytearray(raw)
    flipped[5 * page : 6 * page] = bytes(b ^ 0xFF for b in raw[5 * page : 6 * page])
    variants = {"header.db": raw[:100], "half.db": raw[: len(raw) // 2],
                "last-page.db": raw[:-page], "flipped.db": bytes(flipped)}  # fmt: skip
    for name, data in variants.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in variants}


def test_a_damaged_or_cut_off_file_is_refused_in_two_lines(pg_server, database, tmp_path):
    url = pg_server.url(database)
    for (name, path), dry in itertools.product(make_damaged(tmp_path).items(), ([], ["--dry-run"])):
        refused = cli(tmp_path, url, str(path), *dry)
        assert refused.returncode == 1, (name, dry)
        assert "Traceback" not in refused.stderr, name
        lines = refused.stderr.strip().splitlines()
        assert len(lines) <= 2, refused.stderr
        assert f"{path} is damaged or cut off" in lines[0]
        assert "nothing was imported" in lines[0]
        assert ".recover" in lines[-1]
    with psycopg.connect(url) as conn:
        made = conn.execute("SELECT count(*) FROM information_schema.tables "
                            "WHERE table_schema = 'public'").fetchone()  # fmt: skip
    assert made == (0,)


FIDELITY = """
CREATE TABLE Categories (CategoryID INTEGER PRIMARY KEY, CategoryName TEXT NOT NULL);
CREATE TABLE "Order Details" (
  OrderID INTEGER NOT NULL, ProductID INTEGER NOT NULL,
  UnitPrice NUMERIC NOT NULL DEFAULT 0, Quantity INTEGER NOT NULL DEFAULT 1,
  Discount REAL NOT NULL DEFAULT (0),
  CategoryID INTEGER REFERENCES Categories (CategoryID) DEFERRABLE INITIALLY DEFERRED,
  Note TEXT DEFAULT 'なし', Added DATETIME DEFAULT CURRENT_TIMESTAMP,
  Stamp TEXT DEFAULT CURRENT_TIMESTAMP, Active BOOLEAN DEFAULT TRUE, Odd TEXT DEFAULT (random()),
  PRIMARY KEY (OrderID, ProductID),
  CHECK (Discount >= 0 AND Discount <= 1),
  CONSTRAINT qty_positive CHECK ([Quantity] > 0),
  CHECK (UnitPrice >= 0), CHECK (length(Note) < 50 OR Note IS NULL),
  CHECK (Note GLOB '*'),
  CHECK (ProductID < 3)
);
CREATE TABLE plain (a INTEGER REFERENCES Categories (CategoryID));
CREATE VIEW "Expensive" AS SELECT OrderID, [UnitPrice] FROM [Order Details] WHERE UnitPrice > 10;
CREATE VIEW bad AS SELECT strftime('%Y', Added) AS y FROM "Order Details";
CREATE VIRTUAL TABLE notes USING fts5(title, body);
CREATE VIRTUAL TABLE shadowless USING fts5(body, content='');
CREATE TRIGGER touch AFTER INSERT ON Categories BEGIN SELECT 1; END;
"""


def make_fidelity(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript(FIDELITY)
        conn.execute("PRAGMA ignore_check_constraints = ON")  # as a file written before the CHECK
        conn.execute("INSERT INTO Categories VALUES (1, '飲料')")
        conn.executemany(
            'INSERT INTO "Order Details" (OrderID, ProductID, UnitPrice, Quantity, Discount, '
            "CategoryID, Note, Added, Stamp, Active) VALUES (?, ?, ?, ?, ?, 1, ?, "
            "'2024-01-02 03:04:05', 'x', 1)",
            [(1, 1, 20, 5, 0.1, "a"), (1, 3, 5, 2, 0, None)],
        )
        conn.executemany("INSERT INTO notes (rowid, title, body) VALUES (?, ?, ?)",
                         [(7, "会議", "来週の会議の議事録"), (9, "memo", "buy milk")])  # fmt: skip
    conn.close()
    return path


def test_defaults_checks_views_and_full_text_tables_are_carried_or_named(
    pg_server, database, tmp_path
):
    url = pg_server.url(database)
    done = cli(tmp_path, url, str(make_fidelity(tmp_path / "northwind.db")))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    with psycopg.connect(url) as conn:
        # defaults, as the application relied on them
        row = conn.execute(
            'INSERT INTO "Order Details" ("OrderID", "ProductID", "CategoryID") VALUES (9, 1, 1) '
            'RETURNING "UnitPrice"::text, "Quantity", "Discount", "Note", "Added" IS NOT NULL, '
            '"Stamp" ~ \'^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d$\', "Active", "Odd"'
        ).fetchone()
        assert row == ("0", 1, 0.0, "なし", True, True, True, None)
        conn.rollback()
        # portable CHECKs, validated against the data
        checks = {r[0] for r in conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'c' "
            "AND conrelid = '\"Order Details\"'::regclass")}  # fmt: skip
        assert checks == {
            'CHECK ((("Discount" >= (0)::double precision) AND ("Discount" <= (1)::double precision)))',
            'CHECK (("Quantity" > 0))', 'CHECK (("UnitPrice" >= (0)::numeric))',
            'CHECK (((length("Note") < 50) OR ("Note" IS NULL)))',
        }  # fmt: skip
        named = conn.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'qty_positive'")
        assert named.fetchone() == (1,)
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute('UPDATE "Order Details" SET "Quantity" = 0')
        conn.rollback()
        # the deferrable foreign key stays deferrable, the plain one does not become so
        deferral = dict(conn.execute(
            "SELECT conrelid::regclass::text, condeferred FROM pg_constraint WHERE contype = 'f'"
        ).fetchall())  # fmt: skip
        assert deferral == {'"Order Details"': True, "plain": False}
        # views: the portable one works, the other is named with PostgreSQL's reason
        assert conn.execute('SELECT * FROM "Expensive"').fetchall() == [(1, 20)]
        assert conn.execute("SELECT to_regclass('bad')").fetchone() == (None,)
        # the full-text table as a plain table with its rowid, never its shadow tables
        assert conn.execute("SELECT rowid, title, body FROM notes ORDER BY rowid").fetchall() == [
            (7, "会議", "来週の会議の議事録"), (9, "memo", "buy milk")]  # fmt: skip
        shadows = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'notes\\_%' "
                               "OR tablename LIKE 'shadowless%'").fetchone()  # fmt: skip
        assert shadows == (0,)
    assert "note: Order Details: Odd: DEFAULT random() has no PostgreSQL equivalent" in out
    assert "note: Order Details: CHECK (Note GLOB '*'): not portable to PostgreSQL" in out
    assert ("note: Order Details: CHECK (ProductID < 3): not carried over (not every row "
            "satisfies it)") in out  # fmt: skip
    assert "note: view bad: not carried over (PostgreSQL: function strftime(" in out
    assert "note: notes: an fts5 full-text table, imported as a plain table" in out
    assert 'USING gin ("title" gin_bigm_ops)' in out
    assert "note: shadowless: an fts5 index over another table's text" in out
    assert "note: trigger touch: not carried over" in out
    assert "imported 4 tables, 5 rows" in out


def test_json_with_nan_stays_text_and_is_named(pg_server, database, tmp_path):
    """Python's JSON parser takes NaN, PostgreSQL's does not: the column stays text."""
    path = tmp_path / "nan.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE m (good JSON, odd JSON)")
        conn.executemany("INSERT INTO m VALUES (?, ?)",
                         [('{"a": 1}', '{"x": NaN}'), ("[]", '{"y": 2}')])  # fmt: skip
    conn.close()
    url = pg_server.url(database)
    done = cli(tmp_path, url, str(path))
    assert done.returncode == 0, done.stderr
    assert "note: m.odd: declared JSON, but not every value is a valid jsonb" in done.stdout
    with psycopg.connect(url) as conn:
        types = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_name = 'm'").fetchall())  # fmt: skip
        assert types == {"good": "jsonb", "odd": "text"}
        assert conn.execute("SELECT odd FROM m WHERE good = '{\"a\": 1}'").fetchone() == (
            '{"x": NaN}',
        )


def test_dates_untyped_integers_and_empty_columns_get_their_types(pg_server, database, tmp_path):
    path = tmp_path / "types.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (day DATETIME, n)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [("2024-01-02", 1), ("1999-12-31", 2**40)])
        conn.execute("CREATE TABLE empty (created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, "
                     "flag BOOLEAN DEFAULT 0, doc JSON)")  # fmt: skip
    conn.close()
    url = pg_server.url(database)
    done = cli(tmp_path, url, str(path))
    assert done.returncode == 0, done.stderr
    assert "note: t.day: declared DATETIME, holds only dates: date" in done.stdout
    assert "note: t.n: declared without a type, holds only integers: bigint" in done.stdout
    with psycopg.connect(url) as conn:
        types = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_schema = 'public'").fetchall())  # fmt: skip
        assert types == {"day": "date", "n": "bigint", "created": "timestamp with time zone",
                         "flag": "boolean", "doc": "jsonb"}  # fmt: skip
        conn.execute("INSERT INTO empty (doc) VALUES ('{}')")
        assert conn.execute("SELECT flag FROM empty").fetchone() == (False,)


def _many_rows(path: Path) -> Path:
    make_sqlite(path)
    with sqlite3.connect(path) as conn:  # gaps in the rowids, a range with none at all
        conn.executemany("INSERT INTO posts (id, user_id, title, body) VALUES (?, 1, ?, ?)",
                         [(i * i, f"t{i}", "x\ty" if i % 3 else None) for i in range(4, 60)])  # fmt: skip
    conn.close()
    return path


def test_damage_found_half_way_through_a_table_leaves_nothing_behind(pg_server, database,
                                                                     tmp_path, monkeypatch):  # fmt: skip
    """SQLite finds damage after part of a table went into the COPY: the import stops with the
    one clear refusal, and PostgreSQL holds nothing of it."""
    from pgkura.sqlite import importer as sqlite_import

    original = sqlite_import.Rows.blocks

    def damaged_near_the_end(self, rows, size=4096):
        for block in original(self, rows, 1):
            if block.startswith(b"3481\t"):  # the last row of posts
                raise sqlite3.DatabaseError("database disk image is malformed")
            yield block

    monkeypatch.setattr(sqlite_import.Rows, "blocks", damaged_near_the_end)
    path = _many_rows(tmp_path / "app.db")
    target = load_settings(tmp_path, {"DATABASE_URL": pg_server.url(database)}).target
    with pytest.raises(NotSqlite, match=r"is damaged or cut off.*malformed"):
        import_sqlite(path, target, log=lambda _m: None)
    with psycopg.connect(pg_server.url(database)) as conn:
        left = conn.execute("SELECT count(*) FROM information_schema.tables "
                            "WHERE table_schema = 'public'").fetchone()  # fmt: skip
    assert left == (0,)


@pytest.mark.parametrize("change", ["UPDATE t SET r = r + 1e-16 WHERE r = 0.1",  # its last bit
                                    "UPDATE t SET r = 101 WHERE r = 100"])  # fmt: skip
def test_doubles_sqlite_wrote_are_checked_to_the_last_bit(pg_server, database, tmp_path,
                                                          monkeypatch, change):  # fmt: skip
    """Doubles whose SQLite text is Python's shortest are written by SQLite and read back as
    PostgreSQL's shortest text: still exact, so the smallest change is noticed."""
    from pgkura.sqlite import importer as sqlite_import

    path = tmp_path / "reals.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (r REAL)")
        conn.executemany("INSERT INTO t VALUES (?)", [(0.1,), (100.0,), (-2.5e-3,), (None,)])
    conn.close()
    target = load_settings(tmp_path, {"DATABASE_URL": pg_server.url(database)}).target
    assert [c.plain_form for c in sqlite_import.dry_run(path, "public").tables[0].columns] \
        == [True]  # fmt: skip
    assert import_sqlite(path, target, schema="first", log=lambda _m: None).rows == 4
    original = sqlite_import._advance_identities

    def then_tamper(conn, tables, schema):
        original(conn, tables, schema)
        conn.execute(change)

    monkeypatch.setattr(sqlite_import, "_advance_identities", then_tamper)
    with pytest.raises(SqliteImportError, match="checksums differ"):
        import_sqlite(path, target, log=lambda _m: None)


@pytest.mark.parametrize("change", [None, "UPDATE t SET m = m + interval '1 microsecond'",
                                    "UPDATE t SET d = d + 1 WHERE d = '2024-02-29'"])  # fmt: skip
def test_dates_and_times_sqlite_wrote_are_checked_whatever_the_server_shows(
    pg_server, database, tmp_path, monkeypatch, change
):
    """Dates and times in SQLite's own form are written by SQLite and read back as PostgreSQL
    prints them, on a server whose time zone and date style are not UTC's and ISO's: equal when
    nothing changed, and a microsecond is noticed."""
    from pgkura.sqlite import importer as sqlite_import

    path = tmp_path / "times.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (d DATE, m DATETIME)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [("2024-02-29", "2024-02-29 23:59:59"),
                         ("0001-01-01", "1900-01-01 00:00:00"), (None, None)])  # fmt: skip
    conn.close()
    url = pg_server.url(database)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {database} SET TimeZone TO 'Asia/Tokyo'")
        conn.execute(f"ALTER DATABASE {database} SET DateStyle TO 'SQL, DMY'")
    target = load_settings(tmp_path, {"DATABASE_URL": url}).target
    columns = sqlite_import.dry_run(path, "public").tables[0].columns
    assert [(c.pg_type, c.plain_form) for c in columns] == [
        ("date", True), ("timestamp with time zone", True)]  # fmt: skip
    original = sqlite_import._advance_identities

    def then_tamper(conn, tables, schema):
        original(conn, tables, schema)
        conn.execute(change)

    if change is None:
        assert import_sqlite(path, target, log=lambda _m: None).rows == 3
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT m::text FROM t WHERE d = '2024-02-29'").fetchone() \
                == ("01/03/2024 08:59:59 JST",)  # fmt: skip
        return
    monkeypatch.setattr(sqlite_import, "_advance_identities", then_tamper)
    with pytest.raises(SqliteImportError, match="checksums differ"):
        import_sqlite(path, target, log=lambda _m: None)


escapes = st.text(st.sampled_from("\\\b\f\n\r\t\va日"), max_size=6)  # all COPY escapes
moments = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31))
_rows = st.lists(st.tuples(
    st.none() | texts | escapes, st.none() | floats, st.none() | st.integers(-(2**63), 2**63 - 1),
    st.none() | st.binary(max_size=20), st.none() | st.sampled_from([0, 1]),
    st.none() | st.dates(min_value=date(1, 1, 1)).map(date.isoformat),
    st.none() | moments.map(lambda m: m.isoformat(" ", "seconds")),  # SQLite's own form
    st.none() | moments.map(lambda m: m.isoformat(" ")),  # fractions of a second: converted
), max_size=8)  # fmt: skip


def _both_checks(conn: psycopg.Connection, path: Path, table: Table, schema: str) -> list:
    """(rows, checksum) of the table as sent, as PostgreSQL sums it, and as read back."""
    sent = Rows(table.columns)
    source = connect_readonly(path)
    try:
        for _block in sent.read(source, table.name):
            pass
    finally:
        source.close()
    for name, value in PRINTING.items():
        conn.execute("SELECT set_config(%s, %s, false)", (name, value))
    where = pgsql.Identifier(schema, table.name)
    count, total = conn.execute(pgsql.SQL("{} FROM {}").format(summed(sent), where)).fetchone()
    with conn.cursor().copy(pgsql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(
            read_back(sent), where)) as copy:  # fmt: skip
        back = checksum([c.pg_type for c in sent.columns], copy)
    return [(sent.count, sent.total), (count, int(total)), back]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(rows=_rows)
def test_postgresql_sums_what_was_sent_as_the_read_back_does(pg_server, database,
                                                             tmp_path_factory, rows):  # fmt: skip
    """PostgreSQL's own sum of the table (text with every character COPY escapes, NULLs of every
    type, flags, dates, times, doubles, blobs) equals the checksum of what was sent and that of
    the table read back: the import passes, and the two ways of checking agree."""
    path = tmp_path_factory.mktemp("sq") / "gen.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (s TEXT, f REAL, i INTEGER, b BLOB, flag BOOLEAN, d DATE, "
                     "m DATETIME, mf TIMESTAMP)")  # fmt: skip
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.close()
    url = pg_server.url(database)
    schema = f"both_{next(_schemas)}"
    target = load_settings(tmp_path_factory.getbasetemp(), {"DATABASE_URL": url}).target
    done = import_sqlite(path, target, schema=schema, log=lambda _m: None)
    with psycopg.connect(url) as conn:
        sent, by_postgresql, read = _both_checks(conn, path, done.tables[0], schema)
    assert sent == by_postgresql == read
    assert sent[0] == len(rows)


TYPED = [("tab\there", 0.1, 7, b"\x00\xff", 1, "2024-02-29", "2024-02-29 23:59:59", "10.5"),
         ("back\\slash", -2.5e-3, -1, b"", 0, "0001-01-01", "1900-01-01 00:00:00", 3),
         (None, None, None, None, None, None, None, None)]  # fmt: skip


@pytest.mark.parametrize("reading", ["summed", "read back"])
@pytest.mark.parametrize("change", [
    "UPDATE t SET s = replace(s, E'\\t', E'\\n') WHERE s LIKE 'tab%'",  # one escaped character for another
    "UPDATE t SET s = 'back/slash' WHERE s LIKE 'back%'",
    "UPDATE t SET f = f + 1e-16 WHERE f = 0.1",  # the double's last bit
    "UPDATE t SET i = i + 1 WHERE i = 7",
    "UPDATE t SET b = '\\x00fe' WHERE b = '\\x00ff'",
    "UPDATE t SET flag = NULL WHERE NOT flag",  # NULL is not false
    "UPDATE t SET d = d + 1 WHERE d = '2024-02-29'",
    "UPDATE t SET m = m + interval '1 microsecond' WHERE d = '2024-02-29'",
    "UPDATE t SET n = 10.50 WHERE n = 10.5",  # the scale counts
    "UPDATE t SET s = 'NULL' WHERE s IS NULL",
])  # fmt: skip
def test_either_check_notices_the_smallest_change_of_any_type(pg_server, database, tmp_path,
                                                              monkeypatch, reading, change):  # fmt: skip
    """The sum PostgreSQL computes (and the COPY read-back, used for JSON and older servers)
    notices a change of any type by the smallest step it has; nothing is left behind."""
    from pgkura.sqlite import importer as sqlite_import

    path = tmp_path / "typed.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (s TEXT, f REAL, i INTEGER, b BLOB, flag BOOLEAN, d DATE, "
                     "m DATETIME, n NUMERIC)")  # fmt: skip
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)", TYPED)
    conn.close()
    target = load_settings(tmp_path, {"DATABASE_URL": pg_server.url(database)}).target
    if reading == "read back":
        monkeypatch.setattr(sqlite_import, "summed", lambda _rows: None)
    assert import_sqlite(path, target, schema="untouched", log=lambda _m: None).rows == 3
    original = sqlite_import._advance_identities

    def then_tamper(conn, tables, schema):
        original(conn, tables, schema)
        assert conn.execute(change).rowcount == 1

    monkeypatch.setattr(sqlite_import, "_advance_identities", then_tamper)
    with pytest.raises(SqliteImportError, match="checksums differ"):
        import_sqlite(path, target, log=lambda _m: None)
    with psycopg.connect(pg_server.url(database)) as conn:
        assert conn.execute("SELECT to_regclass('public.t')").fetchone() == (None,)
