"""Waiting for the target server, with the engine's word on the container.

A stopped container will not start answering however long we poll: when the target is the
project's container, each failed attempt asks Docker for its state, so a task fails within a
second or two with the state and the remedy instead of after the whole connect wait.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import psycopg

from pgkura.config.settings import Settings
from pgkura.connect.connection import Refusal, connect, ping, wait_until_ready, where_logs
from pgkura.dsn import Target
from pgkura.engines.docker.compose import container_alive
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
