"""Migrations refuse a connection pooler: a real PgBouncer in transaction mode in front of the
throwaway server, and the same migration applied over PGKURA_MIGRATION_URL."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgkura.config.settings import load_settings
from pgkura.connect.connection import connect, through_pooler
from pgkura.errors import ConnectError
from pgkura.migrations.operations import MigrateOptions, migrate
from pgkura.migrations.runner import Migrator
from tests.conftest import free_port, wait_for_port

from ..conftest import tables


@pytest.fixture
def pgbouncer(pg_server, database) -> Iterator[str]:
    """A URL of PgBouncer (transaction pooling) in front of `database`."""
    binary = shutil.which("pgbouncer", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if binary is None:
        missing = "no pgbouncer on this machine (Debian: apt-get install pgbouncer)"
        pytest.fail(missing) if os.environ.get("CI") else pytest.skip(missing)
    port = free_port()
    # PgBouncer will not run as root; as root it is started as `nobody`, who must read this
    work = Path(tempfile.mkdtemp(prefix="pgkura-pgbouncer-"))
    work.chmod(0o755)
    server = f"host=127.0.0.1 port={pg_server.port} dbname={database} user=postgres"
    config = work / "pgbouncer.ini"
    config.write_text(
        f"[databases]\n{database} = {server} password={pg_server.password}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n"
        "unix_socket_dir =\nauth_type = any\npool_mode = transaction\n"
    )
    config.chmod(0o644)
    log = (work / "pgbouncer.log").open("wb")
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen([binary, *user, str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, work / "pgbouncer.log", "pgbouncer")
        yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        shutil.rmtree(work)


def test_migrate_through_pgbouncer_refused_and_direct_applied(
    pg_server, database, pgbouncer, tmp_path, write_migration, db
):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    base = {"DATABASE_URL": pgbouncer, "PGKURA_MIGRATIONS_DIR": "migrations"}
    pooled = load_settings(tmp_path, base)
    with pytest.raises(ConnectError) as err:
        Migrator(pooled).migrate()
    message = str(err.value)
    assert "connection pooler" in message
    assert "PGKURA_MIGRATION_URL" in message
    assert "a" not in tables(db)

    direct = load_settings(tmp_path, {**base, "PGKURA_MIGRATION_URL": pg_server.url(database)})
    assert [s.migration.version for s in Migrator(direct).migrate()] == [1]
    assert "a" in tables(db)


def test_direct_connection_is_not_taken_for_a_pooler(settings):
    with connect(settings.target) as conn:
        assert not through_pooler(conn)


def test_production_migrate_through_pgbouncer_refused_before_its_backup(
    pgbouncer, tmp_path, write_migration
):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    environ = {"DATABASE_URL": pgbouncer, "PGKURA_MIGRATIONS_DIR": "migrations",
               "PGKURA_ENV": "production", "PGKURA_BACKUP_DIR": "backups"}  # fmt: skip
    settings = load_settings(tmp_path, environ)
    with pytest.raises(ConnectError, match="connection pooler"):
        migrate(settings, MigrateOptions(), lambda _: None)
    assert not (tmp_path / "backups").exists() or not any((tmp_path / "backups").iterdir())
