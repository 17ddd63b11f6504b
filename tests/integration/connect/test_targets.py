"""Connecting: DATABASE_URL forms, special-character passwords, waiting for readiness."""

from __future__ import annotations

from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from pgkura.config.settings import load_settings
from pgkura.connect.connection import wait_until_ready
from pgkura.errors import ConnectError
from pgkura.migrations.runner import Migrator
from tests.conftest import free_port

from ..conftest import admin

PASSWORD = "p@ss:w%rd/?#"


@pytest.fixture
def special_role(pg_server, database):
    with admin(pg_server) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier("odd user"), sql.Literal(PASSWORD)
            )
        )
        conn.execute(
            sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(
                sql.Identifier(database), sql.Identifier("odd user")
            )
        )
        with psycopg.connect(pg_server.url(database), autocommit=True) as db:
            db.execute('GRANT ALL ON SCHEMA public TO "odd user"')
    yield "odd user"
    with psycopg.connect(pg_server.url(database), autocommit=True) as db:
        db.execute('DROP OWNED BY "odd user"')
    with admin(pg_server) as conn:
        conn.execute('DROP ROLE "odd user"')


SCHEMES = ["postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_url_with_encoded_password_migrates(
    pg_server, database, special_role, tmp_path, write_migration, scheme
):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    url = (
        f"{scheme}://{quote(special_role, safe='')}:{quote(PASSWORD, safe='')}"
        f"@127.0.0.1:{pg_server.port}/{database}?sslmode=disable&application_name=x"
    )
    settings = load_settings(tmp_path, {"DATABASE_URL": url, "PGKURA_MIGRATIONS_DIR": "migrations"})
    assert [s.migration.version for s in Migrator(settings).migrate()] == [1]
    with psycopg.connect(pg_server.url(database)) as conn:
        assert conn.execute("SELECT applied_by FROM schema_migrations").fetchone() == ("odd user",)


def test_wrong_password_fails_at_once_without_showing_it(pg_server, database, tmp_path):
    url = f"postgresql://postgres:not-the-password@127.0.0.1:{pg_server.port}/{database}"
    target = load_settings(tmp_path, {"DATABASE_URL": url}).target
    with pytest.raises(ConnectError) as err:
        wait_until_ready(target, timeout_ms=30_000)
    assert "password authentication failed" in str(err.value)
    assert "not-the-password" not in str(err.value)
    assert "check DATABASE_URL" in str(err.value)


def test_waiting_for_a_server_that_never_comes_gives_up(tmp_path):
    port = free_port()
    settings = load_settings(tmp_path, {"POSTGRES_PORT": str(port), "POSTGRES_PASSWORD": "x"})
    with pytest.raises(ConnectError) as err:
        wait_until_ready(settings.target, timeout_ms=600)
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message
    assert "invoke db.up" in message
    assert "PGKURA_CONNECT_WAIT" in message


def test_wait_returns_the_server_version(pg_server):
    assert wait_until_ready(pg_server.target(), 5_000) // 10000 == 18
