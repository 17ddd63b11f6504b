"""Files already parsed are not parsed again while nothing that matters changed."""

import pytest

from pgkura.migrations import sql_text
from pgkura.migrations.files import MigrationProblems, discover


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("PGKURA_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def no_parser(monkeypatch):
    """Fail any parse: what runs after this came from the cache."""

    def refuse(_sql):
        raise AssertionError("parsed again")

    def install():
        monkeypatch.setattr(sql_text, "split_statements", refuse)

    return install


def statements(found):
    return [[(s.text, s.offset) for s in m.up.statements] for m in found]


def test_a_second_run_takes_the_statements_from_the_cache(write_migration, no_parser):
    write_migration("001_a.sql", "-- one\nCREATE TABLE a (id int);\nSELECT $$;$$;\n")
    write_migration("002_b.sql", "-- only a comment\n")
    first = discover(write_migration.directory)
    no_parser()
    again = discover(write_migration.directory)
    assert statements(again) == statements(first)
    assert statements(first)[0] == [("CREATE TABLE a (id int)", 7), ("SELECT $$;$$", 32)]


def test_an_edited_file_is_parsed_again(write_migration, no_parser):
    write_migration("001_a.sql", "SELECT 1;")
    discover(write_migration.directory)
    write_migration("001_a.sql", "SELECT 2;")
    no_parser()
    with pytest.raises(AssertionError, match="parsed again"):
        discover(write_migration.directory)


def test_a_file_with_a_problem_is_checked_every_time(write_migration):
    write_migration("001_a.sql", "VACUUM;")
    for _ in range(2):
        with pytest.raises(MigrationProblems, match="VACUUM cannot run inside"):
            discover(write_migration.directory)


def test_a_damaged_or_unwritable_cache_only_costs_time(
    write_migration, cache, monkeypatch, tmp_path
):
    write_migration("001_a.sql", "SELECT 1;")
    discover(write_migration.directory)
    for path in (cache / "parsed").iterdir():
        path.write_text("{not json")
    assert len(discover(write_migration.directory)) == 1
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("PGKURA_CACHE_DIR", str(blocked))  # a file: no directory can be made
    assert len(discover(write_migration.directory)) == 1
