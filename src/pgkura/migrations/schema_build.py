"""Schema snapshots and drift against the real server (the container, or DATABASE_URL)."""

from __future__ import annotations

from collections.abc import Callable

from pgkura.config.settings import Settings
from pgkura.engines.pg_tools import choose
from pgkura.engines.readiness import ready
from pgkura.errors import PgkuraError
from pgkura.migrations.check import build
from pgkura.migrations.schema_snapshot import Drift, compare, dump_schema
from pgkura.migrations.workspaces import scratch

Log = Callable[[str], None]


def build_snapshot(settings: Settings, log: Log, *, warn: Log | None = None) -> str:
    """init.sql + every migration in a scratch database on the target server, dumped by the
    server's own pg_dump, then dropped. `log` hears each step; `warn` (default `log`) the
    warnings, for a caller that shows no steps."""
    with scratch(settings, log, warn=warn) as ws:
        return build(settings, ws, log)


def drift(settings: Settings, log: Log) -> Drift:
    """The live target database against the committed schema snapshot."""
    if not settings.schema_file.is_file():
        raise PgkuraError(
            f"{settings.schema_file} does not exist; create it with `invoke db.dump-schema`"
        )
    server = ready(settings)
    pg_dump = choose(settings, "pg_dump", server, warn=log)
    return compare(settings.schema_file.read_text(), dump_schema(pg_dump))
