"""The one place that picks the engine (settings.engine, as config/engine_choice resolved it)."""

from __future__ import annotations

from pgkura.config.settings import Settings
from pgkura.engines.base import Engine
from pgkura.engines.docker.engine import DockerEngine
from pgkura.engines.embedded.engine import EmbeddedEngine


def engine_for(settings: Settings) -> Engine:
    return EmbeddedEngine(settings) if settings.is_embedded else DockerEngine(settings)
