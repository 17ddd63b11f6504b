"""`db.doctor`: every check in one place, each with what to do when it fails."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from pgkura.backups.safety_copies import copies
from pgkura.backups.store import BackupStore
from pgkura.config.settings import Settings
from pgkura.connect.connection import connect
from pgkura.dsn import Target
from pgkura.engines.chosen import engine_for
from pgkura.engines.docker import pgbackrest
from pgkura.engines.docker.compose import container_state, require_docker
from pgkura.engines.docker.ports import port_in_use
from pgkura.engines.readiness import crash_note, last_crash_restart
from pgkura.errors import PgkuraError
from pgkura.extensions.check import pgvector_warning, statuses, unavailable_message
from pgkura.migrations.files import project_migrations
from pgkura.migrations.plan import Plan
from pgkura.migrations.version_table import VersionTable
from pgkura.replication.state import project_findings
from pgkura.units import size

SERVER_MAJOR = 18


@dataclass(frozen=True)
class Finding:
    check: str
    level: str  # ok | warn | fail | skip
    detail: str


def diagnose(settings: Settings) -> list[Finding]:
    """Run every check; later checks are skipped when what they need is already broken."""
    return list(_checks(settings))


def _checks(settings: Settings) -> Iterator[Finding]:
    local = settings.target.is_container
    docker_ok = False
    for check, level, detail in engine_for(settings).describe():
        yield Finding(check, level, detail)
    if local:
        try:
            version = require_docker()
            docker_ok = True
            yield Finding("docker", "ok", f"engine {version}, Compose v2 present")
        except PgkuraError as exc:
            yield Finding("docker", "fail", str(exc))
    yield _env_file(settings)
    if local and docker_ok:
        yield from _container(settings)
    yield from _server(settings)


def _env_file(settings: Settings) -> Finding:
    path = settings.env_file
    if not path.is_file():
        level = "fail" if settings.is_production else "warn"
        return Finding(".env", level, f"{path} is missing → cp .env.example .env, then edit it")
    mode = stat.S_IMODE(path.stat().st_mode)
    if settings.is_production and mode & 0o077:
        return Finding(
            ".env",
            "fail",
            f"{path} is readable by others (mode {mode:o}) and holds the password "
            f"→ chmod 600 {path}",
        )
    return Finding(".env", "ok", f"{path} (mode {mode:o})")


def _container(settings: Settings) -> Iterator[Finding]:
    state = container_state(settings)
    running = state is not None and state.running
    if not settings.is_production:
        port = settings.postgres_port
        if running or not port_in_use(port):
            yield Finding("port", "ok", f"127.0.0.1:{port} is {'ours' if running else 'free'}")
        else:
            yield Finding(
                "port",
                "fail",
                f"127.0.0.1:{port} is taken by another process → stop it, or set POSTGRES_PORT "
                "in .env to a free port",
            )
    yield _volume(settings)
    if state is None:
        yield Finding(
            "container", "fail", f"{settings.container_name} does not exist → invoke db.up"
        )
    elif not running:
        yield Finding(
            "container", "fail", f"{settings.container_name} is {state.status} → invoke db.up"
        )
    elif state.health == "unhealthy":
        yield Finding(
            "container",
            "fail",
            f"{settings.container_name} is running but unhealthy → invoke db.logs --tail 50",
        )
    else:
        yield Finding(
            "container",
            "ok",
            f"{settings.container_name} running ({state.health or 'no healthcheck'})",
        )


def _volume(settings: Settings) -> Finding:
    """The data volume: mounted where PostgreSQL 18 keeps its data, holding nothing it cannot
    use (the checks `db.up` makes before starting)."""
    from pgkura.engines.docker.volume_check import describe, mount_problem, strangers, survey

    try:
        problem = mount_problem(settings)
        found = survey(settings, settings.volume)
    except PgkuraError as exc:  # e.g. Compose cannot render the file without a password
        return Finding("data volume", "fail", f"cannot look: {exc}")
    if problem:
        return Finding("data volume", "fail", problem)
    if found is None:
        return Finding(
            "data volume", "ok", f"{settings.volume} does not exist yet (db.up makes it)"
        )
    odd = strangers(found)
    if odd:
        return Finding("data volume", "fail", describe(settings.volume, odd))
    return Finding("data volume", "ok", f"{settings.volume}: PostgreSQL 18 cluster in 18/docker/"
                   if found.clusters else f"{settings.volume}: empty")  # fmt: skip


def _server(settings: Settings) -> Iterator[Finding]:
    target = settings.target
    try:
        conn = connect(target, purpose="doctor", connect_timeout=5)
    except PgkuraError as exc:
        yield Finding("server", "fail", str(exc))
        return
    with conn:
        major = conn.info.server_version // 10000
        level = "ok" if major == SERVER_MAJOR else "fail"
        detail = f"PostgreSQL {major}.{conn.info.server_version % 10000} at {target.redacted()}"
        if level == "fail":
            detail += f" → pgkura's image and dumps expect PostgreSQL {SERVER_MAJOR}"
        yield Finding("server", level, detail)
        yield _crash_restart(conn, target)
        yield from _extensions(settings, conn)
        yield _migrations(settings, conn)
        for level, detail in project_findings(settings, conn):
            yield Finding("replication", level, detail)
        pitr_on = settings.pitr.enabled and target.is_container
        if pitr_on:
            archiver = pgbackrest.archiver(conn)
            yield Finding("archiving", *pgbackrest.archiving_finding(archiver))
    yield _backups(settings)
    if pitr_on:
        yield from _base_backups(settings, archiver.segment_bytes)
    if settings.offsite is not None:
        yield _offsite(settings)
    yield from _schedule(settings)
    copies = _safety_copies(settings)
    if copies:
        yield copies


def _crash_restart(conn: psycopg.Connection, target: Target) -> Finding:
    """A crash restart drops every session and is over in seconds: the health check and the
    container's state do not show it afterwards, the server's processes do."""
    try:
        when = last_crash_restart(conn)
    except PgkuraError as exc:
        return Finding("restarts", "skip", str(exc))
    if when is not None:
        return Finding("restarts", "warn", crash_note(when, target))
    return Finding("restarts", "ok", "no crash restart since the server started")


def _extensions(settings: Settings, conn: psycopg.Connection) -> Iterator[Finding]:
    items = statuses(conn, settings.required_extensions)
    missing = [s.name for s in items if not s.available]
    if missing:
        yield Finding("extensions", "fail", unavailable_message(missing, settings.target.kind))
    absent = [s.name for s in items if s.available and not s.installed]
    if absent:
        yield Finding(
            "extensions",
            "fail",
            f"not enabled in {settings.target.dbname}: {', '.join(absent)} → "
            "invoke db.extensions --ensure",
        )
    if not missing and not absent:
        shown = ", ".join(f"{s.name} {s.installed}" for s in items)
        yield Finding("extensions", "ok", shown or "none required")
    warning = pgvector_warning(items)
    if warning:
        yield Finding("pgvector", "warn", warning)
    if any(s.name == "pg_bigm" and s.installed for s in items):
        row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
        if "pg_bigm" not in (row[0] if row else ""):
            yield Finding(
                "pg_bigm",
                "warn",
                "pg_bigm is not in shared_preload_libraries, so its pg_bigm.* settings are not "
                "registered at start → the image's pgkura.conf preloads it; a volume created by "
                "another image needs include_if_exists = '/etc/postgresql/pgkura.conf'",
            )


def _migrations(settings: Settings, conn: psycopg.Connection) -> Finding:
    try:
        migrations = project_migrations(settings)
    except PgkuraError as exc:
        return Finding("migrations", "fail", str(exc))
    table = VersionTable(settings.migrations_schema, settings.migrations_table)
    plan = Plan(migrations, table.rows(conn))
    problems = len(plan.changed) + len(plan.missing)
    if problems:
        return Finding("migrations", "fail", f"{problems} changed or missing → invoke db.status")
    if plan.pending:
        return Finding("migrations", "warn", f"{len(plan.pending)} pending → invoke db.migrate")
    return Finding("migrations", "ok", f"{len(plan.applied)} applied, none pending")


def _safety_copies(settings: Settings) -> Finding | None:
    """Copies that restores kept take the space of the database each: say so."""
    try:
        found = copies(settings, settings.target.dbname)
    except (psycopg.Error, PgkuraError):
        return None  # the server finding above already says what is wrong with the connection
    if not found:
        return None
    names = ", ".join(f"{c.name} ({size(c.size)})" for c in found)
    return Finding(
        "safety",
        "warn",
        f"{len(found)} safety cop{'y' if len(found) == 1 else 'ies'} kept by restores: {names} "
        "→ `invoke db.prune` lists them and `--yes` drops all but what the retention rules "
        "keep (with no rule set, the newest)",
    )


def _offsite(settings: Settings) -> Finding:
    """The off-site location answers, with these credentials, and holds recent copies."""
    from pgkura.backups.offsite import OffsiteError, RemoteStore
    from pgkura.backups.store import own_backups

    assert settings.offsite is not None  # noqa: S101 - the caller checked
    try:
        entries = RemoteStore(settings.offsite).entries()
    except OffsiteError as exc:
        return Finding("off-site", "fail", str(exc))
    own = own_backups(entries, settings.target.dbname)
    if not own:
        return Finding("off-site", "warn", f"no backups of {settings.target.dbname} in "
                       f"{settings.offsite.url} yet")  # fmt: skip
    return Finding("off-site", "ok", f"{len(own)} backup(s) in {settings.offsite.url}, newest "
                   f"{own[-1].path.name}")  # fmt: skip


def _schedule(settings: Settings) -> Iterator[Finding]:
    """Scheduled jobs: the last run of each and whether the runner is there to do the next."""
    from pgkura.schedule.runner import status

    active, jobs = status(settings)
    for job in jobs:
        yield Finding(f"scheduled {job.job.name}", job.level, job.line())
    if jobs and not active:
        yield Finding(
            "scheduler", "warn",
            "no runner is active: scheduled jobs will not run → `invoke db.schedule --install` "
            "(systemd) or keep `invoke db.schedule --run` running",
        )  # fmt: skip


def _base_backups(settings: Settings, segment_bytes: int) -> Iterator[Finding]:
    """pgBackRest's newest base backup (how much WAL a point-in-time restore replays), and WAL
    missing from the archive (what no restore can cross)."""
    try:
        found, _ = pgbackrest.backups(settings)
    except PgkuraError as exc:
        yield Finding("base backups", "fail", str(exc))
        return
    repos = pgbackrest.repositories(settings)
    yield Finding("base backups", *pgbackrest.base_backup_finding(found, datetime.now(UTC), repos))
    try:
        gaps = pgbackrest.wal_gaps(settings, found, segment_bytes)
    except PgkuraError as exc:
        yield Finding("WAL archive", "fail", str(exc))
        return
    yield Finding("WAL archive", *pgbackrest.gap_finding(gaps))


def _backups(settings: Settings) -> Finding:
    own = BackupStore(settings.backup_dir).own(settings.target.dbname)
    if not own:
        return Finding(
            "backups", "skip", f"no backups of {settings.target.dbname} in {settings.backup_dir}"
        )
    newest = own[-1].path
    age_h = (time.time() - newest.stat().st_mtime) / 3600
    level = "warn" if age_h > 48 else "ok"
    return Finding("backups", level, f"newest {newest.name}, {age_h:.1f} h old")
