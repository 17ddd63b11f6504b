"""`db.new`: the next numbered migration file, named from a description; `db.example`: the
example schema's migrations, numbered on after the project's own."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from pgkura.errors import MigrationError
from pgkura.migrations.files import FILE_PATTERN, NO_TRANSACTION

_DEFAULT_WIDTH = 3
EXAMPLES = Path("examples") / "documents" / "migrations"  # below the project root


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
    last, width = _last_and_width(directory)
    stem = f"{last + 1:0{width}d}_{name}"
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


def add_examples(source: Path, directory: Path) -> list[Path]:
    """Copy the example migrations in `source` into `directory`, in their order, numbered on
    after the last migration there (a project's own history stays first)."""
    examples = [(p, FILE_PATTERN.match(p.name)) for p in sorted(source.glob("*.sql"))]
    versions = sorted({int(m["version"]) for _, m in examples if m})
    present = {m["name"] for m in map(FILE_PATTERN.match, _names(directory)) if m}
    again = sorted({m["name"] for _, m in examples if m and m["name"] in present})
    if again:
        raise MigrationError(
            f"the example migrations are already in {directory} ({', '.join(again)}), so "
            "nothing was copied.\n→ `invoke db.migrate` applies them if it has not yet"
        )
    last, width = _last_and_width(directory)
    directory.mkdir(parents=True, exist_ok=True)
    copied = []
    for path, match in examples:
        if match is None:
            continue
        number = last + 1 + versions.index(int(match["version"]))
        down = ".down" if match["kind"] == "down" else ""
        target = directory / f"{number:0{width}d}_{match['name']}{down}.sql"
        with target.open("xb") as fh:  # never overwrite
            fh.write(path.read_bytes())
        copied.append(target)
    return copied


def _last_and_width(directory: Path) -> tuple[int, int]:
    """The highest version in `directory` (0 for none) and the digits its names use; from the
    names alone, so a scaffolded file still being written is no obstacle."""
    numbers = [m["version"] for m in map(FILE_PATTERN.match, _names(directory)) if m]
    last = max((int(n) for n in numbers), default=0)
    return last, max((len(n) for n in numbers), default=_DEFAULT_WIDTH)


def _names(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir()] if directory.is_dir() else []
