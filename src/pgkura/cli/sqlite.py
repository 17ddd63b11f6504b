"""The task that imports a SQLite database, and its report (text or `--json`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from invoke.context import Context
from invoke.exceptions import Exit

from pgkura.cli.output import Output
from pgkura.cli.wiring import progress, say, task

if TYPE_CHECKING:
    from pgkura.config.settings import Settings
    from pgkura.sqlite.importer import Imported, Preview
    from pgkura.sqlite.schema import Column, Table


@task(
    name="import-sqlite",
    help={
        "file": "the SQLite database file",
        "schema": "import into this schema (created if missing; default public)",
        "dry-run": "print the types chosen, what is lossy, and the DDL; change nothing",
        "json": "print the report as JSON (for machines)",
    },
    positional=["file"],
)
def import_sqlite(
    c: Context,
    settings: Settings,
    file: str,
    schema: str = "public",
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """import: move a SQLite database in, verified

    Move a SQLite database's tables and data in, in one verified transaction.

    Examples:
      invoke db.import-sqlite app.sqlite3 --dry-run
      invoke db.import-sqlite app.sqlite3 --schema legacy
      invoke db.import-sqlite app.sqlite3 --dry-run --json
    """
    from pgkura import validation as v
    from pgkura.sqlite.importer import dry_run as preview
    from pgkura.sqlite.importer import import_sqlite as run_import
    from pgkura.sqlite.schema import NotSqlite

    path = v.FILE_PATH.check(file, name="FILE", where="the command line")
    name = v.SCHEMA.check(schema, name="--schema", where="the command line")
    out = Output.to()
    try:
        if dry_run:
            planned = preview(path, name)
            if json:
                out.json(import_json(planned, settings.target.redacted()))
            else:
                print("\n".join(preview_lines(planned)))
            return
        done = run_import(path, settings.target, schema=name, progress=progress(),
                          log=say)  # fmt: skip
    except NotSqlite as exc:
        raise Exit(f"error: {exc}", code=1) from None
    if json:
        out.json(import_json(done, settings.target.redacted()))
        return
    for note in done.notes:
        print(f"note: {note}")
    print(f"imported {len(done.tables)} tables, {done.rows} rows into {done.schema} of "
          f"{settings.target.dbname} in {done.seconds:.1f} s; every table read back and "
          "compared with SQLite (row counts and checksums)")  # fmt: skip


def column_line(c: Column) -> str:
    return f"{c.name} {c.declared or '(no type)'} → {c.pg_type}" + (
        " identity" if c.identity else ""
    )


def preview_lines(planned: Preview) -> list[str]:
    """The dry run for a person: each table's types, the DDL, the notes."""
    out = [f"{t.name} ({t.rows} rows): " + "; ".join(column_line(c) for c in t.columns)
           for t in planned.tables]  # fmt: skip
    out += ["-- the DDL (data is loaded after the tables; -- tried: kept only if PostgreSQL "
            "accepts it):"]  # fmt: skip
    out += [("-- tried: " if s.carries else "") + s.statement.as_string(None) + ";"
            for s in planned.steps]  # fmt: skip
    out += [f"note: {n}" for n in planned.notes]
    return [*out, "dry run: nothing was changed"]


def import_json(report: Imported | Preview, target: str) -> dict[str, Any]:
    """One shape for the dry run and the import: `ddl` only in a dry run, `seconds` and
    `verified` only after a committed import."""
    from pgkura.sqlite.importer import Preview

    ddl = seconds = None
    if isinstance(report, Preview):
        ddl = [{"statement": s.statement.as_string(None), "tried": bool(s.carries)}
               for s in report.steps]  # fmt: skip
    else:
        seconds = round(report.seconds, 3)
    return {
        "dry_run": ddl is not None,
        "target": target,
        "schema": report.schema,
        "tables": [_table_json(t) for t in report.tables],
        "rows": sum(t.rows for t in report.tables),
        "notes": report.notes,
        "ddl": ddl,
        "seconds": seconds,
        "verified": ddl is None,
    }


def _table_json(t: Table) -> dict[str, Any]:
    columns = [{"name": c.name, "declared": c.declared, "type": c.pg_type, "identity": c.identity}
               for c in t.columns]  # fmt: skip
    return {"name": t.name, "rows": t.rows, "columns": columns}
