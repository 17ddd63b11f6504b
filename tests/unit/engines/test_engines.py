"""The engine behind the interface: chosen once from the settings, each saying its own word
(no server is started: a fresh directory holds no cluster and no container runs)."""

from __future__ import annotations

import pytest

from pgkura.config.settings import load_settings
from pgkura.engines.chosen import engine_for
from pgkura.engines.docker.engine import DockerEngine
from pgkura.engines.embedded.engine import EmbeddedEngine
from pgkura.errors import PgkuraError

URL = "postgresql://app:pw@db.example:5432/app"


def settings_with(tmp_path, **env):
    return load_settings(tmp_path, {"POSTGRES_PASSWORD": "pw", **env})


def test_the_settings_choose_the_engine(tmp_path):
    assert isinstance(engine_for(settings_with(tmp_path, PGKURA_ENGINE="docker")), DockerEngine)
    embedded = engine_for(settings_with(tmp_path, PGKURA_ENGINE="embedded"))
    assert isinstance(embedded, EmbeddedEngine)


def test_only_the_embedded_engine_refuses_docker_work(tmp_path):
    engine_for(settings_with(tmp_path, PGKURA_ENGINE="docker")).docker_only("pushing an image")
    embedded = engine_for(settings_with(tmp_path, PGKURA_ENGINE="embedded"))
    with pytest.raises(PgkuraError, match="pushing an image is for the Docker engine"):
        embedded.docker_only("pushing an image")


def test_the_embedded_engine_describes_a_directory_without_a_cluster(tmp_path):
    engine = engine_for(settings_with(tmp_path, PGKURA_ENGINE="embedded"))
    assert not engine.running
    assert engine.label == f"the embedded cluster in {tmp_path / '.pgkura' / 'embedded'}"
    [(check, level, detail)] = engine.describe()
    assert (check, level) == ("engine", "fail")
    assert "no cluster yet" in detail
    assert engine.state().text == detail
    assert "embedded server is stopped" in engine.server_now()


@pytest.mark.parametrize("engine", ["docker", "embedded"])
def test_no_engine_speaks_for_database_urls_server(tmp_path, engine):
    settings = settings_with(tmp_path, PGKURA_ENGINE=engine, DATABASE_URL=URL)
    assert engine_for(settings).server_now() == ""
