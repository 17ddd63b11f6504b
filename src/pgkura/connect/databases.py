"""Whole databases on the target server: exists, create, drop (scratch and restore targets)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from pgkura.config.settings import Settings
from pgkura.connect.connection import connect
from pgkura.dsn import Target


def admin_connection(settings: Settings) -> psycopg.Connection:
    """The maintenance database of the same server."""
    return connect(settings.target.for_database("postgres"), purpose="admin")


def database_exists(settings: Settings, name: str) -> bool:
    with admin_connection(settings) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None


def create_database(settings: Settings, name: str) -> None:
    with admin_connection(settings) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(settings: Settings, name: str) -> None:
    with admin_connection(settings) as conn:
        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(query.format(sql.Identifier(name)))


def end_sessions(target: Target, application_name: str) -> int:
    """Terminate the server sessions of one of our client programs (an interrupted pg_dump or
    psql that Ctrl-C could not reach inside a container); how many were ended."""
    with connect(target, purpose="cleanup", connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchall()
    return len(rows)


def other_sessions(settings: Settings, name: str) -> int:
    """How many client sessions are connected to database `name` (autovacuum workers do not
    count: CREATE DATABASE ... TEMPLATE stops them itself)."""
    with admin_connection(settings) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            (name,),
        ).fetchone()
        return int(row[0]) if row else 0
