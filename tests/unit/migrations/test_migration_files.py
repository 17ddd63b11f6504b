import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgkura.errors import MigrationError
from pgkura.migrations.files import FILE_PATTERN, MigrationProblems, checksum, discover
from pgkura.migrations.sql_rules import no_transaction_reason
from pgkura.migrations.version_table import VersionTableName


def test_sorted_numerically_with_any_width(write_migration):
    write_migration("10_ten.sql", "SELECT 10;")
    write_migration("2_two.sql", "SELECT 2;")
    write_migration("0003_three.sql", "SELECT 3;")
    write_migration("20240101120000_stamp.sql", "SELECT 4;")
    found = discover(write_migration.directory)
    assert [m.version for m in found] == [2, 3, 10, 20240101120000]
    assert [m.label for m in found] == ["2_two", "0003_three", "10_ten", "20240101120000_stamp"]


def test_down_files_pair_with_their_up_file(write_migration):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    write_migration("001_a.down.sql", "DROP TABLE a;")
    (m,) = discover(write_migration.directory)
    assert m.down is not None
    assert m.down.path.name == "001_a.down.sql"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"001_a.sql": "SELECT 1;", "1_b.sql": "SELECT 2;"}, "duplicate migration number 1"),
        ({"001-a.sql": "SELECT 1;"}, "does not match N_name.sql"),
        ({"abc.sql": "SELECT 1;"}, "does not match"),
        ({"001_tab\there.sql": "SELECT 1;"}, "does not match"),
        ({"001_a.up.sql": "SELECT 1;", "001_a.sql": "SELECT 2;"}, "duplicate migration number 1"),
        ({"002_b.down.sql": "SELECT 1;"}, "down file without its up file"),
        ({"001_a.sql": "SELECT 1;", "001_b.down.sql": "SELECT 1;"}, "must share a name"),
        ({"0_zero.sql": "SELECT 1;"}, "version must be between"),
    ],
)
def test_irregular_directories_are_refused(write_migration, files, message):
    for name, text in files.items():
        write_migration(name, text)
    with pytest.raises(MigrationError, match=message):
        discover(write_migration.directory)


def test_meta_commands_are_refused_with_file_and_line(write_migration):
    write_migration("001_a.sql", "SELECT 1;\n\n\\c other_db\nSELECT 2;\n")
    with pytest.raises(MigrationError) as err:
        discover(write_migration.directory)
    assert "001_a.sql:3" in str(err.value)
    assert "\\c other_db" in str(err.value)


def test_a_syntax_error_is_found_before_anything_runs_with_a_caret(write_migration):
    """PostgreSQL 18's own grammar (pglast 8): file:line:col, the line, a caret under the
    token it rejects, wide characters counted as two columns."""
    write_migration("001_a.sql", "-- 日本語\nCREATE TABLE ユーザー (id int,);\n")
    with pytest.raises(MigrationError) as err:
        discover(write_migration.directory)
    message = str(err.value)
    assert '001_a.sql:2:27: syntax error at or near ")"' in message
    assert "    CREATE TABLE ユーザー (id int,);\n" + " " * 4 + " " * 30 + "^" in message


def test_postgresql_18_syntax_is_not_a_syntax_error(write_migration):
    write_migration(
        "001_a.sql", "CREATE TABLE t (a int, b int GENERATED ALWAYS AS (a * 2) VIRTUAL);"
    )
    assert discover(write_migration.directory)


def test_backslashes_inside_strings_are_not_meta_commands(write_migration):
    write_migration("001_a.sql", "SELECT E'\\\\n', $$ \\c $$;\n-- \\i in a comment\n")
    assert len(discover(write_migration.directory)) == 1


def test_transaction_control_is_refused_unless_the_file_opts_out(write_migration):
    write_migration("001_a.sql", "SELECT 1;\nBEGIN;\nSELECT 2;\nCOMMIT;\n")
    with pytest.raises(MigrationError, match=r"2 problems(.|\n)*001_a.sql:2: 'BEGIN;'"):
        discover(write_migration.directory)
    write_migration("001_a.sql", "-- pgkura:no-transaction\nBEGIN;\nSELECT 2;\nCOMMIT;\n")
    (m,) = discover(write_migration.directory)
    assert m.up.no_transaction


def test_directive_must_be_in_the_leading_comments(write_migration):
    write_migration("001_a.sql", "SELECT 1;\n-- pgkura:no-transaction\n")
    (m,) = discover(write_migration.directory)
    assert not m.up.no_transaction


def test_checksum_ignores_line_endings_and_bom():
    text = "-- 日本語のコメント\nCREATE TABLE t (body text DEFAULT '検索');\n"
    assert checksum(text) == checksum(text.replace("\n", "\r\n")) == checksum("\ufeff" + text)
    assert checksum(text) != checksum(text.replace("検索", "検策"))


def test_non_utf8_file_is_refused(write_migration):
    path = write_migration("001_a.sql", "")
    path.write_bytes("SELECT '日本';".encode("shift_jis"))
    with pytest.raises(MigrationError, match="not UTF-8"):
        discover(write_migration.directory)


def test_missing_directory_says_which_setting(tmp_path):
    with pytest.raises(MigrationError, match="PGKURA_MIGRATIONS_DIR"):
        discover(tmp_path / "nope")


def test_uppercase_extension_is_refused_not_ignored(write_migration):
    write_migration("001_a.sql", "SELECT 1;")
    write_migration("002_b.SQL", "SELECT 2;")
    with pytest.raises(MigrationError, match=r"002_b\.SQL: name does not match .* 002_b\.sql"):
        discover(write_migration.directory)


def test_the_suggested_name_never_reuses_a_number(write_migration):
    write_migration("001_a.sql", "SELECT 1;")
    write_migration("004_b.sql", "SELECT 1;")
    write_migration("004-Add Users.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match=r"e\.g\. 005_add_users\.sql"):
        discover(write_migration.directory)


def test_names_users_already_have(write_migration):
    """golang-migrate pairs, dots and dashes after N_, any script: taken as they are."""
    write_migration("000001_create-teams.up.sql", "CREATE TABLE teams (id int);")
    write_migration("000001_create-teams.down.sql", "DROP TABLE teams;")
    write_migration("0002_1.7.0_schema.up.sql", "SELECT 2;")
    write_migration("3_AddUsers.sql", "SELECT 3;")
    write_migration("4_日本語の名前.sql", "SELECT 4;")
    found = discover(write_migration.directory)
    assert [(m.version, m.name) for m in found] == [
        (1, "create-teams"),
        (2, "1.7.0_schema"),
        (3, "AddUsers"),
        (4, "日本語の名前"),
    ]
    assert found[0].label == "000001_create-teams"
    assert found[0].down is not None
    assert found[0].down.path.name == "000001_create-teams.down.sql"


@given(
    st.integers(1, 2**63 - 1),
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
        min_size=1,
        max_size=40,
    ).filter(lambda n: not n.startswith(".") and n.strip() == n and n not in (".", "..")),
)
def test_any_name_after_the_number_is_accepted(version, name):
    match = FILE_PATTERN.match(f"{version:04d}_{name}.sql")
    assert match is not None
    assert int(match["version"]) == version
    assert f"{match['name']}{'.' + match['kind'] if match['kind'] else ''}" == name


def test_comment_only_files_are_valid_no_ops(write_migration):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    write_migration("001_a.down.sql", "-- irreversible: the data is gone\n/* nothing to undo */\n")
    write_migration("002_empty.sql", "")
    first, second = discover(write_migration.directory)
    assert first.down is not None
    assert first.down.statements == ()
    assert second.up.statements == ()


def test_every_problem_is_reported_in_one_run(write_migration):
    write_migration("001_a.sql", "SELECT 1;\n\\c other\n")
    write_migration("002_b.sql", "CREATE INDEX CONCURRENTLY i ON t (a);\n")
    write_migration("003_c.sql", "VACUUM t;\nANALYZE t;\n")
    write_migration("004-bad name.sql", "SELECT 1;")
    write_migration("005_e.sql", "SELECT 1;\nCOMMIT;\n")
    write_migration("006_f.down.sql", "SELECT 1;")
    with pytest.raises(MigrationProblems) as err:
        discover(write_migration.directory)
    message = str(err.value)
    assert message.startswith("6 problems in ")
    assert "nothing was run" in message
    for expected in [
        "001_a.sql:2: psql meta-command '\\c other'",
        "002_b.sql:1: CREATE INDEX CONCURRENTLY cannot run inside a transaction block",
        "003_c.sql:1: VACUUM cannot run inside a transaction block",
        "004-bad name.sql: name does not match",
        "005_e.sql:2: 'COMMIT;'",
        "006_f.down.sql: down file without its up file",
    ]:
        assert expected in message
    assert "ANALYZE" not in message  # allowed in a transaction
    assert message.count("-- pgkura:no-transaction") >= 2  # the remedy, each time


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)", "CREATE INDEX CONCURRENTLY"),
        ("create unique index concurrently i on t (a)", "CREATE INDEX CONCURRENTLY"),
        ("DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY"),
        ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
        ("VACUUM (ANALYZE) t", "VACUUM"),
        ("CREATE DATABASE other", "CREATE DATABASE"),
        ("DROP DATABASE other", "DROP DATABASE"),
        ("ALTER SYSTEM SET work_mem = '64MB'", "ALTER SYSTEM"),
        ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", "DETACH PARTITION CONCURRENTLY"),
        ("CLUSTER", "CLUSTER without a table"),
        ("CREATE TABLESPACE ts LOCATION '/x'", "CREATE TABLESPACE"),
        ("REINDEX DATABASE app", "REINDEX DATABASE"),
        ("REINDEX SYSTEM app", "REINDEX SYSTEM"),
        ("ALTER DATABASE app SET TABLESPACE fast", "ALTER DATABASE ... SET TABLESPACE"),
    ],
)
def test_statements_that_need_the_directive_are_found_by_the_parser(sql, reason):
    assert no_transaction_reason(sql) == reason


@pytest.mark.parametrize(
    "sql",
    [
        "ANALYZE t",
        "CREATE INDEX i ON t (a)",
        "CLUSTER t USING i",
        "SELECT 'VACUUM CONCURRENTLY DATABASE'",
        "COMMENT ON TABLE t IS 'run VACUUM later'",
        "ALTER TABLE t DETACH PARTITION c",
        "REFRESH MATERIALIZED VIEW CONCURRENTLY v",
        "ALTER DATABASE app SET work_mem = '64MB'",
        "CREATE INDEX CONCURRENTLY broken (",  # not SQL: the server reports it when it runs
    ],
)
def test_statements_that_run_in_a_transaction_pass(sql):
    assert no_transaction_reason(sql) is None


def test_the_directive_allows_them(write_migration):
    write_migration("001_a.sql", "-- pgkura:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);")
    (m,) = discover(write_migration.directory)
    assert m.up.no_transaction


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE schema_migrations ADD COLUMN note text",
        "alter table public.schema_migrations rename to old_versions",
        "DROP TABLE IF EXISTS users, schema_migrations",
        "TRUNCATE schema_migrations",
        "INSERT INTO schema_migrations (version) VALUES ('20240101')",
        "UPDATE public.schema_migrations SET name = 'x'",
        "DELETE FROM schema_migrations",
    ],
)
def test_writes_to_the_version_table_are_refused(write_migration, sql):
    write_migration("001_a.sql", f"CREATE TABLE t (id int);\n{sql};\n")
    table = VersionTableName("public", "schema_migrations")
    with pytest.raises(MigrationProblems, match=r"001_a.sql:2: .* pgkura's own version table"):
        discover(write_migration.directory, table)
    elsewhere = VersionTableName("pgkura", "schema_migrations")  # PGKURA_MIGRATIONS_SCHEMA
    assert discover(write_migration.directory, elsewhere)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM schema_migrations",
        "ALTER TABLE other.schema_migrations ADD COLUMN x int",
        "CREATE TABLE schema_migrations_archive (id int)",
        "DROP VIEW schema_migrations_view",
    ],
)
def test_reading_or_other_tables_of_similar_names_pass(write_migration, sql):
    write_migration("001_a.sql", f"{sql};\n")
    assert discover(write_migration.directory, VersionTableName("public", "schema_migrations"))
