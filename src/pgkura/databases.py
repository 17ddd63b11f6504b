"""Whole databases on the target server: exists, create, drop (scratch and restore targets)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from pgkura.config import Settings
from pgkura.connection import connect


def _admin(settings: Settings) -> psycopg.Connection:
    """The maintenance database of the same server."""
    return connect(settings.target.for_database("postgres"), purpose="admin")


def database_exists(settings: Settings, name: str) -> bool:
    with _admin(settings) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None


def create_database(settings: Settings, name: str) -> None:
    with _admin(settings) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(settings: Settings, name: str) -> None:
    with _admin(settings) as conn:
        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(query.format(sql.Identifier(name)))
