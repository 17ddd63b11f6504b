"""One migration runner at a time: a session-level advisory lock on a dedicated connection.

The lock lives on its own connection so that the migrations' transactions commit or roll
back independently of it, and it is released when that connection ends, even if the runner
is killed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from pgkura.connect.connection import connect, through_pooler
from pgkura.dsn import Target
from pgkura.durations import render_ms
from pgkura.errors import ConnectError, LockTimeoutError


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for `name` (the version table's qualified name)."""
    return int.from_bytes(hashlib.sha256(f"pgkura:{name}".encode()).digest()[:8], signed=True)


def describe_holder(conn: psycopg.Connection, key: int) -> str:
    """Who holds the advisory lock `key`, as far as pg_stat_activity tells."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = conn.execute(
        """SELECT a.pid, a.usename, a.application_name, a.client_addr::text,
                  date_trunc('second', now() - a.backend_start)::text
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
              AND l.classid = %s::oid AND l.objid = %s::oid
            LIMIT 1""",
        (str(unsigned >> 32), str(unsigned & 0xFFFFFFFF)),
    ).fetchone()
    if row is None:
        return "another session (no longer visible)"
    pid, user, app, addr, age = row
    return (
        f"pid {pid} ({app or 'unnamed client'}, user {user}, "
        f"from {addr or 'local socket'}, connected {age} ago)"
    )


@contextmanager
def runner_lock(
    target: Target,
    name: str,
    wait_ms: int,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the runner lock for `name`, waiting up to `wait_ms` for another runner to finish."""
    key = lock_key(name)
    conn = connect(target, purpose="migration lock")
    try:
        _refuse_pooler(conn, target)
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not (got and got[0]):
            holder = describe_holder(conn, key)
            if wait_ms <= 0:
                raise LockTimeoutError(_held_message(name, wait_ms, holder))
            if on_wait:
                on_wait(f"waiting up to {render_ms(wait_ms)} for the runner lock held by {holder}")
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{wait_ms}ms",))
            try:
                conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            except psycopg.errors.LockNotAvailable:
                raise LockTimeoutError(
                    _held_message(name, wait_ms, describe_holder(conn, key))
                ) from None
        yield
    finally:
        conn.close()


def require_direct(target: Target) -> None:
    """ConnectError when `target` leads through a pooler: checked before anything slow (the
    backup before migrating) as well as when the lock is taken."""
    with connect(target, purpose="pooler check") as conn:
        _refuse_pooler(conn, target)


def _refuse_pooler(conn: psycopg.Connection, target: Target) -> None:
    if not through_pooler(conn):
        return
    raise ConnectError(
        f"{target.redacted()} leads through a connection pooler (PgBouncer or similar), not "
        "to the server itself: the migration lock is held by a session, and a pooler in "
        "transaction mode hands that session to other clients between transactions (the lock "
        "leaks and runners deadlock).\n"
        "→ set PGKURA_MIGRATION_URL to the server's own address (its host and port, not the "
        "pooler's); applications keep DATABASE_URL on the pooler"
    )


def _held_message(name: str, wait_ms: int, holder: str) -> str:
    return (
        f"another migration runner still holds the lock on {name} after waiting "
        f"{render_ms(wait_ms)}: {holder}.\n"
        "→ wait for it to finish, or raise PGKURA_RUNNER_LOCK_WAIT; if that process is gone "
        "for good, ending its session (pg_terminate_backend) frees the lock"
    )
