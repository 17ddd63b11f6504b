"""PGKURA_POOLER=pgbouncer: applications go through PgBouncer (transaction pooling, prepared
statements), db.migrate refuses it and applies the same migrations over PGKURA_MIGRATION_URL."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from .conftest import Project, container_exists, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pooled(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    proj = Project(tmp_path_factory.mktemp("e2e-pooler"))
    proj.env["PGKURA_POOLER"] = "pgbouncer"
    proj.env["PGKURA_POOLER_PORT"] = str(free_port())
    yield proj
    gone = proj.invoke("db.down", "--volumes", "--yes", "--no-backup")
    assert gone.returncode == 0, gone.stderr


def url(p: Project, port: str) -> str:
    return f"postgresql://app:{p.env['POSTGRES_PASSWORD']}@127.0.0.1:{port}/app"


def test_applications_go_through_pgbouncer_with_prepared_statements(pooled):
    up = pooled.invoke("db.up", "--build")
    assert up.returncode == 0, up.stdout + up.stderr
    with psycopg.connect(url(pooled, pooled.env["PGKURA_POOLER_PORT"]), autocommit=True) as conn:
        for _ in range(8):  # psycopg prepares from the fifth execution on
            assert conn.execute("SELECT %s::int + 1", (1,), prepare=True).fetchone() == (2,)
        assert conn.execute("SELECT pg_backend_pid()").fetchone() != (conn.info.backend_pid,)


def test_migrate_through_pgbouncer_refused_then_applied_directly(pooled):
    through = url(pooled, pooled.env["PGKURA_POOLER_PORT"])
    refused = pooled.invoke("db.migrate", DATABASE_URL=through)
    assert refused.returncode != 0
    assert "connection pooler" in refused.stderr
    assert "PGKURA_MIGRATION_URL" in refused.stderr
    direct = url(pooled, str(pooled.port))
    applied = pooled.invoke("db.migrate", DATABASE_URL=through, PGKURA_MIGRATION_URL=direct)
    assert applied.returncode == 0, applied.stderr
    assert "applied 001_" in applied.stdout


def test_turning_the_pooler_off_removes_pgbouncer(pooled):
    """Its Compose file is no longer added, so Compose would leave PgBouncer running."""
    pgbouncer = f"{pooled.container}-pgbouncer"
    up = pooled.invoke("db.up", PGKURA_POOLER="off")
    assert up.returncode == 0, up.stderr
    assert f"PGKURA_POOLER is off: removed PgBouncer ({pgbouncer})" in up.stderr
    assert not container_exists(pgbouncer)
