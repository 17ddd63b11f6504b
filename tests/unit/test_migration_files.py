import pytest

from pgkura.errors import MigrationError
from pgkura.migration_files import checksum, discover


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
        ({"001-a.sql": "SELECT 1;"}, "does not match NNN_snake_case_name.sql"),
        ({"001_CamelCase.sql": "SELECT 1;"}, "does not match"),
        ({"abc.sql": "SELECT 1;"}, "does not match"),
        ({"002_b.down.sql": "SELECT 1;"}, "down file without its up file"),
        ({"001_a.sql": "SELECT 1;", "001_b.down.sql": "SELECT 1;"}, "must share a name"),
        ({"001_a.sql": "  \n-- only a comment\n/* and another */\n"}, "the file is empty"),
        ({"001_a.sql": ""}, "the file is empty"),
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


def test_backslashes_inside_strings_are_not_meta_commands(write_migration):
    write_migration("001_a.sql", "SELECT E'\\\\n', $$ \\c $$;\n-- \\i in a comment\n")
    assert len(discover(write_migration.directory)) == 1


def test_transaction_control_is_refused_unless_the_file_opts_out(write_migration):
    write_migration("001_a.sql", "SELECT 1;\nBEGIN;\nSELECT 2;\nCOMMIT;\n")
    with pytest.raises(MigrationError, match=r"001_a.sql:2: 'BEGIN;'"):
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
