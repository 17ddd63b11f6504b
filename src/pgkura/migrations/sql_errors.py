"""Server errors mapped back onto the migration file: file:line:col, the line, and a caret."""

from __future__ import annotations

import psycopg

from pgkura.durations import render_ms
from pgkura.migrations.files import SqlFile
from pgkura.migrations.sql_text import caret, line_at, line_col

_HELP = {
    "25001": (
        "this statement cannot run inside a transaction block, and pgkura runs the file in "
        "one. Put '-- pgkura:no-transaction' on the file's first line (its statements then "
        "commit one by one; keep such a file to this statement and make it idempotent)."
    ),
    "55P03": (
        "lock_timeout ({lock}) expired: the statement waited for a lock that another "
        "transaction holds. Nothing was applied, and the table's traffic was blocked only that "
        "long. Retry when the other transaction is done (see pg_stat_activity), or raise "
        "PGKURA_LOCK_TIMEOUT."
    ),
    "57014": (
        "statement_timeout ({statement}) cancelled the statement. Nothing was applied. Run it "
        "off-peak, split the work (e.g. a no-transaction file with CREATE INDEX CONCURRENTLY), "
        "or raise PGKURA_STATEMENT_TIMEOUT."
    ),
}


def describe(
    exc: psycopg.Error,
    file: SqlFile,
    *,
    base_offset: int = 0,
    lock_timeout_ms: int = 0,
    statement_timeout_ms: int = 0,
) -> str:
    """A multi-line report of a failed statement in `file` (statement sent at `base_offset`)."""
    diag = exc.diag
    message = diag.message_primary or str(exc).strip() or type(exc).__name__
    sqlstate = diag.sqlstate or "?????"
    where = str(file.path)
    out: list[str] = []
    if diag.statement_position:
        offset = base_offset + int(diag.statement_position) - 1
        line, col = line_col(file.sql, offset)
        where = f"{file.path}:{line}:{col}"
        out = [f"{where}: ERROR {sqlstate}: {message}"]
        text = line_at(file.sql, line)
        out += [f"    {text}", "    " + caret(text, col)]
    else:
        line, _ = line_col(file.sql, base_offset)
        where = f"{file.path}:{line}"
        out = [f"{where}: ERROR {sqlstate}: {message} (in the statement starting on line {line})"]
    for label, value in (("DETAIL", diag.message_detail), ("HINT", diag.message_hint)):
        if value:
            out.append(f"{label}: {value}")
    if diag.context:
        out.append(f"CONTEXT: {diag.context.strip()}")
    if sqlstate in _HELP and (sqlstate != "25001" or "transaction block" in message):
        out.append(
            "→ "
            + _HELP[sqlstate].format(
                lock=render_ms(lock_timeout_ms), statement=render_ms(statement_timeout_ms)
            )
        )
    return "\n".join(out)
