"""Schema snapshots and drift on a real PostgreSQL 18."""

from __future__ import annotations

import dataclasses
import shutil

import psycopg
import pytest

from pgkura.clusters.throwaway import bin_dir
from pgkura.config.settings import load_settings
from pgkura.engines.pg_tools import direct
from pgkura.errors import MigrationError
from pgkura.migrations.check import check_migrations
from pgkura.migrations.runner import Migrator
from pgkura.migrations.schema_build import drift
from pgkura.migrations.schema_snapshot import run_sql_file
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "vector_only"
QUIET = lambda _msg: None  # noqa: E731


@pytest.fixture
def schema_dir(tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "schema")
    return tmp_path / "schema"


def fixture_settings(tmp_path, schema_dir, **env):
    base = load_settings(tmp_path, {"PGKURA_PG_BIN": str(bin_dir()), **env})
    return dataclasses.replace(
        base, migrations_dir=schema_dir / "migrations", init_sql=schema_dir / "init.sql"
    )


def test_two_fresh_builds_give_identical_files(tmp_path, schema_dir):
    settings = fixture_settings(tmp_path, schema_dir)
    first = check_migrations(settings, QUIET)
    second = check_migrations(settings, QUIET)
    assert first == second
    assert first == (FIXTURES / "schema.sql").read_text()  # the committed one is current
    assert "\\restrict pgkura" in first
    assert "Dumped from database version" not in first


def test_a_migration_without_its_schema_change_is_caught(tmp_path, schema_dir):
    (schema_dir / "migrations" / "004_add_notes_color.sql").write_text(
        "ALTER TABLE notes ADD COLUMN IF NOT EXISTS color text;\n"
    )
    with pytest.raises(MigrationError) as err:
        check_migrations(fixture_settings(tmp_path, schema_dir), QUIET)
    assert "differs from what init.sql + the migrations build" in str(err.value)
    assert "+    color text" in str(err.value)


def test_a_missing_snapshot_names_the_commands(tmp_path, schema_dir):
    (schema_dir / "schema.sql").unlink()
    with pytest.raises(MigrationError, match=r"invoke db\.dump-schema"):
        check_migrations(fixture_settings(tmp_path, schema_dir), QUIET)


@pytest.fixture
def live(pg_server, database, tmp_path, schema_dir):
    """A database built from the fixtures, and settings whose schema.sql describes it."""
    settings = fixture_settings(tmp_path, schema_dir, DATABASE_URL=pg_server.url(database))
    run_sql_file(direct(bin_dir() / "psql", settings.target, "psql"), settings.init_sql)
    Migrator(settings).migrate()
    return settings


def test_untouched_database_has_no_drift(live):
    assert drift(live, QUIET).clean


@pytest.mark.parametrize(
    ("change", "kind", "key"),
    [
        ("ALTER TABLE notes ADD COLUMN hand_added text", "changed", "TABLE public.notes"),
        (
            "CREATE INDEX notes_content_idx ON notes (content)",
            "added",
            "INDEX public.notes_content_idx",
        ),
        (
            "ALTER TABLE notes DROP CONSTRAINT notes_pkey",
            "removed",
            "CONSTRAINT public.notes notes_pkey",
        ),
    ],
)
def test_hand_applied_changes_are_reported(live, pg_server, database, change, kind, key):
    with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
        conn.execute(change)
    found = drift(live, QUIET)
    assert not found.clean
    listed = {"added": found.added, "removed": found.removed, "changed": list(found.changed)}
    assert listed[kind] == [key]
    others = [k for k in listed if k != kind]
    assert all(listed[k] == [] for k in others)
