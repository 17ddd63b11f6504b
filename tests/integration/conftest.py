"""A throwaway PostgreSQL 18 server for the whole session, a fresh database per test."""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pgkura.clusters.throwaway import ThrowawayServer
from pgkura.config.settings import Settings, load_settings
from pgkura.errors import PgkuraError
from pgkura.extensions.bigm_build import for_throwaway
from tests.conftest import ROOT

_names = itertools.count(1)


@pytest.fixture(scope="session")
def bigm_build() -> Path:
    """pg_bigm compiled for the throwaway server from the project's PG_BIGM_SOURCE. CI has it
    (.ci/run points PG_BIGM_SOURCE at the vendored archive); elsewhere the reason is shown."""
    try:
        return for_throwaway(load_settings(ROOT).pg_bigm)
    except PgkuraError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"pg_bigm must be available in CI, but: {exc}")
        pytest.skip(f"pg_bigm cannot be built for the throwaway server: {exc}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ThrowawayServer]:
    """PostgreSQL 18 + pgvector, and pg_bigm where it can be built."""
    try:
        pg_bigm: Path | None = for_throwaway(load_settings(ROOT).pg_bigm)
    except PgkuraError:
        pg_bigm = None  # the tests that need it ask for bigm_build, which says why
    with ThrowawayServer(pg_bigm=pg_bigm) as server:
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
