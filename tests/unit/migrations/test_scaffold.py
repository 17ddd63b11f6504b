import unicodedata

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


@pytest.mark.parametrize(
    ("description", "name"),
    [
        ("add タグ table", "add_タグ_table"),
        ("日本語", "日本語"),
        ("café table", "café_table"),
        ("ユーザー表を追加", "ユーザー表を追加"),
        ("\uff21\uff24\uff24\u3000タグ", "add_タグ"),  # full-width ADD,
    ],
)
def test_letters_of_any_script_are_kept(tmp_path, description, name):
    assert slug(description) == name
    (path,) = new_migration(tmp_path, description)
    assert path.name == f"001_{name}.sql"
    assert description.strip() in path.read_text(encoding="utf-8")


@given(st.text(min_size=1, max_size=20))
def test_no_letter_is_ever_dropped(description):
    """Every letter and digit typed is in the file name, in order; or there is none to use."""
    typed = unicodedata.normalize("NFKC", description).lower()
    if not any(ch.isalnum() for ch in typed):
        with pytest.raises(MigrationError, match="no usable file name"):
            slug(description)
        return
    name = slug(description)
    assert "".join(ch for ch in typed if ch.isalnum()) == name.replace("_", "")
