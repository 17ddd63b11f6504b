"""db.import-sqlite on a real server: a SQLite database with every type and awkward value the
import claims to handle, the keys, indexes and sequences after it, lossy columns reported by
table and column, existing tables refused, and a failure half-way leaving the target as it was."""

from __future__ import annotations

import io
import itertools
import sqlite3
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgkura.config import load_settings
from pgkura.progress import Reporter
from pgkura.sqlite_import import SqliteImportError, import_sqlite
from pgkura.throwaway import bin_dir
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


def test_the_import_check_notices_a_difference(pg_server, database, tmp_path, monkeypatch):
    """The verification is real: a value changed on its way in makes the import fail."""
    from pgkura import sqlite_import

    path = make_sqlite(tmp_path / "app.db")
    target = load_settings(tmp_path, {"DATABASE_URL": pg_server.url(database)}).target
    original = sqlite_import._rows

    def tampered(source, table):
        for i, row in enumerate(original(source, table)):
            if table.name == "posts" and i == 0:
                row[3] = "changed"
            yield row

    calls = {"n": 0}

    def once_tampered(source, table):  # the COPY gets the tampered rows, the check the true ones
        calls["n"] += 1
        return tampered(source, table) if calls["n"] <= 3 else original(source, table)

    monkeypatch.setattr(sqlite_import, "_rows", once_tampered)
    with pytest.raises(
        SqliteImportError, match="posts: 3 rows read back, 3 in SQLite; checksums differ"
    ):
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
    assert lines[0].startswith("import: 1 rows of 9 rows, 11%, ")
    assert lines[0].endswith(", Order Items")  # the table being copied
    assert lines[-2].startswith("import: 9 rows of 9 rows, 99%, ")  # done only once committed
    assert lines[-1].startswith("import: 9 rows in ")
