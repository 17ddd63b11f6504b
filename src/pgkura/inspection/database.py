"""`db.inspect`: is the database healthy, and what is it doing? Read-only catalog and statistics
queries (the ones Supabase's `inspect db` and pg-extras run, and more), each section with the
findings that need attention and what to do about them.

Thresholds (documented in the README, tested here):
  connections        warn at 80 % of max_connections
  long queries       active for more than 5 minutes; idle in transaction for more than 1 minute
  blocked sessions   any
  cache hit ratio    warn below 99 % (tables or indexes), once there were 10,000 reads
  rollbacks          warn above 5 % of transactions; deadlocks: any
  checkpoints        warn when more were requested than timed (max_wal_size too small)
  dead rows          warn above 20 % of a table with more than 10,000 rows (autovacuum behind)
  unused indexes     no scan since the statistics were reset, not unique, larger than 1 MiB
  duplicate indexes  same table, columns, operator classes, expressions and predicate
  sequences          warn above 75 % of their maximum
  wraparound         warn when a database's oldest unfrozen transaction is 1,000 million old
On a managed server some views show other users' rows only with pg_read_all_stats (or
pg_monitor): a section says so when it could see only its own role's sessions.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from pgkura.connect.connection import connect
from pgkura.dsn import Target
from pgkura.replication.state import findings, replicas
from pgkura.units import size as human

ROWS = 10


@dataclass
class Section:
    title: str
    headers: list[str]
    rows: list[list[Any]]
    note: str = ""


@dataclass(frozen=True)
class Attention:
    level: str  # warn | fail
    what: str
    remedy: str


@dataclass
class Report:
    sections: list[Section] = field(default_factory=list)
    attention: list[Attention] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report for `--json`: each section's rows by column, and the notes saying why a
        section is empty or how to read it."""
        return {
            "facts": self.facts,
            "attention": [a.__dict__ for a in self.attention],
            "sections": {
                s.title: [dict(zip(s.headers, r, strict=True)) for r in s.rows]
                for s in self.sections
            },
            "notes": {s.title: s.note for s in self.sections if s.note},
        }


def _all(conn: psycopg.Connection[Any], query: str) -> list[list[Any]]:
    """Rows of a query without parameters (so `%` in LIKE patterns and format() is literal)."""
    return [list(r) for r in conn.execute(query.replace("LIMIT %s", f"LIMIT {ROWS}")).fetchall()]


def _one(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query).fetchone()
    return row[0] if row else None


def inspect(
    target: Target,
    *,
    container: str | None = None,
    snapshots: Path | None = None,
    record: bool = False,
) -> Report:
    """Every section on `target`; `container`: also the engine's CPU/memory/I/O figures;
    `snapshots`: sizes recorded over time (and `record` adds one now)."""
    report = Report()
    with connect(target, purpose="inspect") as conn:
        # never wait behind the locks it is there to report (sizes take a light lock)
        conn.execute("SET lock_timeout = '1s'")
        conn.execute("SET statement_timeout = '60s'")
        sections = (_connections, _statements, _pressure, _space, _indexes, _maintenance,
                    _replication)  # fmt: skip
        for section in sections:
            _guarded(section, conn, report)
        if snapshots is not None:
            _guarded(lambda c, r: _growth(c, r, snapshots, record), conn, report)
    if container:
        _engine(container, report)
    return report


def _guarded(
    section: Callable[[psycopg.Connection[Any], Report], None],
    conn: psycopg.Connection[Any],
    report: Report,
) -> None:
    """A section that meets a held lock or runs too long says so; the others still run."""
    try:
        section(conn, report)
    except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
        note = f"not measured: {str(exc).strip()} (a lock held elsewhere; see blocked queries)"
        report.sections.append(Section(_name(section), [], [], note))
    except psycopg.errors.InsufficientPrivilege as exc:
        first = str(exc).strip().splitlines()[0]
        note = f"not measured: {first} (grant pg_monitor to this role to see it)"
        report.sections.append(Section(_name(section), [], [], note))


def _name(section: Callable[..., None]) -> str:
    return getattr(section, "__name__", "section").strip("_<>")


def _replication(conn: psycopg.Connection[Any], report: Report) -> None:
    """A standby says so; a primary lists its physical slots, the standby streaming through
    each, how far behind it replays and the WAL each slot keeps."""
    in_recovery = bool(_one(conn, "SELECT pg_is_in_recovery()"))
    report.facts["in_recovery"] = in_recovery
    found = replicas(conn)
    headers = ["slot", "streaming", "state", "lag_bytes", "lag_seconds", "retained_bytes"]
    rows = [[r.slot, r.streaming, r.state, r.lag_bytes, r.lag_seconds, r.retained_bytes]
            for r in found]  # fmt: skip
    note = "this server is a standby (read-only, in recovery)" if in_recovery else ""
    report.sections.append(Section("replication", headers, rows, note))
    for level, detail in findings(found, None):
        if level != "ok":
            what, _, remedy = detail.partition(" → ")
            report.attention.append(Attention(level, what, remedy))


def _connections(conn: psycopg.Connection[Any], report: Report) -> None:
    limit = int(_one(conn, "SHOW max_connections"))
    states = _all(
        conn,
        "SELECT coalesce(state, 'background'), coalesce(nullif(application_name, ''), "
        "'-'), count(*) FROM pg_stat_activity GROUP BY 1, 2 ORDER BY 3 DESC",
    )
    client = sum(r[2] for r in states if r[0] != "background")
    report.facts.update(connections=client, max_connections=limit)
    report.sections.append(
        Section(
            "connections",
            ["state", "application", "count"],
            states,
            f"{client} client connections of max_connections {limit}",
        )
    )
    if client >= limit * 0.8:
        report.attention.append(
            Attention(
                "warn",
                f"{client} of {limit} connections in use",
                "use a connection pool (PgBouncer), or raise "
                "max_connections with care (each costs memory)",
            )
        )
    visible = _one(conn, "SELECT pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER')")
    long = _all(
        conn,
        """
        SELECT pid, usename, state, date_trunc('second', now() - coalesce(xact_start, query_start)),
               left(regexp_replace(query, '\\s+', ' ', 'g'), 80)
          FROM pg_stat_activity
         WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'
           AND ((state = 'active' AND now() - query_start > interval '5 minutes')
             OR (state LIKE 'idle in transaction%' AND now() - state_change > interval '1 minute'))
         ORDER BY 4 DESC LIMIT %s""",
    )
    note = (
        ""
        if visible
        else (
            "only this role's sessions are visible: grant pg_read_all_stats "
            "(or pg_monitor) to see all"
        )
    )
    report.sections.append(
        Section("long-running sessions", ["pid", "user", "state", "for", "query"], long, note)
    )
    for pid, _user, state, age, _query in long:
        remedy = (
            (
                "end the transaction in the application (or pg_terminate_backend(pid)); set "
                "idle_in_transaction_session_timeout"
            )
            if "idle" in state
            else ("look at its plan (EXPLAIN); pg_cancel_backend(pid) stops it")
        )
        report.attention.append(Attention("warn", f"pid {pid} {state} for {age}", remedy))
    blocked = _all(
        conn,
        """
        SELECT w.pid, left(regexp_replace(w.query, '\\s+', ' ', 'g'), 60), b.pid,
               left(regexp_replace(b.query, '\\s+', ' ', 'g'), 60),
               date_trunc('second', now() - w.query_start),
               (SELECT string_agg(DISTINCT l.mode, ', ') FROM pg_locks l
                 WHERE l.pid = w.pid AND NOT l.granted)
          FROM pg_stat_activity w
          JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid) ON true
          JOIN pg_stat_activity b ON b.pid = blocker.pid
         ORDER BY 5 DESC LIMIT %s""",
    )
    report.sections.append(
        Section(
            "blocked queries",
            ["pid", "waiting query", "blocked by", "blocking query", "waiting for", "lock"],
            blocked,
        )
    )
    for row in blocked:
        report.attention.append(
            Attention(
                "warn",
                f"pid {row[0]} waits for pid {row[2]} ({row[5]})",
                "find why the blocker holds its lock (often a "
                "transaction left open); pg_terminate_backend(blocker) "
                "as a last resort",
            )
        )


def _statements_missing(conn: psycopg.Connection[Any]) -> str:
    """What to do to get statement statistics ("" when they are there). Asked of the view
    itself: SHOW shared_preload_libraries needs pg_read_all_settings, which a managed
    server's application role usually lacks."""
    preload = ("the server must preload it: pgkura's image does; on a managed server, enable it "
               "in the provider's parameter settings")  # fmt: skip
    if not _one(conn, "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'"):
        return f"CREATE EXTENSION pg_stat_statements; in this database ({preload})"
    try:
        conn.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
    except psycopg.errors.ObjectNotInPrerequisiteState:
        return f"add pg_stat_statements to shared_preload_libraries and restart ({preload})"
    return ""


def _statements(conn: psycopg.Connection[Any], report: Report) -> None:
    how = _statements_missing(conn)
    if how:
        report.sections.append(
            Section("statements", [], [], f"pg_stat_statements is not available here → {how}")
        )
        report.attention.append(Attention("warn", "no statement statistics", how))
        return
    columns = (
        "calls, round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 2), "
        "rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 90)"
    )
    headers = ["calls", "total ms", "mean ms", "rows", "statement (normalised)"]
    for title, order in (
        ("slowest statements (total time)", "total_exec_time"),
        ("most frequent statements", "calls"),
    ):
        rows = _all(
            conn,
            f"SELECT {columns} FROM pg_stat_statements "  # noqa: S608 - constants
            f"WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            f"ORDER BY {order} DESC LIMIT %s",
        )
        report.sections.append(Section(title, headers, rows))


def _pressure(conn: psycopg.Connection[Any], report: Report) -> None:
    db = _all(
        conn,
        """
        SELECT xact_commit, xact_rollback, deadlocks, conflicts, temp_files, temp_bytes,
               blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()""",
    )[0]
    commits, rollbacks, deadlocks, conflicts, temp_files, temp_bytes, _hit, _read = db
    tables = _all(
        conn,
        "SELECT coalesce(sum(heap_blks_hit), 0), coalesce(sum(heap_blks_read), 0) "
        "FROM pg_statio_user_tables",
    )[0]
    indexes = _all(
        conn,
        "SELECT coalesce(sum(idx_blks_hit), 0), coalesce(sum(idx_blks_read), 0) "
        "FROM pg_statio_user_indexes",
    )[0]
    try:
        checkpoints = _all(conn, "SELECT num_timed, num_requested FROM pg_stat_checkpointer")[0]
    except psycopg.errors.UndefinedTable:  # before PostgreSQL 17 (a managed server, say)
        checkpoints = _all(conn, "SELECT checkpoints_timed, checkpoints_req FROM pg_stat_bgwriter")[
            0
        ]
    rows = [
        ["rollbacks", f"{rollbacks} of {commits + rollbacks} transactions"],
        ["deadlocks", deadlocks],
        ["recovery conflicts", conflicts],
        ["temporary files", f"{temp_files} ({human(temp_bytes)})"],
        ["table cache hit ratio", _ratio(*tables)],
        ["index cache hit ratio", _ratio(*indexes)],
        ["checkpoints timed / requested", f"{checkpoints[0]} / {checkpoints[1]}"],
    ]
    report.sections.append(Section("errors and pressure", ["measure", "value"], rows))
    if commits + rollbacks and rollbacks / (commits + rollbacks) > 0.05:
        report.attention.append(
            Attention(
                "warn",
                f"{rollbacks} rollbacks ({rollbacks * 100 // (commits + rollbacks)} %)",
                "look for failing statements in the server log",
            )
        )
    if deadlocks:
        report.attention.append(
            Attention(
                "warn",
                f"{deadlocks} deadlocks",
                "take locks in the same order everywhere; the log names the statements",
            )
        )
    for name, (hit, read) in (("table", tables), ("index", indexes)):
        if hit + read >= 10_000 and hit / (hit + read) < 0.99:
            report.attention.append(
                Attention(
                    "warn",
                    f"{name} cache hit ratio {_ratio(hit, read)}",
                    "raise shared_buffers (or the container's memory), "
                    "or find the statements that read the most",
                )
            )
    if checkpoints[1] > checkpoints[0]:
        report.attention.append(
            Attention("warn", "more checkpoints requested than timed", "raise max_wal_size")
        )
    if temp_files and temp_bytes > 1 << 30:
        report.attention.append(
            Attention(
                "warn",
                f"{human(temp_bytes)} written to temporary files",
                "raise work_mem for the statements that sort or hash",
            )
        )


def _ratio(hit: int, read: int) -> str:
    return f"{hit * 100 / (hit + read):.2f} %" if hit + read else "no reads yet"


def _space(conn: psycopg.Connection[Any], report: Report) -> None:
    size = _one(conn, "SELECT pg_database_size(current_database())")
    report.facts["database_bytes"] = size
    largest = _all(
        conn,
        """
        SELECT format('%I.%I', n.nspname, c.relname), pg_table_size(c.oid),
               pg_indexes_size(c.oid), pg_total_relation_size(c.oid), c.reltuples::bigint
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'm', 'p')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
         ORDER BY pg_total_relation_size(c.oid) DESC LIMIT %s""",
    )
    report.sections.append(
        Section(
            "largest tables",
            ["table", "data", "indexes", "total", "rows (estimate)"],
            [
                [name, human(data), human(idx), human(total), n]
                for name, data, idx, total, n in largest
            ],
            f"database size {human(size)}",
        )
    )


def _indexes(conn: psycopg.Connection[Any], report: Report) -> None:
    """Unused and duplicate indexes; sizes from the catalog's page counts (estimates that take
    no lock, so a table locked by another session does not stop this section)."""
    unused = _all(
        conn,
        """
        SELECT format('%I.%I', s.schemaname, s.indexrelname), s.relname,
               c.relpages::bigint * current_setting('block_size')::int, s.idx_scan
          FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
          JOIN pg_class c ON c.oid = s.indexrelid
         WHERE s.idx_scan = 0 AND NOT i.indisunique
           AND c.relpages::bigint * current_setting('block_size')::int > 1048576
         ORDER BY c.relpages DESC LIMIT %s""",
    )
    unused = [[index, table, human(bytes_), scans] for index, table, bytes_, scans in unused]
    report.sections.append(
        Section(
            "unused indexes",
            ["index", "table", "size", "scans"],
            unused,
            "since the statistics were last reset",
        )
    )
    for row in unused:
        report.attention.append(
            Attention(
                "warn",
                f"index {row[0]} ({row[2]}) is never used",
                "drop it in a migration (DROP INDEX CONCURRENTLY) if no rare job needs it",
            )
        )
    duplicates = _all(
        conn,
        """
        SELECT string_agg(format('%I.%I', n.nspname, c.relname), ' = ' ORDER BY c.relname),
               sum(c.relpages::bigint * current_setting('block_size')::int)
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
         GROUP BY i.indrelid, i.indkey::text, i.indclass::text, coalesce(i.indexprs::text, ''),
                  coalesce(i.indpred::text, '')
        HAVING count(*) > 1""",
    )
    duplicates = [[names, human(bytes_)] for names, bytes_ in duplicates]
    report.sections.append(Section("duplicate indexes", ["indexes", "size"], duplicates))
    for row in duplicates:
        report.attention.append(
            Attention(
                "warn",
                f"duplicate indexes {row[0]}",
                "keep one (the unique or constraint one) and drop the others in a migration",
            )
        )


def _maintenance(conn: psycopg.Connection[Any], report: Report) -> None:
    dead = _all(
        conn,
        """
        SELECT format('%I.%I', schemaname, relname), n_live_tup, n_dead_tup,
               round(100.0 * n_dead_tup / nullif(n_live_tup + n_dead_tup, 0), 1),
               greatest(last_autovacuum, last_vacuum)
          FROM pg_stat_user_tables WHERE n_dead_tup > 0
         ORDER BY n_dead_tup DESC LIMIT %s""",
    )
    report.sections.append(
        Section(
            "dead rows (bloat estimate)", ["table", "live", "dead", "dead %", "last vacuum"], dead
        )
    )
    for name, live, dead_rows, percent, _last in dead:
        if live + dead_rows > 10_000 and percent and percent > 20:
            report.attention.append(
                Attention(
                    "warn",
                    f"{name} is {percent} % dead rows",
                    "autovacuum is behind: check for long "
                    "transactions, then VACUUM (ANALYZE) it; tune "
                    "autovacuum_vacuum_scale_factor for the table",
                )
            )
    sequences = _all(
        conn,
        """
        SELECT format('%I.%I', schemaname, sequencename), last_value, max_value,
               round(100.0 * last_value / max_value, 2)
          FROM pg_sequences WHERE last_value IS NOT NULL AND increment_by > 0
         ORDER BY last_value::numeric / max_value DESC LIMIT %s""",
    )
    report.sections.append(
        Section(
            "sequences nearest their limit",
            ["sequence", "last value", "maximum", "used %"],
            sequences,
        )
    )
    for name, _last, _max, used in sequences:
        if used > 75:
            report.attention.append(
                Attention(
                    "warn",
                    f"sequence {name} is {used} % used",
                    "ALTER SEQUENCE … AS bigint (and the column to bigint) before it runs out",
                )
            )
    ages = _all(conn, "SELECT datname, age(datfrozenxid) FROM pg_database ORDER BY 2 DESC")
    report.sections.append(
        Section(
            "transaction ID age",
            ["database", "age"],
            ages,
            "wraparound stops writes at about 2,100 million",
        )
    )
    for name, age in ages:
        if age > 1_000_000_000:
            report.attention.append(
                Attention(
                    "fail",
                    f"{name}: transaction ID age {age:,}",
                    "VACUUM (FREEZE) the oldest tables now; find what blocks autovacuum",
                )
            )


def _growth(conn: psycopg.Connection[Any], report: Report, path: Path, record: bool) -> None:
    """Size over time, from the snapshots recorded in `path` (one JSON object per line)."""
    now = datetime.now(UTC)
    size = report.facts["database_bytes"]
    db = _one(conn, "SELECT current_database()")
    if record:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(
                json.dumps(
                    {
                        "at": now.isoformat(timespec="seconds"),
                        "database": db,
                        "bytes": size,
                    }
                )
                + "\n"
            )
    try:
        points = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        points = []
    mine = [p for p in points if p.get("database") == db]
    rows = [[p["at"], human(p["bytes"])] for p in mine[-ROWS:]]
    note = "no snapshots yet: `invoke db.inspect --snapshot` records one (the scheduler can)"
    if mine:
        first = mine[0]
        days = (now - datetime.fromisoformat(first["at"])).total_seconds() / 86400
        if days >= 1 / 24:
            per_day = (size - first["bytes"]) / days
            report.facts["growth_bytes_per_day"] = round(per_day)
            note = f"growth {per_day / 2**20:+.1f} MiB per day over {days:.1f} days"
        else:
            note = "snapshots span less than an hour: no growth rate yet"
    report.sections.append(Section("size over time", ["at", "size"], rows, note))


def _engine(container: str, report: Report) -> None:
    """CPU, memory and I/O of the container, as the engine reports them."""
    result = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{json .}}", container],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        report.sections.append(
            Section("container", [], [], f"docker stats failed: {result.stderr.strip()}")
        )
        return
    stats = json.loads(result.stdout)
    rows = [
        [k, stats.get(k, "?")]
        for k in ("CPUPerc", "MemUsage", "MemPerc", "BlockIO", "NetIO", "PIDs")
    ]
    report.sections.append(Section("container", ["measure", "value"], rows))
    memory = str(stats.get("MemPerc", "0")).rstrip("%")
    if memory.replace(".", "", 1).isdigit() and float(memory) > 90:
        report.attention.append(
            Attention(
                "warn",
                f"the container uses {memory} % of its memory limit",
                "raise the limit or lower shared_buffers/work_mem",
            )
        )
