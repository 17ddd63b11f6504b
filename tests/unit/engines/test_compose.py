"""argv that tasks build: lists, never shell strings; files chosen by environment."""

from __future__ import annotations

import dataclasses
import os
import shutil

import pytest

from pgkura.config.settings import load_settings
from pgkura.engines.docker.compose import DockerError, compose_argv, exec_argv, require_docker
from pgkura.engines.pg_tools import psql_command


@pytest.fixture
def settings(tmp_path):
    return load_settings(tmp_path, {"POSTGRES_PASSWORD": "s3cret", "PGKURA_CONTAINER": "pg"})


def test_development_uses_the_override_file(settings, tmp_path):
    argv = compose_argv(settings, "up", "--detach")
    files = [argv[i + 1] for i, a in enumerate(argv) if a == "--file"]
    assert files == [
        str(tmp_path / "docker-compose.yml"),
        str(tmp_path / "docker-compose.override.yml"),
    ]
    assert argv[:2] == ["docker", "compose"]
    assert argv[-2:] == ["up", "--detach"]
    # no .env in tmp_path: Compose must not fall back to a .env of its own choosing
    assert argv[argv.index("--env-file") + 1] == os.devnull


def test_production_uses_the_prod_file_and_the_env_file(tmp_path):
    (tmp_path / ".env").write_text("PGKURA_ENV=production\nPOSTGRES_PASSWORD=s3cret\n")
    argv = compose_argv(load_settings(tmp_path, {}), "ps")
    assert str(tmp_path / "docker-compose.prod.yml") in argv
    assert str(tmp_path / "docker-compose.override.yml") not in argv
    assert argv[argv.index("--env-file") + 1] == str(tmp_path / ".env")
    assert all("s3cret" not in a for a in argv)


@pytest.mark.parametrize(
    ("environment", "added"),
    [("development", ["docker-compose.tls.yml", "docker-compose.pgbouncer.yml",
                      "docker-compose.pgbouncer.dev.yml"]),
     ("production", ["docker-compose.tls.yml", "docker-compose.pgbouncer.yml"])],
)  # fmt: skip
def test_tls_and_pooler_add_their_files(tmp_path, environment, added):
    env = {"POSTGRES_PASSWORD": "s3cret", "PGKURA_ENGINE": "docker", "PGKURA_ENV": environment,
           "PGKURA_TLS": "self-signed", "PGKURA_POOLER": "pgbouncer"}  # fmt: skip
    argv = compose_argv(load_settings(tmp_path, env), "ps")
    files = [argv[i + 1] for i, a in enumerate(argv) if a == "--file"]
    assert files[2:] == [str(tmp_path / name) for name in added]


def test_exec_allocates_a_tty_only_when_asked(settings):
    assert exec_argv(settings, "pg_dump") == ["docker", "exec", "pg", "pg_dump"]
    assert exec_argv(settings, "psql", stdin=True, tty=True) == [
        "docker", "exec", "-i", "-t", "pg", "psql",
    ]  # fmt: skip


def test_production_target_is_the_socket_directory(tmp_path):
    s = load_settings(tmp_path, {"PGKURA_ENV": "production", "POSTGRES_PORT": "6000"})
    assert s.target.params["host"] == str(tmp_path.resolve() / "run" / "postgresql")
    assert s.target.params["port"] == "5432"  # the socket inside the container, not the host port


def test_psql_for_database_url_keeps_the_password_off_argv(settings):
    remote = dataclasses.replace(settings, database_url="postgresql://u:hunter2@db.example.com/app")
    argv, env = psql_command(remote, "SELECT 1", tty=False)
    assert all("hunter2" not in a for a in argv)
    assert env == {"PGPASSWORD": "hunter2"}
    assert sorted(argv[-1].split()) == ["dbname=app", "host=db.example.com", "user=u"]


def test_missing_docker_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no docker on it
    with pytest.raises(DockerError, match="docker is not installed"):
        require_docker()


def test_engine_not_running_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    if not shutil.which("docker"):
        pytest.skip("needs the docker client binary (not the engine)")
    with pytest.raises(DockerError, match="Docker engine is not reachable"):
        require_docker()
