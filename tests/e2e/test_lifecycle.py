"""Build, start, migrate, inspect, stop, reset: the tasks a person runs, on a real engine."""

from __future__ import annotations

import os
import socket
import subprocess

import psycopg
import pytest

from pgkura.config.settings import load_settings
from pgkura.engines.docker.compose import compose_argv
from tests.conftest import copy_tracked

from .conftest import FIXTURES, Project, free_port

pytestmark = pytest.mark.e2e


def url(p: Project) -> str:
    return f"postgresql://app:{p.env['POSTGRES_PASSWORD']}@127.0.0.1:{p.port}/app"


def test_up_builds_starts_and_waits_until_ready(project):
    result = project.invoke("db.up", "--build")
    assert result.returncode == 0, result.stderr
    assert (
        f"ready: postgresql://app:***@127.0.0.1:{project.port}/app (PostgreSQL 18." in result.stdout
    )
    with psycopg.connect(url(project)) as conn:  # answered at once: no healthcheck wait
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname='vector'").fetchone()
        listen = conn.execute("SHOW listen_addresses").fetchone()
        assert listen == ("*",)  # pgkura.conf is in force


def test_port_is_published_on_loopback_only(project):
    out = subprocess.run(
        ["docker", "port", project.container, "5432"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"127.0.0.1:{project.port}"


def test_migrate_over_the_published_port(project):
    (project.schema / "schema.sql").unlink()
    result = project.invoke("db.migrate")
    assert result.returncode == 0, result.stderr
    assert "applied 003_add_notes_pinned.sql" in result.stdout
    assert project.invoke("db.status", "--check").returncode == 0
    # development: db/schema.sql is refreshed after applying, byte for byte the committed one
    assert "refreshed" in result.stdout
    assert (project.schema / "schema.sql").read_text() == (FIXTURES / "schema.sql").read_text()


def test_extensions_report_and_missing_ones_fail(project):
    ok = project.invoke("db.extensions")
    assert ok.returncode == 0, ok.stderr
    assert "vector" in ok.stdout
    assert "installed" in ok.stdout
    missing = project.invoke("db.extensions", "--ensure", PGKURA_EXTENSIONS="vector,pg_trgm,nope")
    assert missing.returncode == 1
    assert "not available on the server: nope" in missing.stderr
    ensured = project.invoke("db.extensions", "--ensure", PGKURA_EXTENSIONS="vector,pg_trgm")
    assert ensured.returncode == 0, ensured.stderr
    assert "pg_trgm" in project.sql("SELECT extname FROM pg_extension")


def test_psql_runs_one_command(project):
    assert "42" in project.sql("SELECT 40 + 2 AS answer")
    bad = project.invoke("db.psql", "-c", "SELECT * FROM no_such_table")
    assert bad.returncode != 0
    assert "no_such_table" in bad.stderr


def test_a_missing_container_names_the_fix(project):
    result = project.invoke("db.psql", "-c", "SELECT 1", PGKURA_CONTAINER="pgkura-no-such")
    assert result.returncode == 1
    assert "container pgkura-no-such does not exist" in result.stderr
    assert "invoke db.up" in result.stderr


def test_down_and_up_keep_the_data(project):
    project.sql("INSERT INTO notes (content) VALUES ('残すデータ')")
    assert project.invoke("db.down").returncode == 0
    assert project.invoke("db.up").returncode == 0
    assert "残すデータ" in project.sql("SELECT content FROM notes")


def test_ps_logs_and_restart_reach_the_container(project):
    ps = project.invoke("db.ps")
    assert ps.returncode == 0, ps.stderr
    assert project.container in ps.stdout
    assert "Up" in ps.stdout, ps.stdout
    logs = project.invoke("db.logs", "--tail", "5")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.strip()
    again = project.invoke("db.restart")
    assert again.returncode == 0, again.stderr
    assert "ready: PostgreSQL 18." in again.stdout
    assert "残すデータ" in project.sql("SELECT content FROM notes")


def test_down_with_volumes_needs_confirmation(project):
    refused = project.invoke("db.down", "--volumes")
    assert refused.returncode == 1
    assert "pass --yes" in refused.stderr
    assert "残すデータ" in project.sql("SELECT content FROM notes")


def test_doctor_on_a_healthy_setup(project):
    result = project.invoke("db.doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ok  ] server      PostgreSQL 18." in result.stdout
    assert "[ok  ] migrations  3 applied, none pending" in result.stdout


def test_doctor_and_up_on_a_stopped_container_and_a_busy_port(project):
    subprocess.run(["docker", "stop", project.container], capture_output=True, check=True)
    stopped = project.invoke("db.doctor")
    assert stopped.returncode == 1
    assert f"{project.container} is exited → invoke db.up" in stopped.stdout
    # every task asks the engine instead of polling the whole connect wait (90s here)
    status = project.invoke("db.status")
    assert status.returncode == 1
    assert f"container {project.container} is exited, not running" in status.stderr
    assert "invoke db.up" in status.stderr
    assert "gave up after" not in status.stderr
    with socket.socket() as squatter:
        busy = free_port()
        squatter.bind(("127.0.0.1", busy))
        squatter.listen()
        doctor = project.invoke("db.doctor", POSTGRES_PORT=str(busy))
        assert f"127.0.0.1:{busy} is taken by another process" in doctor.stdout
        up = project.invoke("db.up", POSTGRES_PORT=str(busy))
        assert up.returncode == 1
        assert f"port {busy} on 127.0.0.1 is already in use" in up.stderr
        assert f"(PID {os.getpid()})" in up.stderr  # the holder, named
        assert "POSTGRES_PORT" in up.stderr
    assert project.invoke("db.up").returncode == 0


def test_reset_starts_from_init_sql_and_migrations(project):
    assert project.invoke("db.reset").returncode == 1  # not confirmed: nothing happens
    assert "残すデータ" in project.sql("SELECT content FROM notes")
    result = project.invoke("db.reset", "--yes")
    assert result.returncode == 0, result.stderr
    assert "3 migration(s) applied" in result.stdout
    assert "(0 rows)" in project.sql("SELECT content FROM notes")


def test_production_publishes_no_port_and_uses_the_socket(project):
    assert project.invoke("db.down").returncode == 0
    prod = {"PGKURA_ENV": "production"}
    up = project.invoke("db.up", **prod)
    assert up.returncode == 0, up.stderr
    assert "host=" in up.stdout  # reached through the bind-mounted socket directory
    port = subprocess.run(
        ["docker", "port", project.container], capture_output=True, text=True, check=False
    )
    assert port.stdout.strip() == ""
    status = project.invoke("db.status", "--check", **prod)
    assert status.returncode == 0, status.stderr
    refused = project.invoke("db.down", "--volumes", "--yes", **prod)
    assert refused.returncode == 1
    assert "without --force" in refused.stderr
    assert project.invoke("db.down", **prod).returncode == 0


@pytest.mark.parametrize("environment", ["development", "production"])
def test_compose_files_are_valid_and_read_only_the_named_env_file(engine, tmp_path, environment):
    root = tmp_path / "project"
    copy_tracked(root)  # the project's own files: never a user's .env, backups/, run/, .pgkura/
    # a stray .env that Compose would read by itself from its project directory
    (root / ".env").write_text("POSTGRES_PASSWORD=from-the-stray-file\n")
    settings = load_settings(root, {"PGKURA_ENV": environment, "POSTGRES_PASSWORD": "x",
                                    "PGKURA_ENV_FILE": str(tmp_path / "none.env")})  # fmt: skip
    env = {"POSTGRES_PASSWORD": "x", "PATH": os.environ["PATH"]}
    result = subprocess.run(
        compose_argv(settings, "config", "--quiet"), capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    missing = subprocess.run(
        compose_argv(settings, "config", "--quiet"),
        capture_output=True,
        text=True,
        env={"PATH": env["PATH"]},
    )
    assert missing.returncode != 0
    assert "POSTGRES_PASSWORD is not set" in missing.stderr


def test_a_failed_first_start_is_not_reported_ready(engine, tmp_path):
    broken = Project(tmp_path)
    (broken.schema / "init.sql").write_text(
        "CREATE TABLE made_first (id int);\nCREATE EXTENSION pgkura_no_such_extension;\n"
    )
    try:
        up = broken.invoke("db.up", "--build")
        assert up.returncode == 1, up.stdout + up.stderr
        assert "crashed and was restarted while starting" in up.stderr
        assert "pgkura_no_such_extension" in up.stderr  # the init error, from the server log
        assert "invoke db.reset" in up.stderr
    finally:
        gone = broken.invoke("db.down", "--volumes", "--yes", "--no-backup")
        assert gone.returncode == 0, gone.stderr
