"""The e2e tier: the real tasks against a real Docker engine and the project's own image.

Each run uses its own Compose project, container, port, socket directory and volume, so it
never touches a developer's database. The base image comes from PG_BASE_IMAGE (CI: the
stand-in built by ../shared/ci/docker-env.sh). The `full` target is built, with pg_bigm from
PG_BIGM_SOURCE (CI: the vendored archive); PGKURA_E2E_TARGET=runtime builds without pg_bigm,
and the pg_bigm tests then skip, saying so. Most tests use the fixtures' schema (pgvector only);
test_pg_bigm uses db/ itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgkura.config.settings import DEFAULT_BASE_IMAGE
from tests.conftest import ROOT, free_port, run_invoke

FIXTURES = ROOT / "tests" / "fixtures" / "vector_only"
TARGET = os.environ.get("PGKURA_E2E_TARGET", "full")


def _engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no docker binary on PATH"
    result = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return f"Docker engine not reachable: {result.stderr.strip().splitlines()[-1:]}"
    return None


def base_image() -> str:
    """PG_BASE_IMAGE, else the stand-in built by ../shared/ci/docker-env.sh where it exists,
    else the real one."""
    if os.environ.get("PG_BASE_IMAGE"):
        return os.environ["PG_BASE_IMAGE"]
    standin = "local/pgvector-standin:pg18"
    found = subprocess.run(
        ["docker", "image", "inspect", standin], capture_output=True, check=False
    )
    return standin if found.returncode == 0 else DEFAULT_BASE_IMAGE


@pytest.fixture(scope="session")
def engine() -> None:
    problem = _engine_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"e2e tier must run in CI, but: {problem}")
        pytest.skip(f"e2e tier needs a Docker engine: {problem}")


def container_exists(name: str) -> bool:
    """Whether a container of exactly this name exists, running or not."""
    listed = ["docker", "ps", "--all", "--quiet", "--filter", f"name=^{name}$"]
    return bool(subprocess.run(listed, capture_output=True, text=True, check=True).stdout.strip())


class Project:
    """Environment and helpers for one throwaway Compose project."""

    def __init__(self, base: Path, fixtures: Path = FIXTURES, extensions: str = "vector") -> None:
        name = f"pgkura-e2e-{uuid.uuid4().hex[:8]}"
        self.schema = base / "schema"  # a copy: tasks write schema.sql beside the migrations
        shutil.copytree(fixtures, self.schema)
        self.dir = base
        self.container = name
        self.port = free_port()
        self.env = {
            "PGKURA_ENV_FILE": str(base / ".env"),  # none: everything comes from here
            "PGKURA_ENV": "development",
            "PGKURA_ENGINE": "docker",  # chosen, not left to pgkura (which would record it)
            "PGKURA_COMPOSE_PROJECT": name,
            "PGKURA_CONTAINER": name,
            "PGKURA_SOCKET_DIR": str(base / "run" / "postgresql"),
            "PGKURA_BACKUP_DIR": str(base / "backups"),  # never the user's own backups/
            "PGKURA_STANDBY_DIR": str(base / "standby"),  # nor the checkout's .pgkura/
            "PGKURA_IMAGE": "pgkura-postgres:e2e",
            "PGKURA_BUILD_TARGET": TARGET,
            "PG_BASE_IMAGE": base_image(),
            "PGKURA_INIT_SQL": str(self.schema / "init.sql"),
            "PGKURA_MIGRATIONS_DIR": str(self.schema / "migrations"),
            "PGKURA_EXTENSIONS": extensions,
            "POSTGRES_PASSWORD": "e2e-Secret-pw",
            "POSTGRES_PORT": str(self.port),
            "PGKURA_CONNECT_WAIT": "90s",
            "DATABASE_URL": "",
        }

    def invoke(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        result = run_invoke(*args, env={**self.env, **env}, cwd=self.dir, timeout=600)
        assert "e2e-Secret-pw" not in result.stdout + result.stderr
        return result

    def sql(self, query: str) -> str:
        result = self.invoke("db.psql", "-c", query)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def up_and_migrate(self) -> None:
        """db.up --build, then db.migrate writing schema.sql afresh (as in development)."""
        up = self.invoke("db.up", "--build")
        assert up.returncode == 0, up.stdout + up.stderr
        (self.schema / "schema.sql").unlink()
        migrated = self.invoke("db.migrate")
        assert migrated.returncode == 0, migrated.stderr


@pytest.fixture(scope="module")
def project(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    proj = Project(tmp_path_factory.mktemp("e2e"))
    yield proj
    gone = proj.invoke("db.down", "--volumes", "--yes", "--no-backup")
    assert gone.returncode == 0, gone.stderr
