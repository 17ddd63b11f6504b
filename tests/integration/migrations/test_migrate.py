"""The migration engine against a real PostgreSQL 18."""

from __future__ import annotations

import dataclasses
import io
import threading

import psycopg
import pytest

from pgkura.errors import LockTimeoutError, MigrationError
from pgkura.migrations.files import read_sql_file
from pgkura.migrations.lock import lock_key
from pgkura.migrations.runner import Migrator
from pgkura.migrations.sql_errors import describe
from pgkura.progress import Reporter

from ..conftest import tables


def test_apply_all_then_rerun_is_a_no_op(settings, write_migration, db):
    write_migration("001_users.sql", "CREATE TABLE users (id bigint PRIMARY KEY, name text);")
    write_migration("002_posts.sql", "CREATE TABLE posts (id bigint PRIMARY KEY);\n"
                    "INSERT INTO users VALUES (1, 'a%b');")  # fmt: skip
    steps = Migrator(settings).migrate()
    assert [s.migration.version for s in steps] == [1, 2]
    assert {"users", "posts", "schema_migrations"} <= tables(db)
    rows = db.execute(
        "SELECT version, name, length(checksum), applied_by, how FROM schema_migrations"
    ).fetchall()
    assert rows == [
        (1, "users", 64, "postgres", "applied"),
        (2, "posts", 64, "postgres", "applied"),
    ]
    assert Migrator(settings).migrate() == []
    assert db.execute("SELECT name FROM users").fetchall() == [("a%b",)]


def test_migrate_to_stops_there(settings, write_migration, db):
    for n in (1, 2, 3):
        write_migration(f"00{n}_t{n}.sql", f"CREATE TABLE t{n} (id int);")
    assert [s.migration.version for s in Migrator(settings).migrate(to=2)] == [1, 2]
    assert "t3" not in tables(db)


def test_dry_run_applies_nothing_and_creates_no_table(settings, write_migration, db):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    steps = Migrator(settings).migrate(dry_run=True)
    assert [s.migration.version for s in steps] == [1]
    assert tables(db) == set()


def test_dry_run_refuses_a_file_the_grammar_rejects(settings, write_migration, db):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    write_migration("002_b.sql", "CREATE TABLE b (id int,);")
    with pytest.raises(MigrationError, match=r"002_b\.sql:1:24: syntax error"):
        Migrator(settings).migrate(dry_run=True)
    assert tables(db) == set()


def test_failing_file_leaves_no_row_and_no_partial_change(settings, write_migration, db):
    write_migration("001_ok.sql", "CREATE TABLE ok (id int);")
    write_migration(
        "002_bad.sql",
        "CREATE TABLE half (id int);\nINSERT INTO half VALUES (1);\n"
        "-- 日本語のコメント\nSELECT * FROM   no_such_table;\n",
    )
    with pytest.raises(MigrationError) as err:
        Migrator(settings).migrate()
    message = str(err.value)
    assert "002_bad.sql:4:17: ERROR 42P01" in message
    assert 'relation "no_such_table" does not exist' in message
    assert "    SELECT * FROM   no_such_table;\n                    ^" in message
    assert "nothing from 002_bad.sql was applied" in message
    assert "half" not in tables(db)
    assert db.execute("SELECT version FROM schema_migrations").fetchall() == [(1,)]


def test_error_detail_and_hint_are_shown(settings, write_migration):
    write_migration(
        "001_a.sql",
        "CREATE TABLE a (id int PRIMARY KEY);\nINSERT INTO a VALUES (1), (1);\n",
    )
    with pytest.raises(MigrationError, match=r"(?s)ERROR 23505.*DETAIL: Key \(id\)=\(1\)"):
        Migrator(settings).migrate()


def test_no_transaction_file_builds_indexes_concurrently(settings, write_migration, db):
    write_migration("001_docs.sql", "CREATE TABLE docs (id int, body text);")
    write_migration(
        "002_index.sql",
        "-- pgkura:no-transaction\n"
        "CREATE INDEX CONCURRENTLY docs_body ON docs (body);\n"
        "DO $$ BEGIN RAISE NOTICE 'a; b'; END $$;\n"
        "CREATE INDEX CONCURRENTLY docs_id ON docs (id);\n",
    )
    Migrator(settings).migrate()
    indexes = {r[0] for r in db.execute("SELECT indexname FROM pg_indexes WHERE tablename='docs'")}
    assert indexes == {"docs_body", "docs_id"}


def test_no_transaction_failure_reports_what_was_committed(settings, write_migration, db):
    write_migration("001_t.sql", "CREATE TABLE t (k int);\nINSERT INTO t VALUES (1), (1);")
    write_migration(
        "002_idx.sql",
        "-- pgkura:no-transaction\n"
        "CREATE INDEX CONCURRENTLY t_plain ON t (k);\n"
        "CREATE UNIQUE INDEX CONCURRENTLY t_unique ON t (k);\n",
    )
    with pytest.raises(MigrationError) as err:
        Migrator(settings).migrate()
    message = str(err.value)
    assert "002_idx.sql:3" in message
    assert "1 statement(s) before this one were committed" in message
    assert "Invalid index(es) left behind by a failed concurrent build: t_unique" in message
    assert db.execute("SELECT max(version) FROM schema_migrations").fetchone() == (1,)


def test_two_runners_at_once_apply_each_file_once(settings, write_migration, db):
    write_migration("001_log.sql", "CREATE TABLE log (n int);")
    write_migration("002_slow.sql", "SELECT pg_sleep(0.5);\nINSERT INTO log VALUES (2);")
    write_migration("003_more.sql", "INSERT INTO log VALUES (3);")
    start = threading.Barrier(2)
    results: list[object] = []

    def run() -> None:
        start.wait()
        try:
            results.append(len(Migrator(settings).migrate()))
        except Exception as exc:  # collected and asserted below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 3]  # type: ignore[type-var]
    assert db.execute("SELECT n FROM log ORDER BY n").fetchall() == [(2,), (3,)]


def test_runner_lock_timeout_says_who_holds_it(settings, write_migration, pg_server, database):
    from pgkura.migrations.lock import lock_key

    write_migration("001_a.sql", "SELECT 1;")
    with psycopg.connect(pg_server.url(database), application_name="other-deploy") as other:
        other.execute("SELECT pg_advisory_lock(%s)", (lock_key("public.schema_migrations"),))
        quick = dataclasses.replace(settings, runner_lock_wait_ms=300)
        with pytest.raises(LockTimeoutError, match=r"pid \d+ \(other-deploy"):
            Migrator(quick).migrate()


def test_lock_timeout_stops_a_migration_queued_behind_traffic(settings, write_migration, db):
    write_migration("001_t.sql", "CREATE TABLE busy (id int);")
    Migrator(settings).migrate()
    write_migration("002_alter.sql", "ALTER TABLE busy ADD COLUMN note text;")
    fast = dataclasses.replace(settings, lock_timeout_ms=200)
    with db.transaction():
        db.execute("LOCK TABLE busy IN ACCESS SHARE MODE")
        with pytest.raises(MigrationError, match=r"(?s)ERROR 55P03.*lock_timeout \(200ms\)"):
            Migrator(fast).migrate()
    cols = db.execute("SELECT column_name FROM information_schema.columns WHERE table_name='busy'")
    assert cols.fetchall() == [("id",)]


def test_a_file_waiting_for_a_lock_says_how_long_it_has_run(settings, write_migration, db):
    """Waiting up to PGKURA_LOCK_TIMEOUT behind the application's lock is not silence."""
    write_migration("001_t.sql", "CREATE TABLE busy (id int);")
    Migrator(settings).migrate()
    write_migration("002_alter.sql", "ALTER TABLE busy ADD COLUMN note text;")
    shown = io.StringIO()
    reporter = Reporter(shown, settle=0, every=0, heartbeat=0.05)  # plain lines, as in a log
    waiting = dataclasses.replace(settings, lock_timeout_ms=600)
    with db.transaction():
        db.execute("LOCK TABLE busy IN ACCESS SHARE MODE")
        with pytest.raises(MigrationError, match="55P03"):
            Migrator(waiting, reporter=reporter).migrate()
    assert "applying 002_alter.sql: " in shown.getvalue()


def test_statement_timeout_is_explained(settings, write_migration):
    write_migration("001_slow.sql", "SELECT pg_sleep(2);")
    fast = dataclasses.replace(settings, statement_timeout_ms=100)
    with pytest.raises(MigrationError, match=r"(?s)57014.*statement_timeout \(100ms\)"):
        Migrator(fast).migrate()


def test_edited_file_is_refused_and_repair_accepts_it(settings, write_migration, db):
    path = write_migration("001_a.sql", "CREATE TABLE a (id int);")
    Migrator(settings).migrate()
    path.write_text("CREATE TABLE a (id bigint);")
    write_migration("002_b.sql", "CREATE TABLE b (id int);")
    with pytest.raises(MigrationError, match=r"001_a\.sql changed after it was applied"):
        Migrator(settings).migrate()
    assert "b" not in tables(db)
    repaired = Migrator(settings).repair()
    assert [m.version for m, _ in repaired] == [1]
    assert db.execute("SELECT how FROM schema_migrations").fetchone() == ("repaired",)
    Migrator(settings).migrate()
    assert "b" in tables(db)


def test_missing_file_is_refused_unless_allowed(settings, write_migration, db):
    path = write_migration("001_a.sql", "CREATE TABLE a (id int);")
    Migrator(settings).migrate()
    path.unlink()
    write_migration("002_b.sql", "CREATE TABLE b (id int);")
    with pytest.raises(MigrationError, match=r"version 1 \(a\) is recorded as applied"):
        Migrator(settings).migrate()
    Migrator(settings).migrate(allow_missing=True)
    assert "b" in tables(db)


def test_out_of_order_file_is_refused_unless_allowed(settings, write_migration, db):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    write_migration("003_c.sql", "CREATE TABLE c (id int);")
    Migrator(settings).migrate()
    write_migration("002_b.sql", "CREATE TABLE b (id int);")
    with pytest.raises(MigrationError, match=r"002_b\.sql is pending but numbered below"):
        Migrator(settings).migrate()
    assert [s.migration.version for s in Migrator(settings).migrate(allow_out_of_order=True)] == [2]


def test_japanese_and_crlf_copies_keep_their_checksum(settings, write_migration, db):
    text = (
        "-- 文書テーブル\nCREATE TABLE 文書 (本文 text NOT NULL);\n"
        "INSERT INTO 文書 VALUES ('全文検索のテスト');\n"
    )
    write_migration("001_bunsho.sql", text)
    Migrator(settings).migrate()
    write_migration("001_bunsho.sql", text, newline="\r\n", bom=True)
    assert [e.state for e in Migrator(settings).plan().entries()] == ["applied"]
    assert db.execute("SELECT 本文 FROM 文書").fetchone() == ("全文検索のテスト",)


def test_rollback_runs_down_files_newest_first(settings, write_migration, db):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    write_migration("001_a.down.sql", "DROP TABLE a;")
    write_migration("002_b.sql", "CREATE TABLE b (id int);")
    write_migration("002_b.down.sql", "DROP TABLE b;")
    write_migration("003_c.sql", "CREATE TABLE c (id int);")
    write_migration("003_c.down.sql", "DROP TABLE c;")
    Migrator(settings).migrate()
    assert [s.migration.version for s in Migrator(settings).rollback()] == [3]
    assert [s.migration.version for s in Migrator(settings).rollback(to=0)] == [2, 1]
    assert tables(db) == {"schema_migrations"}
    assert db.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)


def test_rollback_without_down_file_changes_nothing(settings, write_migration, db):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    write_migration("002_b.sql", "CREATE TABLE b (id int);")
    write_migration("002_b.down.sql", "DROP TABLE b;")
    Migrator(settings).migrate()
    with pytest.raises(MigrationError, match="001_a: it has no down file"):
        Migrator(settings).rollback(steps=2)
    assert {"a", "b"} <= tables(db)


def test_failing_down_file_keeps_the_version_row(settings, write_migration, db):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    write_migration("001_a.down.sql", "DROP TABLE a;\nDROP TABLE not_there;")
    Migrator(settings).migrate()
    with pytest.raises(MigrationError, match=r"001_a\.down\.sql:2: ERROR 42P01"):
        Migrator(settings).rollback()
    assert "a" in tables(db)
    assert db.execute("SELECT version FROM schema_migrations").fetchall() == [(1,)]


def test_baseline_records_without_running(settings, write_migration, db):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    write_migration("002_b.sql", "CREATE TABLE b (id int);")
    write_migration("003_c.sql", "CREATE TABLE c (id int);")
    db.execute("CREATE TABLE a (id int); CREATE TABLE b (id int);")  # an existing database
    assert [m.version for m in Migrator(settings).baseline(2)] == [1, 2]
    assert [s.migration.version for s in Migrator(settings).migrate()] == [3]
    states = [e.state for e in Migrator(settings).plan().entries()]
    assert states == ["baseline", "baseline", "applied"]
    with pytest.raises(MigrationError, match="no migration file has that number"):
        Migrator(settings).baseline(9)


def test_hostile_identifiers_are_quoted(pg_server, tmp_path, write_migration):
    from ..conftest import admin

    name = 'we"ird db; DROP DATABASE postgres; --'
    with admin(pg_server) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    try:
        write_migration("001_a.sql", "CREATE TABLE a (id int);")
        from pgkura.config.settings import load_settings

        settings = load_settings(
            tmp_path,
            {
                "DATABASE_URL": pg_server.url(name),
                "PGKURA_MIGRATIONS_DIR": "migrations",
                "PGKURA_MIGRATIONS_SCHEMA": 'odd "schema"',
                "PGKURA_MIGRATIONS_TABLE": "my migrations'; --",
            },
        )
        Migrator(settings).migrate()
        with psycopg.connect(pg_server.url(name)) as conn:
            got = conn.execute('SELECT version FROM "odd ""schema"""."my migrations\'; --"')
            assert got.fetchall() == [(1,)]
        assert [e.state for e in Migrator(settings).plan().entries()] == ["applied"]
    finally:
        with admin(pg_server) as conn:
            conn.execute(
                psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(name)
                )
            )
        with admin(pg_server) as conn:
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname='postgres'").fetchone()


def test_rollback_refuses_when_the_versions_changed_since_confirmation(
    settings, write_migration, db
):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    write_migration("001_a.down.sql", "DROP TABLE a;")
    write_migration("002_b.sql", "CREATE TABLE b (id int);")
    write_migration("002_b.down.sql", "DROP TABLE b;")
    Migrator(settings).migrate(to=1)
    confirmed = [s.migration.version for s in Migrator(settings).rollback(dry_run=True)]
    Migrator(settings).migrate()  # someone else applies 002 meanwhile
    with pytest.raises(MigrationError, match="changed since you confirmed"):
        Migrator(settings).rollback(expect=confirmed)
    assert {"a", "b"} <= tables(db)


def test_nothing_to_do_needs_no_lock_and_no_table(
    settings, write_migration, db, pg_server, database
):
    """A run with nothing pending reads the rows and stops: it neither waits for another
    runner's lock nor creates anything."""
    assert Migrator(settings).migrate() == []  # no files at all
    assert "schema_migrations" not in tables(db)
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    Migrator(settings).migrate()
    holder = psycopg.connect(pg_server.url(database), autocommit=True)
    with holder:
        key = lock_key(str(Migrator(settings).table))
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        slow = dataclasses.replace(settings, runner_lock_wait_ms=60_000)
        assert Migrator(slow).migrate() == []  # at once, though the lock is held


def test_a_transaction_block_error_at_run_time_names_the_directive(db, tmp_path):
    """What the parser cannot see (here: bypassing discovery) still gets the remedy."""
    path = tmp_path / "001_a.sql"
    path.write_text("VACUUM;")
    file = read_sql_file(path, [])
    assert file is not None
    with pytest.raises(psycopg.Error) as err, db.transaction():
        db.execute("VACUUM")
    report = describe(err.value, file)
    assert "ERROR 25001" in report
    assert "Put '-- pgkura:no-transaction' on the file's first line" in report
