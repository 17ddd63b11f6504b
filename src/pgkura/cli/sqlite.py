"""The task that imports a SQLite database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.exceptions import Exit

from pgkura.cli.wiring import progress, say, task

if TYPE_CHECKING:
    from pgkura.config.settings import Settings


@task(
    name="import-sqlite",
    help={
        "file": "the SQLite database file",
        "schema": "import into this schema (created if missing; default public)",
        "dry-run": "print the types chosen, what is lossy, and the DDL; change nothing",
    },
    positional=["file"],
)
def import_sqlite(
    c: Context, settings: Settings, file: str, schema: str = "public", dry_run: bool = False
) -> None:
    """import: move a SQLite database in, verified

    Move a SQLite database's tables and data in, in one verified transaction.

    Examples:
      invoke db.import-sqlite app.sqlite3 --dry-run
      invoke db.import-sqlite app.sqlite3 --schema legacy
    """
    from pgkura import validation as v
    from pgkura.sqlite.importer import dry_run as plan_lines
    from pgkura.sqlite.importer import import_sqlite as run_import
    from pgkura.sqlite.schema import NotSqlite

    path = v.FILE_PATH.check(file, name="FILE", where="the command line")
    name = v.SCHEMA.check(schema, name="--schema", where="the command line")
    try:
        if dry_run:
            print("\n".join(plan_lines(path, name)))
            return
        done = run_import(path, settings.target, schema=name, progress=progress(),
                          log=say)  # fmt: skip
    except NotSqlite as exc:
        raise Exit(f"error: {exc}", code=1) from None
    for note in done.notes:
        print(f"note: {note}")
    print(f"imported {len(done.tables)} tables, {done.rows} rows into {done.schema} of "
          f"{settings.target.dbname} in {done.seconds:.1f} s; every table read back and "
          "compared with SQLite (row counts and checksums)")  # fmt: skip
