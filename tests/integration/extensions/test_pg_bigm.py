"""pg_bigm on the throwaway server: built from PG_BIGM_SOURCE against the wheel's pg_config,
loaded from outside the installation, and Japanese search on the example schema (db/)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pgkura.clusters.throwaway import ThrowawayServer, bin_dir
from pgkura.config.bigm_source import BigmSource
from pgkura.config.settings import Settings, load_settings
from pgkura.errors import ConfigError
from pgkura.extensions import bigm_build as pg_bigm_build
from pgkura.extensions import check as extensions
from pgkura.migrations.check import check_migrations
from pgkura.migrations.runner import Migrator
from tests.conftest import EXAMPLE_SCHEMA, ROOT
from tests.japanese_search import CHECKS, load


@pytest.fixture
def example(bigm_build: Path, pg_server: ThrowawayServer, database: str) -> Settings:
    """The test database built from db/init.sql and the example migrations."""
    environ = {
        "DATABASE_URL": pg_server.url(database),
        "PGKURA_MIGRATIONS_DIR": str(EXAMPLE_SCHEMA / "migrations"),
        "PGKURA_INIT_SQL": str(ROOT / "db" / "init.sql"),
    }
    settings = load_settings(ROOT, environ)
    with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
        conn.execute(settings.init_sql.read_text())
    Migrator(settings, lambda _: None).migrate()
    return settings


@pytest.fixture
def documents(
    example: Settings, pg_server: ThrowawayServer, database: str
) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
        load(conn)
        yield conn


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_japanese_search_on_the_example_schema(documents, check):
    check(documents)


def test_both_extensions_installed_by_the_example_schema(example):
    found = {s.name: s for s in extensions.check(example.target, ("vector", "pg_bigm"))}
    assert found["pg_bigm"].installed == "1.2"
    assert found["vector"].installed


def test_loaded_from_outside_the_wheel(bigm_build, pg_server):
    share = bin_dir().parent / "share" / "extension"
    assert (share / "vector.control").is_file()  # the wheel's own extensions are there
    assert not (share / "pg_bigm.control").exists()  # pg_bigm is not: the wheel is untouched
    assert not any(bin_dir().parent.rglob("pg_bigm*"))
    assert (bigm_build / "extension" / "pg_bigm.control").is_file()
    assert (bigm_build / "lib" / "pg_bigm.so").is_file()


def test_the_build_is_cached_and_reused(bigm_build):
    module = bigm_build / "lib" / "pg_bigm.so"
    before = module.stat().st_mtime_ns
    assert pg_bigm_build.for_throwaway(load_settings(ROOT).pg_bigm) == bigm_build
    assert module.stat().st_mtime_ns == before


def _local_archive() -> Path:
    source = load_settings(ROOT).pg_bigm
    if source.path is None:
        pytest.skip("PG_BIGM_SOURCE is a URL here; these tests need the archive on disk")
    return source.path


def test_an_archive_with_another_sha256_builds_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("PGKURA_CACHE_DIR", str(tmp_path / "cache"))
    wrong = BigmSource(path=_local_archive(), sha256="0" * 64)
    with pytest.raises(ConfigError, match=r"has SHA-256 [0-9a-f]{64}, but PG_BIGM_SHA256 is 0{64}"):
        pg_bigm_build.for_throwaway(wrong)
    built = [p for p in (tmp_path / "cache" / "pg_bigm").iterdir() if p.is_dir()]
    assert built == []


def test_a_fresh_cache_builds_and_the_server_loads_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PGKURA_CACHE_DIR", str(tmp_path / "cache"))
    build = pg_bigm_build.for_throwaway(BigmSource(path=_local_archive()))
    assert build.parent == tmp_path / "cache" / "pg_bigm"
    with (
        ThrowawayServer(pg_bigm=build) as server,
        psycopg.connect(server.url(), autocommit=True) as conn,
    ):
        conn.execute("CREATE EXTENSION pg_bigm")
        assert conn.execute("SELECT likequery('東京')").fetchone() == ("%東京%",)


def test_without_a_compiler_the_reason_is_given(monkeypatch, tmp_path):
    """A machine without make or a C compiler (PATH emptied: they cannot be uninstalled here)."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PGKURA_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(
        pg_bigm_build.Unavailable, match=r"no make or \S+ on PATH to compile pg_bigm"
    ):
        pg_bigm_build.for_throwaway(BigmSource(path=_local_archive()))


def test_a_missing_archive_is_named(tmp_path):
    missing = tmp_path / "pg_bigm.tar.gz"
    with pytest.raises(ConfigError, match=f"PG_BIGM_SOURCE {missing} does not exist"):
        pg_bigm_build.for_throwaway(BigmSource(path=missing))


@pytest.mark.parametrize("migrations", [ROOT / "db" / "migrations", EXAMPLE_SCHEMA / "migrations"])
def test_the_migration_check_uses_pg_bigm_on_the_throwaway_server(bigm_build, migrations):
    """`nox -s migrations`: db/ itself, then the example schema, each compared with the
    schema.sql beside its migrations."""
    messages: list[str] = []
    environ = {**os.environ, "DATABASE_URL": "", "PGKURA_MIGRATIONS_DIR": str(migrations)}
    check_migrations(load_settings(ROOT, environ), messages.append)
    assert "schema.sql matches the fresh build" in messages
    assert not any("no pg_bigm" in m for m in messages)
