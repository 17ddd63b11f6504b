"""What every engine does for the tasks: one interface, so no caller asks which engine runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

Log = Callable[[str], None]

# pgBackRest and the WAL archive live in the Docker image: said by the embedded engine (which
# refuses to start with PGKURA_PITR=on) and by pgBackRest's commands, in the same words.
PITR_NEEDS_DOCKER = (
    "point-in-time recovery (PGKURA_PITR=on) needs the Docker image: pgBackRest and the WAL "
    "archive live in its container, and the embedded engine has neither\n→ use "
    "PGKURA_ENGINE=docker for point-in-time recovery, or set PGKURA_PITR=off here (db.backup's "
    "dumps work on both engines)"
)


@dataclass(frozen=True)
class State:
    """What `db.ps` shows of the engine, whether the server runs, and the exit status."""

    text: str
    running: bool
    code: int = 0


class Engine(Protocol):
    """Start, stop and look at the server that holds the project's data."""

    @property
    def label(self) -> str:
        """What holds the data, for confirmations: the container, or the embedded cluster."""
        ...

    @property
    def running(self) -> bool: ...

    def up(self, log: Log, *, build: bool = False) -> int:
        """Start (first start included), wait until the server answers; its version number."""
        ...

    def down(self, *, volumes: bool) -> None:
        """Stop; with `volumes` also delete the data (the caller has confirmed and backed up)."""
        ...

    def restart(self, log: Log) -> int: ...

    def show_log(self, lines: int, *, follow: bool) -> int:
        """The server's log on the terminal; an exit status."""
        ...

    def state(self) -> State: ...

    def server_now(self) -> str:
        """One line on where the server is now (after it ended a session), or ""."""
        ...

    def describe(self) -> list[tuple[str, str, str]]:
        """The engine's own findings for db.doctor: (check, level, detail)."""
        ...

    def docker_only(self, what: str) -> None:
        """Refuse `what` (an image, a volume) unless this is the Docker engine."""
        ...
