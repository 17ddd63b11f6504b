"""A throwaway PostgreSQL 18 server for the whole session, a fresh database per test."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pgkura.config import Settings, load_settings
from pgkura.throwaway import ThrowawayServer

_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ThrowawayServer]:
    with ThrowawayServer() as server:
        yield server


def admin(server: ThrowawayServer) -> psycopg.Connection:
    return psycopg.connect(server.url("postgres"), autocommit=True)


@pytest.fixture
def database(pg_server: ThrowawayServer) -> Iterator[str]:
    name = f"test_{next(_names)}"
    with admin(pg_server) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name
    with admin(pg_server) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def settings(pg_server: ThrowawayServer, database: str, tmp_path: Path) -> Settings:
    (tmp_path / "migrations").mkdir(exist_ok=True)
    environ = {"DATABASE_URL": pg_server.url(database), "PGKURA_MIGRATIONS_DIR": "migrations"}
    base = load_settings(tmp_path, environ)
    return dataclasses.replace(base, runner_lock_wait_ms=10_000, connect_wait_ms=5_000)


@pytest.fixture
def db(pg_server: ThrowawayServer, database: str) -> Iterator[psycopg.Connection]:
    """A connection to the test's database, for looking at what migrations did."""
    with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
        yield conn


def tables(conn: psycopg.Connection) -> set[str]:
    cur = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r[0] for r in cur}
