"""TLS (PGKURA_TLS=self-signed) on a real container: verify-full accepted, a wrong host name
refused, every task over verify-full (also through DATABASE_URL with sslrootcert), and in
production TCP without TLS refused while the socket stays as it was."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from .conftest import Project

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tls_project(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    proj = Project(tmp_path_factory.mktemp("e2e-tls"))
    proj.env["PGKURA_TLS"] = "self-signed"
    proj.env["PGKURA_TLS_DIR"] = str(proj.dir / "tls")
    yield proj
    gone = proj.invoke("db.down", "--volumes", "--yes", "--no-backup")
    assert gone.returncode == 0, gone.stderr


def ca(p: Project) -> Path:
    return p.dir / "tls" / "ca.crt"


def conninfo(p: Project, **extra: str) -> str:
    params = {"host": "127.0.0.1", "port": str(p.port), "user": "app", "dbname": "app",
              "password": p.env["POSTGRES_PASSWORD"], "sslmode": "verify-full",
              "sslrootcert": str(ca(p)), **extra}  # fmt: skip
    return " ".join(f"{k}={v}" for k, v in params.items())


def test_up_makes_certificates_and_tasks_connect_with_verify_full(tls_project):
    up = tls_project.invoke("db.up", "--build")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "TLS: made a development CA" in up.stdout + up.stderr
    assert "sslmode=verify-full" in up.stdout
    assert oct((tls_project.dir / "tls" / "server.key").stat().st_mode & 0o777) == "0o600"
    migrated = tls_project.invoke("db.migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "sslmode=verify-full" in migrated.stdout + migrated.stderr  # the target, no password


def test_verify_full_accepted(tls_project):
    with psycopg.connect(conninfo(tls_project)) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    assert row == (True,)


def test_wrong_host_name_refused(tls_project):
    # the right address under a name the certificate does not carry
    with pytest.raises(psycopg.OperationalError) as err:
        psycopg.connect(conninfo(tls_project, host="db.wrong.example", hostaddr="127.0.0.1"))
    assert "does not match host name" in str(err.value)


def test_database_url_with_sslrootcert_works_for_every_task(tls_project):
    url = (f"postgresql://app:{tls_project.env['POSTGRES_PASSWORD']}@localhost:{tls_project.port}"
           f"/app?sslmode=verify-full&sslrootcert={ca(tls_project)}")  # fmt: skip
    status = tls_project.invoke("db.status", DATABASE_URL=url)
    assert status.returncode == 0, status.stderr
    assert "sslrootcert=" in status.stdout
    # the host's pg_dump is older than 18 here: a one-off container, with the CA mounted
    backup = tls_project.invoke("db.backup", DATABASE_URL=url)
    assert backup.returncode == 0, backup.stdout + backup.stderr


def test_production_refuses_tcp_without_tls(tls_project):
    up = tls_project.invoke("db.up", PGKURA_ENV="production")
    assert up.returncode == 0, up.stdout + up.stderr

    def psql(*conn: str) -> subprocess.CompletedProcess[str]:
        # inside the container: production publishes no port
        return subprocess.run(
            ["docker", "exec", "--env", "PGPASSWORD", tls_project.container, "psql", "-XAtc",
             "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
             " ".join(("host=127.0.0.1 user=app dbname=app", *conn))],
            capture_output=True, text=True, check=False,
            env={**os.environ, "PGPASSWORD": tls_project.env["POSTGRES_PASSWORD"]},
        )  # fmt: skip

    plain = psql("sslmode=disable")
    assert plain.returncode != 0
    assert "no encryption" in plain.stderr
    verified = psql("host=localhost sslmode=verify-full sslrootcert=/etc/pgkura/tls/ca.crt")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip() == "t"
    # the socket is unchanged: pgkura's tasks go through it
    status = tls_project.invoke("db.status", PGKURA_ENV="production")
    assert status.returncode == 0, status.stderr
