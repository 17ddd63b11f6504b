"""The `metrics` Compose profile as Compose resolves it (`docker compose config`, no engine
needed): only with PGKURA_METRICS=on, published on 127.0.0.1 in development, unpublished in
production, and connected to the server through its socket directory."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from pgkura.config.settings import load_settings
from pgkura.engines.docker.compose import compose_argv, compose_env
from tests.conftest import ROOT


def _compose() -> bool:
    """Compose v2 answers (the docker binary alone may lack the plugin); no engine needed."""
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _compose(), reason="needs docker with Compose v2 (no engine)")


def services(tmp_path, **env: str) -> dict:
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=pw\n")  # what Compose reads too
    environ = {"PGKURA_ENV_FILE": str(tmp_path / ".env"),
               "PGKURA_SOCKET_DIR": str(tmp_path / "run"), **env}  # fmt: skip
    settings = load_settings(ROOT, environ)
    done = subprocess.run(
        compose_argv(settings, "config", "--format", "json"), env=compose_env(settings),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["services"]


def test_the_exporter_runs_only_when_asked(tmp_path):
    assert "postgres-exporter" not in services(tmp_path)
    assert "postgres-exporter" in services(tmp_path, PGKURA_METRICS="on")


def test_development_publishes_it_on_localhost_only(tmp_path):
    exporter = services(tmp_path, PGKURA_METRICS="on", PGKURA_METRICS_PORT="19187")[
        "postgres-exporter"
    ]
    ((port,),) = [exporter["ports"]]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "19187", 9187)
    (mount,) = exporter["volumes"]
    assert (mount["source"], mount["target"]) == (str(tmp_path / "run"), "/var/run/postgresql")
    assert "pgkura_monitor@" in exporter["environment"]["DATA_SOURCE_NAME"]


def test_production_keeps_it_on_the_project_s_network(tmp_path):
    exporter = services(tmp_path, PGKURA_METRICS="on", PGKURA_ENV="production")["postgres-exporter"]
    assert "ports" not in exporter
    assert "default" in exporter["networks"]
