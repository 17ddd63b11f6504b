"""The engine when PGKURA_ENGINE is not set: production stays on Docker, development uses what
this project already runs on, else Docker when an engine answers, else the embedded engine."""

from __future__ import annotations

import pytest

from pgkura.config.engine_choice import EMBEDDED_NOTE, choose, docker_reachable, remember
from pgkura.config.settings import load_settings

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}  # docker installed, not running


def test_development_without_a_docker_engine_runs_embedded_and_says_so(tmp_path):
    assert choose(tmp_path, "development", NO_ENGINE) == ("embedded", EMBEDDED_NOTE)
    settings = load_settings(tmp_path, NO_ENGINE)
    assert settings.is_embedded
    assert settings.engine_chosen
    assert settings.engine_note == EMBEDDED_NOTE
    assert "PGKURA_ENGINE=docker" in EMBEDDED_NOTE


def test_production_never_switches_engines_by_itself(tmp_path):
    assert choose(tmp_path, "production", NO_ENGINE) == ("docker", None)
    remember(tmp_path, "embedded")  # not even to what development once used
    settings = load_settings(tmp_path, {**NO_ENGINE, "PGKURA_ENV": "production"})
    assert settings.engine == "docker"
    assert settings.engine_note is None


@pytest.mark.parametrize("engine", ["docker", "embedded"])
def test_the_engine_a_project_runs_on_is_kept(tmp_path, engine):
    """Switching by itself later (Docker installed, or not started yet) would leave the data
    behind on the other engine."""
    remember(tmp_path, engine)
    assert choose(tmp_path, "development", NO_ENGINE) == (engine, None)


def test_a_setting_wins_and_is_not_a_choice(tmp_path):
    remember(tmp_path, "embedded")
    settings = load_settings(tmp_path, {**NO_ENGINE, "PGKURA_ENGINE": "docker"})
    assert settings.engine == "docker"
    assert not settings.engine_chosen
    assert settings.engine_note is None


def test_an_unreadable_record_is_no_record(tmp_path):
    (tmp_path / ".pgkura").mkdir()
    (tmp_path / ".pgkura" / "engine").write_bytes(b"\xff\xfe")
    assert choose(tmp_path, "development", NO_ENGINE)[0] == "embedded"


def test_no_docker_binary_is_no_engine(tmp_path):
    assert not docker_reachable({"PATH": str(tmp_path)})


def test_a_running_engine_is_chosen(tmp_path):
    if not docker_reachable({}):
        pytest.skip("no Docker engine answers on this machine")
    assert choose(tmp_path, "development", {}) == ("docker", None)
