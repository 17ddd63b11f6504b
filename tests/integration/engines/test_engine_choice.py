""" "Run it" on a machine where no Docker engine answers: development runs on the embedded
engine, says so in one line and stays on it; production refuses and says what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from pgkura.config.engine_choice import EMBEDDED_NOTE
from pgkura.config.settings import load_settings
from pgkura.engines.embedded.server import cluster
from tests.conftest import ROOT, free_port, tracked_files

FIXTURES = ROOT / "tests" / "fixtures" / "vector_only"
PASSWORD = "choice-Secret-pw"


def _project(tmp_path: Path) -> Path:
    """A project of its own (pgkura records its choice under the project root): the tasks,
    the Compose files and a schema."""
    project = tmp_path / "project"
    project.mkdir()
    for path in tracked_files():
        if path.parent == ROOT and (path.name == "tasks.py" or path.name.startswith("docker-")):
            shutil.copy(path, project / path.name)
    shutil.copytree(FIXTURES, project / "db")
    return project


def _invoke(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(project), *args],
        env={**os.environ, **env}, cwd=project, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=300, check=False,
    )  # fmt: skip
    assert PASSWORD not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_run_it_without_a_docker_engine(tmp_path):
    project = _project(tmp_path)
    port = free_port()
    env = {
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",  # docker installed, no engine
        "PGKURA_ENV_FILE": ".env",
        "POSTGRES_PASSWORD": PASSWORD,
        "POSTGRES_PORT": str(port),
        "PGKURA_EXTENSIONS": "vector",
    }
    production = _invoke(project, {**env, "PGKURA_ENV": "production"}, "db.up")
    assert production.returncode == 1
    assert "the Docker engine is not reachable" in production.stderr
    assert not (project / ".pgkura").exists()  # nothing chosen, nothing started
    try:
        up = _invoke(project, env, "db.up", "db.migrate")
        assert up.returncode == 0, up.stderr
        assert up.stderr.count(EMBEDDED_NOTE) == 1
        assert "applied 001_" in up.stdout
        assert (project / ".pgkura" / "engine").read_text() == "embedded\n"
        # later runs stay on it without saying it again
        status = _invoke(project, env, "db.status")
        assert status.returncode == 0, status.stderr
        assert EMBEDDED_NOTE not in status.stderr
    finally:
        _invoke(project, env, "db.down")
        cluster(load_settings(project, env)).remove()
