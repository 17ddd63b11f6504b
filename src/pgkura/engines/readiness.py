"""Waiting for the target server, with the engine's word on the container.

A stopped container will not start answering however long we poll: when the target is the
project's container, each failed attempt asks Docker for its state, so a task fails within a
second or two with the state and the remedy instead of after the whole connect wait.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timedelta

import psycopg

from pgkura.config.settings import Settings
from pgkura.connect.connection import (
    Refusal,
    connect,
    ping,
    session_lost,
    wait_until_ready,
    where_logs,
)
from pgkura.dsn import Target, TargetKind
from pgkura.engines.docker.compose import container_state, require_up
from pgkura.errors import PgkuraError


def ready(
    settings: Settings,
    target: Target | None = None,
    *,
    timeout_ms: int | None = None,
    poll_s: float = 0.25,
    still_hopeful: Callable[[], None] | None = None,
) -> int:
    """Wait until `target` (default: the settings' target) answers; its version number.
    `still_hopeful` replaces the default container check (see `wait_until_ready`)."""
    target = target or settings.target
    hopeful = still_hopeful or (container_alive(settings) if target.is_container else None)
    return wait_until_ready(
        target,
        settings.connect_wait_ms if timeout_ms is None else timeout_ms,
        poll_s=poll_s,
        still_hopeful=hopeful,
    )


def container_alive(settings: Settings) -> Callable[[], None] | None:
    """A check that raises when the container is missing or stopped (None without docker:
    then the host and port are all we know)."""
    if shutil.which("docker") is None:
        return None

    def check() -> None:
        require_up(settings, container_state(settings), restarting_ok=True)

    return check


def lost_server(settings: Settings | None, exc: psycopg.Error) -> str | None:
    """For an error meaning the server ended our session mid-way: what happened, the engine's
    word on the server now, and what to do; None for an ordinary database error. Without
    settings (they did not load) the server's word alone."""
    why = session_lost(exc)
    if why is None:
        return None
    primary = " ".join((exc.diag.message_primary or str(exc)).split()) or type(exc).__name__
    now = "" if settings is None else _server_now(settings)
    return (
        f"the server ended this session mid-way: {why}. Its message: {primary}\n{now}"
        "What this task had not committed was rolled back.\n→ "
        f"{where_logs(settings.target) if settings else 'The server log'} says why; run this "
        "again once the server takes connections"
    )


def _server_now(settings: Settings) -> str:
    """One line on where the server is now, from the engine (container or embedded)."""
    if settings.target.kind is TargetKind.EMBEDDED:
        from pgkura.engines.embedded.server import cluster

        if cluster(settings).running:
            return "The embedded server is still running: it restarted, or is shutting down.\n"
        return "The embedded server is stopped (`invoke db.up` starts it).\n"
    if not settings.target.is_container or shutil.which("docker") is None:
        return ""
    state = container_state(settings)
    name = settings.container_name
    if state is None:
        return f"Container {name} no longer exists (`invoke db.up` creates it).\n"
    if state.status == "restarting":
        return f"Container {name} is being restarted by its restart policy.\n"
    if not state.running:
        return f"Container {name} is {state.status} (`invoke db.up` starts it).\n"
    return (
        f"Container {name} is still running ({state.health or 'no health check'}): the "
        "server restarted inside it, or is shutting down.\n"
    )


# The postmaster survives a crash restart and starts every other process again; a normal
# start forks the checkpointer within moments of the postmaster (milliseconds; the margin is
# for a busy machine). So a checkpointer younger than the postmaster by more than the margin
# dates the last crash restart.
START_MARGIN = timedelta(seconds=10)


def last_crash_restart(conn: psycopg.Connection) -> datetime | None:
    """When the server last restarted its processes after a crash (dropping every session),
    or None when it has not since it started; PgkuraError when this role cannot tell."""
    row = conn.execute(
        "SELECT backend_start, pg_postmaster_start_time() FROM pg_stat_activity "
        "WHERE backend_type = 'checkpointer'"
    ).fetchone()
    if row is None or row[0] is None:
        raise PgkuraError(
            "cannot tell: this role may not see the server's background processes (a "
            "superuser or a member of pg_read_all_stats can)"
        )
    forked, started = row
    return forked if forked - started > START_MARGIN else None


def crash_note(when: datetime, target: Target) -> str:
    return (
        f"the server restarted after a crash at {when.astimezone():%Y-%m-%d %H:%M:%S %Z}, "
        f"dropping every session → {where_logs(target)} shows why (look before "
        "'terminating any other active server processes'); this note stays until the server "
        "is next started"
    )


def condition(settings: Settings) -> str | None:
    """What is wrong with a server that runs, when one cheap look can tell: refusing
    connections for now (starting, stopping, recovering), or restarted after a crash."""
    target = settings.target.for_database("postgres")  # never waits on a copy of the app's
    if ping(target) is Refusal.NOT_NOW:
        return (
            "the server accepts no connections now: it is starting up, shutting down or "
            "recovering after a crash → `invoke db.logs`"
        )
    try:
        with connect(target, purpose="state", connect_timeout=3) as conn:
            when = last_crash_restart(conn)
    except (PgkuraError, psycopg.Error):
        return None  # `invoke db.doctor` says what is wrong with the connection
    return crash_note(when, target) if when else None
