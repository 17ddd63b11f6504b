"""`db.new`: the next numbered migration file, named from a description."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from pgkura.errors import MigrationError
from pgkura.migrations.files import FILE_PATTERN, NO_TRANSACTION

_DEFAULT_WIDTH = 3


def slug(description: str) -> str:
    """`Add users table` → `add_users_table`, `タグ表を追加` → `タグ表を追加`: the letters and
    digits of any script, as typed (NFKC: full-width ASCII becomes ASCII; ASCII in lower case),
    joined by `_` where anything else stood. Discovery accepts such names, so db.new makes them."""
    text = unicodedata.normalize("NFKC", description).lower()
    name = "_".join("".join(ch if ch.isalnum() else " " for ch in text).split())
    if not name:
        raise MigrationError(
            f"{description!r} gives no usable file name; use letters, digits and underscores"
        )
    return name


def new_migration(
    directory: Path, description: str, *, down: bool = False, no_transaction: bool = False
) -> list[Path]:
    """Create `NNN_name.sql` (and `NNN_name.down.sql`) with the next free number."""
    name = slug(description)
    # numbers come from the names alone: a scaffolded file still being written is no obstacle
    numbers = [
        match["version"]
        for match in map(FILE_PATTERN.match, _names(directory))
        if match is not None
    ]
    version = max((int(n) for n in numbers), default=0) + 1
    width = max((len(n) for n in numbers), default=_DEFAULT_WIDTH)
    stem = f"{version:0{width}d}_{name}"
    if not FILE_PATTERN.match(f"{stem}.sql"):
        raise MigrationError(f"{stem}.sql is not a valid migration file name")
    directory.mkdir(parents=True, exist_ok=True)
    header = f"-- {NO_TRANSACTION}\n" if no_transaction else ""
    files = {
        directory / f"{stem}.sql": f"{header}-- {description.strip()}\n\n",
    }
    if down:
        files[directory / f"{stem}.down.sql"] = f"{header}-- undo {stem}.sql\n\n"
    for path, text in files.items():
        with path.open("x", encoding="utf-8") as fh:  # never overwrite
            fh.write(text)
    return list(files)


def _names(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir()] if directory.is_dir() else []
