"""The Docker engine: the project's image run by Docker Compose, built here or pulled."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from pgkura.config.settings import Settings
from pgkura.connect.connection import wait_until_ready
from pgkura.engines.base import Log, State
from pgkura.engines.docker import pgbackrest, tls
from pgkura.engines.docker.build_errors import explain
from pgkura.engines.docker.compose import (
    ContainerState,
    DockerError,
    compose_argv,
    compose_env,
    container_alive,
    container_state,
    image_exists,
    logs_tail,
    require_docker,
    require_up,
    switched_off,
)
from pgkura.engines.docker.helpers import remove
from pgkura.engines.docker.ports import check_port
from pgkura.engines.docker.publish import is_published, pull
from pgkura.engines.docker.volume_check import check as check_volume
from pgkura.errors import ConfigError, ConnectError
from pgkura.extensions.bigm_source import staged

_CHUNK = 64 * 1024
_KEPT_BYTES = 256 * 1024  # BuildKit ends with the failing step and its last output


def _compose(settings: Settings, *args: str, profiles: tuple[str, ...] = ()) -> None:
    """Run a docker compose command with its output on the terminal (progress for a person)."""
    argv = compose_argv(settings, *args, profiles=profiles)
    result = subprocess.run(argv, env=compose_env(settings), check=False)
    if result.returncode != 0:
        raise DockerError(_failed(args, result.returncode))


def _failed(args: tuple[str, ...], code: int) -> str:
    return f"docker compose {args[0]} failed (exit {code}); see the output above"


def _compose_building(settings: Settings, *args: str) -> None:
    """`_compose` for a command that may build: BuildKit's account (stdout and stderr, plain
    when not on a terminal) still reaches the person as it comes, on stderr like all progress,
    and is kept to name the setting that fixes a failed build."""
    argv = compose_argv(settings, *args)
    kept = bytearray()
    env = compose_env(settings)
    # unbuffered: each read returns what has come, so a question Compose asks (no newline at
    # its end) shows at once
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          bufsize=0) as proc:  # fmt: skip
        out = proc.stdout
        for chunk in iter(lambda: out.read(_CHUNK) if out else b"", b""):
            sys.stderr.buffer.write(chunk)
            sys.stderr.buffer.flush()
            kept += chunk
            del kept[:-_KEPT_BYTES]
    if proc.returncode != 0:
        why = explain(settings, kept.decode(errors="replace"))
        raise DockerError(_failed(args, proc.returncode) + (f".\n{why}" if why else ""))


def build(settings: Settings, *, no_cache: bool = False, pull: bool = False) -> None:
    require_docker()
    flags = (["--no-cache"] if no_cache else []) + (["--pull"] if pull else [])
    with _build_inputs(settings, building=True):
        _compose_building(settings, "build", *flags)


def _build_inputs(settings: Settings, *, building: bool) -> AbstractContextManager[None]:
    """What a build of the full target reads from outside the build context (a local pg_bigm
    archive, PG_BIGM_SOURCE), put in place for as long as Compose runs."""
    if not building or settings.build_target != "full":
        return nullcontext()
    return staged(settings.pg_bigm, settings.root)


def _require_password(settings: Settings) -> None:
    if not settings.postgres_password:
        raise ConfigError(
            "POSTGRES_PASSWORD is not set: the container will not start without one.\n"
            "→ copy .env.example to .env and set POSTGRES_PASSWORD"
        )


def _logs(settings: Settings) -> str:
    return f"--- last lines of `docker logs {settings.container_name}` ---\n{logs_tail(settings)}"


class _StartWatch:
    """During `up`: fail at once when the container stops or restarts. A restart during the
    first start means its initialisation (init.sql) failed: the restart policy starts the
    half-initialised cluster, which then looks ready but lacks what init.sql should have made."""

    def __init__(self, settings: Settings, before: ContainerState | None) -> None:
        self.settings = settings
        self.before = before

    def __call__(self) -> None:
        state = container_state(self.settings)
        same = self.before is not None and state is not None and state.ident == self.before.ident
        earlier = self.before.restarts if same and self.before else 0
        if state is not None and state.restarts > earlier:
            name = self.settings.container_name
            raise DockerError(
                f"container {name} crashed and was restarted while starting. On a first start "
                "this means the initialisation (db/init.sql, PGKURA_INIT_SQL) failed and the "
                f"data volume is only half initialised.\n{_logs(self.settings)}\n→ fix the "
                "error above, then `invoke db.reset` to initialise the volume again (it deletes "
                "the data volume; a new volume holds nothing yet)"
            )
        try:
            require_up(self.settings, state, restarting_ok=True)
        except DockerError as exc:
            raise DockerError(f"{exc}\n{_logs(self.settings)}") from None


class DockerEngine:
    """The container of the project's Compose files (PITR: with pgBackRest archiving)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def label(self) -> str:
        return self.settings.container_name

    @property
    def running(self) -> bool:
        state = container_state(self.settings)
        return state is not None and state.running

    def up(self, log: Log, *, build: bool = False) -> int:
        settings = self.settings
        require_docker()
        _require_password(settings)
        if not settings.is_production:
            check_port(settings)
        settings.socket_dir.mkdir(parents=True, exist_ok=True)
        before = container_state(settings)
        check_volume(settings)  # never an empty PostgreSQL 18 cluster beside (or instead of) data
        tls.prepare(settings, log)
        if not build and is_published(settings.image) and not image_exists(settings.image):
            pull(settings, log)  # PGKURA_IMAGE names a registry: run what was published
        for name, line in switched_off(settings):
            remove(name, timeout_s=10)
            log(line)
        # Compose builds the image when it is missing: its inputs must be in place then too.
        with _build_inputs(settings, building=build or not image_exists(settings.image)):
            _compose_building(settings, "up", "--detach", *(["--build"] if build else []))
        watch = _StartWatch(settings, before)
        try:
            version = self._wait(log, watch)
        except ConnectError as exc:
            raise DockerError(f"{exc}\n{_logs(settings)}") from None
        watch()  # the first start may have failed and the restart policy brought up the rest
        if settings.pitr.enabled:
            log(f"point-in-time recovery: checking pgBackRest's stanza {settings.pitr.stanza} "
                "and that WAL reaches its repository")  # fmt: skip
            pgbackrest.ensure_stanza(settings)
        return version

    def _wait(self, log: Log, still_hopeful: Callable[[], None] | None) -> int:
        log(f"waiting for {self.settings.target.redacted()} to accept connections")
        return wait_until_ready(self.settings.target, self.settings.connect_wait_ms, poll_s=0.1,
                                still_hopeful=still_hopeful)  # fmt: skip

    def down(self, *, volumes: bool) -> None:
        """The standby (Compose profile `standby`) goes with the primary, its volume too."""
        require_docker()
        flags = ["--volumes"] if volumes else []
        _compose(self.settings, "down", *flags, profiles=("standby",))

    def restart(self, log: Log) -> int:
        require_docker()
        _compose(self.settings, "restart")
        own = self.settings.target.is_container
        return self._wait(log, container_alive(self.settings) if own else None)

    def show_log(self, lines: int, *, follow: bool) -> int:
        tail = ["--tail", str(lines), *(["--follow"] if follow else [])]
        return self._passthrough("logs", *tail).returncode

    def state(self) -> State:
        """`docker compose ps --all`, and whether the project's own container runs."""
        shown = self._passthrough("ps", "--all", capture=True)
        own = self.settings.target.is_container
        return State(shown.stdout.rstrip("\n"), own and self.running, shown.returncode)

    def _passthrough(self, *args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
        """`docker compose ARGS` with the terminal attached (`capture`: its stdout kept)."""
        require_docker()
        argv = compose_argv(self.settings, *args)
        return subprocess.run(argv, env=compose_env(self.settings), check=False, text=True,
                              stdout=subprocess.PIPE if capture else None)  # fmt: skip

    def server_now(self) -> str:
        settings = self.settings
        if not settings.target.is_container or shutil.which("docker") is None:
            return ""
        state = container_state(settings)
        name = settings.container_name
        if state is None:
            return f"Container {name} no longer exists (`invoke db.up` creates it).\n"
        if state.status == "restarting":
            return f"Container {name} is being restarted by its restart policy.\n"
        if not state.running:
            return f"Container {name} is {state.status} (`invoke db.up` starts it).\n"
        return (
            f"Container {name} is still running ({state.health or 'no health check'}): the "
            "server restarted inside it, or is shutting down.\n"
        )

    def describe(self) -> list[tuple[str, str, str]]:
        return []  # the docker, port, volume and container checks: db.doctor's own

    def docker_only(self, what: str) -> None:
        return None
