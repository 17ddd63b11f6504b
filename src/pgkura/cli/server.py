"""Tasks for the server itself: start, stop, wait, logs, psql, reset."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.exceptions import Exit

from pgkura.cli.backups import announce
from pgkura.cli.replication import standby_lines
from pgkura.cli.wiring import consent, pg_version, progress, report, say, task

if TYPE_CHECKING:
    from pgkura.config.settings import Settings


@task(help={"build": "build the image first"})
def up(c: Context, settings: Settings, build: bool = False) -> None:
    """server: start it and wait until it is ready

    Start the database and wait until it accepts connections.

    Examples:
      invoke db.up
      invoke db.up --build
    """
    from pgkura.engines.lifecycle import up as start

    version = start(settings, build_first=build, log=say)
    print(f"ready: {settings.target.redacted()} (PostgreSQL {pg_version(version)})")
    from pgkura.replication.standby import after_up

    started = after_up(settings, say)  # an old primary refused, the standby streaming again
    if started is not None:
        print(f"standby started: {started.container}")
    if settings.metrics and settings.target.is_container:  # the exporter is a Compose profile
        from pgkura.metrics.exporter import MONITOR_ROLE, ensure_monitor_role

        if ensure_monitor_role(settings):
            say(f"metrics: created the role {MONITOR_ROLE} (pg_monitor) for the exporter")
        where = ("postgres-exporter:9187 on the project's network" if settings.is_production
                 else f"http://127.0.0.1:{settings.metrics_port}/metrics")  # fmt: skip
        print(f"metrics: postgres_exporter at {where}")


@task(
    help={
        "volumes": "also delete the data volume (backs up first, asks first)",
        "yes": "do not ask for confirmation",
        "force": "allow --volumes in production",
        "no-backup": "with --volumes: do not back up the database first",
    }
)
def down(
    c: Context,
    settings: Settings,
    volumes: bool = False,
    yes: bool = False,
    force: bool = False,
    no_backup: bool = False,
) -> None:
    """server: stop it (data stays unless --volumes)

    Stop and remove the container (the data volume stays unless --volumes).

    Examples:
      invoke db.down
      invoke db.down --volumes --yes
    """
    from pgkura.backups.safety_net import before_deleting_volume
    from pgkura.engines.chosen import engine_for

    if volumes:
        before_deleting_volume(settings, "delete the data volume", consent(yes, force),
                               backup=not no_backup, log=say, progress=progress(),
                               announce=announce, report=report)  # fmt: skip
    engine_for(settings).down(volumes=volumes)
    if volumes and not settings.is_embedded:  # the standby's volume went too
        from pgkura.replication.standby import forget

        forget(settings)


@task
def restart(c: Context, settings: Settings) -> None:
    """server: restart it and wait until it is ready

    Restart the container and wait until it accepts connections again.
    """
    from pgkura.engines.chosen import engine_for

    print(f"ready: PostgreSQL {pg_version(engine_for(settings).restart(say))}")


@task(
    auto_shortflags=True,
    help={"follow": "keep streaming new lines", "tail": "how many lines to show (default 100)"},
)
def logs(c: Context, settings: Settings, follow: bool = False, tail: str = "100") -> None:
    """server: show its log

    Show the server's log.

    Examples:
      invoke db.logs
      invoke db.logs -f
      invoke db.logs --tail 500
    """
    from pgkura import validation as v
    from pgkura.engines.chosen import engine_for

    lines = v.LINES.flag(tail, "--tail")
    engine = engine_for(settings)
    raise Exit(code=engine.show_log(100 if lines is None else lines, follow=follow))


@task
def ps(c: Context, settings: Settings) -> None:
    """server: the container's state and health

    Show the container's state and health.
    """
    from pgkura.engines.chosen import engine_for
    from pgkura.engines.lifecycle import show_state

    code = show_state(settings)
    if engine_for(settings).running:
        for line in standby_lines(settings):
            print(line)
    raise Exit(code=code)


@task(
    auto_shortflags=True, help={"command": "run this SQL and exit instead of opening a shell"}
)  # -c, as psql
def psql(c: Context, settings: Settings, command: str | None = None) -> None:
    """server: open psql (or run one command with -c)

    Open psql in the container (or run one command with -c).

    Examples:
      invoke db.psql
      invoke db.psql -c "SELECT count(*) FROM users"
    """
    import os
    import subprocess

    from pgkura.engines.pg_tools import psql_command

    argv, env = psql_command(settings, command, tty=sys.stdin.isatty())
    raise Exit(code=subprocess.run(argv, env={**os.environ, **env}, check=False).returncode)


@task(
    help={
        "yes": "do not ask for confirmation",
        "force": "allow it in production",
        "no-backup": "do not back up the current database first",
    }
)
def reset(
    c: Context, settings: Settings, yes: bool = False, force: bool = False, no_backup: bool = False
) -> None:
    """server: delete the data, start fresh, migrate

    Delete the data volume, start fresh (init.sql) and apply every migration.

    Examples:
      invoke db.reset
      invoke db.reset --yes --no-backup
    """
    from pgkura.backups.safety_net import before_deleting_volume
    from pgkura.engines.chosen import engine_for
    from pgkura.engines.lifecycle import up as start
    from pgkura.migrations.operations import MigrateOptions
    from pgkura.migrations.operations import migrate as run_migrate
    from pgkura.replication.roles import require_primary

    if engine_for(settings).running:  # a standby or an old primary is not reset in place
        require_primary(settings, settings.target, "a reset")
    before_deleting_volume(settings, "reset the database (delete its volume)",
                           consent(yes, force), backup=not no_backup, log=say,
                           progress=progress(), announce=announce, report=report)  # fmt: skip
    engine_for(settings).down(volumes=True)
    if not settings.is_embedded:  # the standby's volume went too
        from pgkura.replication.standby import forget

        forget(settings)
    start(settings, log=say)
    # the migrations' one path; no backup (the volume is new) and no snapshot (nothing new)
    fresh = MigrateOptions(backup=False, refresh_schema=False)
    done = run_migrate(settings, fresh, say, progress=report, reporter=progress())
    print(f"reset done: fresh database, {len(done.steps)} migration(s) applied")


@task(help={"timeout": "how long to wait, e.g. 30s (default PGKURA_CONNECT_WAIT)"})
def wait(c: Context, settings: Settings, timeout: str = "") -> None:
    """server: wait until it answers a query

    Wait until the server accepts connections and answers a query.

    Examples:
      invoke db.wait
      invoke db.wait --timeout 2min
    """
    from pgkura import validation as v
    from pgkura.engines.readiness import ready

    timeout_ms = v.DURATION.flag(timeout or None, "--timeout")
    version = ready(settings, timeout_ms=timeout_ms)
    print(f"ready: {settings.target.redacted()} (server {version // 10000}.{version % 10000})")


@task(help={"force": "replace existing certificates (clients need the new ca.crt)"})
def tls_cert(c: Context, settings: Settings, force: bool = False) -> None:
    """server: make a development CA and TLS certificate

    Make a development CA and a server certificate for PGKURA_TLS=self-signed in PGKURA_TLS_DIR
    (ca.crt for clients; server.crt and server.key for the server). The certificate names
    localhost, 127.0.0.1, ::1, the container, the Compose service `postgres` and
    PGKURA_TLS_NAMES (e.g. db.example.internal). `invoke db.up` makes them when missing;
    restart the server after --force.

    Examples:
      invoke db.tls-cert
      invoke db.tls-cert --force
    """
    from pgkura.engines.docker.tls import make_certificates, server_names

    written = make_certificates(settings, force=force)
    if not written:
        print(f"kept the certificates in {settings.tls.directory} (--force replaces them)")
        return
    print(f"made {', '.join(p.name for p in written)} in {settings.tls.directory}")
    print(f"names: {', '.join(server_names(settings))}")
    print(f"clients: sslmode=verify-full sslrootcert={settings.tls.directory / 'ca.crt'}")
