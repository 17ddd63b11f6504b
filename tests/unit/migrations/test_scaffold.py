import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgkura.errors import MigrationError
from pgkura.migrations.scaffold import new_migration, slug


def test_first_migration_gets_three_digits(tmp_path):
    (path,) = new_migration(tmp_path / "m", "Add users table")
    assert path.name == "001_add_users_table.sql"
    assert "Add users table" in path.read_text()


def test_next_number_keeps_the_existing_width(write_migration):
    write_migration("0007_x.sql", "SELECT 1;")
    up, down = new_migration(write_migration.directory, "add-index", down=True)
    assert (up.name, down.name) == ("0008_add_index.sql", "0008_add_index.down.sql")


def test_unfinished_scaffold_does_not_block_the_next(tmp_path):
    new_migration(tmp_path, "first")
    (second,) = new_migration(tmp_path, "second", no_transaction=True)
    assert second.name == "002_second.sql"
    assert second.read_text().startswith("-- pgkura:no-transaction\n")


def test_unusable_names_are_refused():
    assert slug("  Add  users!! ") == "add_users"
    with pytest.raises(MigrationError, match="no usable file name"):
        slug("!!")


@pytest.mark.parametrize("description", ["add タグ table", "日本語", "café table"])
def test_letters_a_file_name_cannot_hold_are_refused_not_dropped(description):
    with pytest.raises(MigrationError, match="would be lost"):
        slug(description)


def test_the_refusal_is_one_line_naming_the_words_as_typed():
    with pytest.raises(MigrationError) as err:
        slug("タグを追加")
    message = str(err.value)
    assert "タグを追加 would be lost" in message
    assert "\n" not in message
    with pytest.raises(MigrationError, match="so タグ 追加 would be lost"):
        slug("add タグ and 追加 column")


@given(st.text(min_size=1, max_size=20))
def test_no_letter_is_ever_dropped_silently(description):
    """Either every letter a user typed is in the file name, or the refusal names it."""
    try:
        name = slug(description)
    except MigrationError as exc:
        message = str(exc)
        assert "would be lost" in message or "no usable file name" in message
        return
    letters = [ch for ch in description.lower() if ch.isalnum()]
    assert "".join(letters) == name.replace("_", "")
