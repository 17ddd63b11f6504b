"""`nox -s migrations`: the fresh-build check, on the fixtures and on a broken down file."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from pgkura.config.settings import load_settings
from pgkura.errors import MigrationError
from pgkura.migrations.check import check_migrations
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "vector_only"


def fixture_settings(tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "schema")
    base = load_settings(tmp_path, {})
    return dataclasses.replace(
        base,
        migrations_dir=tmp_path / "schema" / "migrations",
        init_sql=tmp_path / "schema" / "init.sql",
    )


def test_fixtures_pass_with_a_round_trip(tmp_path):
    log: list[str] = []
    check_migrations(fixture_settings(tmp_path), log.append)
    assert "applied 3 migration(s)" in log
    assert "rollback round trip of 1 migration(s): schema restored exactly" in log


def test_a_down_file_that_does_not_undo_is_caught(tmp_path):
    settings = fixture_settings(tmp_path)
    down = settings.migrations_dir / "003_add_notes_pinned.down.sql"
    down.write_text("ALTER TABLE notes DROP COLUMN pinned;\nALTER TABLE notes ADD COLUMN x int;\n")
    with pytest.raises(MigrationError, match=r"(?s)after rolling back.*\+\s+x integer"):
        check_migrations(settings, lambda _: None)


def test_a_failing_init_file_is_reported(tmp_path):
    settings = fixture_settings(tmp_path)
    settings.init_sql.write_text("CREATE EXTENSION no_such_extension;\n")
    with pytest.raises(MigrationError, match="no_such_extension"):
        check_migrations(settings, lambda _: None)


def test_a_single_reversible_migration_round_trips(tmp_path):
    """Rolling back everything leaves pgkura's (empty) version table: not a difference."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "001_a.sql").write_text("CREATE TABLE a (id int);")
    (tmp_path / "m" / "001_a.down.sql").write_text("DROP TABLE a;")
    (tmp_path / "init.sql").write_text("SELECT 1;")
    settings = dataclasses.replace(
        load_settings(tmp_path, {}), migrations_dir=tmp_path / "m", init_sql=tmp_path / "init.sql"
    )
    log: list[str] = []
    check_migrations(settings, log.append, write_schema=True)
    assert "rollback round trip of 1 migration(s): schema restored exactly" in log
