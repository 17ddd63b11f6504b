"""The embedded engine (PGKURA_ENGINE=embedded) through the real tasks, with no Docker: start,
first-start init.sql, migrate, psql, ps, logs, stop and start with the data kept, a crash of
the server process and recovery, backup and restore with the wheel's own tools, doctor,
extensions, reset, and the Docker-only tasks saying so plainly."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pgkura.config import load_settings
from pgkura.embedded import cluster
from tests.conftest import ROOT, run_invoke

FIXTURES = ROOT / "tests" / "fixtures" / "vector_only"
PASSWORD = "embedded-Secret-pw"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def project(tmp_path: Path) -> Iterator[dict[str, str]]:
    schema = tmp_path / "schema"
    shutil.copytree(FIXTURES, schema)
    env = {
        "PGKURA_ENGINE": "embedded",
        "PGKURA_EMBEDDED_DIR": str(tmp_path / "pg"),
        "PGKURA_ENV_FILE": str(tmp_path / ".env"),
        "POSTGRES_PASSWORD": PASSWORD,
        "POSTGRES_PORT": str(_free_port()),
        "PGKURA_INIT_SQL": str(schema / "init.sql"),
        "PGKURA_MIGRATIONS_DIR": str(schema / "migrations"),
        "PGKURA_EXTENSIONS": "vector",
        "PGKURA_BACKUP_DIR": str(tmp_path / "backups"),
        "DATABASE_URL": "",
        "PATH": os.environ["PATH"],
    }
    yield env
    local = cluster(load_settings(tmp_path, env))
    if local.running:
        local.stop("immediate")


def run(env: dict[str, str], *args: str, ok: bool = True):
    result = run_invoke(*args, env=env, cwd=Path(env["PGKURA_EMBEDDED_DIR"]).parent)
    assert PASSWORD not in result.stdout + result.stderr
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def url(env: dict[str, str]) -> str:
    return f"postgresql://app:{PASSWORD}@127.0.0.1:{env['POSTGRES_PORT']}/app"


def count(env: dict[str, str]) -> int:
    with psycopg.connect(url(env)) as conn:
        row = conn.execute("SELECT count(*) FROM notes").fetchone()
    assert row is not None
    return int(row[0])


def test_the_tasks_on_the_embedded_engine(project):
    env = project
    up = run(env, "db.up", "--build")  # the README's "Run it" line works as it is
    assert "the embedded engine has no image to build" in up.stderr
    assert f"ready: postgresql://app:***@127.0.0.1:{env['POSTGRES_PORT']}/app (PostgreSQL 18." in (
        up.stdout
    )
    with psycopg.connect(url(env)) as conn:  # init.sql ran on the fresh cluster
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone()
    # TCP needs the password: never trust
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(f"postgresql://app:wrong@127.0.0.1:{env['POSTGRES_PORT']}/app").close()
    run(env, "db.migrate", "--no-schema")
    with psycopg.connect(url(env), autocommit=True) as conn:
        conn.execute("INSERT INTO notes (content, embedding) VALUES ('東京', '[1,2,3]')")
    assert "東京" in run(env, "db.psql", "-c", "SELECT content FROM notes").stdout
    assert "embedded: running" in run(env, "db.ps").stdout
    assert "database system is ready to accept connections" in run(env, "db.logs").stdout
    assert "[ok  ] engine" in run(env, "db.doctor").stdout
    assert "installed" in run(env, "db.extensions").stdout

    assert "ready: PostgreSQL 18." in run(env, "db.restart").stdout
    run(env, "db.wait", "--timeout", "10s")
    assert count(env) == 1  # a restart keeps the data
    run(env, "db.down")
    assert "embedded: stopped" in run(env, "db.ps").stdout
    run(env, "db.up")
    assert count(env) == 1  # so do stop and start

    # a crash of the server process: the next db.up recovers with the data
    pid = int((Path(env["PGKURA_EMBEDDED_DIR"]) / "data" / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    run(env, "db.up")
    assert count(env) == 1

    backup = run(env, "db.backup").stdout
    assert "host pg_dump 18." in backup  # the wheel's own PostgreSQL 18 tools
    with psycopg.connect(url(env), autocommit=True) as conn:
        conn.execute("DELETE FROM notes")
    run(env, "db.restore", "latest", "--yes")
    assert count(env) == 1

    reset = run(env, "db.reset", "--yes")
    assert "reset done: fresh database" in reset.stdout
    assert count(env) == 0
    assert len(list(Path(env["PGKURA_BACKUP_DIR"]).glob("app_*.sql.gz"))) >= 2  # taken first

    for args, words in ((("docker.build",), "building an image is for the Docker engine"),
                        (("db.upgrade",), "is for the Docker engine")):  # fmt: skip
        refused = run(env, *args, ok=False)
        assert refused.returncode == 1
        assert words in refused.stderr
    run(env, "db.down")
    assert not cluster(load_settings(ROOT, env)).running


def test_without_docker_db_up_names_the_embedded_engine(tmp_path):
    """A machine with no docker binary: the error says how to try pgkura now."""
    env = {"PATH": str(tmp_path), "PGKURA_ENV_FILE": str(tmp_path / ".env"),
           "POSTGRES_PASSWORD": "x", "PGKURA_BACKUP_DIR": str(tmp_path / "b")}  # fmt: skip
    result = run_invoke("db.up", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "docker is not installed" in result.stderr
    assert "PGKURA_ENGINE=embedded" in result.stderr
