"""The container's life: build, up (until it really answers), down, reset, port checks."""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
from collections.abc import Callable

from pgkura.compose import (
    DockerError,
    compose_argv,
    compose_env,
    container_state,
    exec_argv,
    logs_tail,
    require_docker,
    require_running,
    run,
)
from pgkura.config import Settings
from pgkura.connection import wait_until_ready
from pgkura.errors import ConfigError, ConnectError, PgkuraError

Log = Callable[[str], None]


def _compose(settings: Settings, *args: str) -> None:
    """Run a docker compose command with its output on the terminal (progress for a person)."""
    argv = compose_argv(settings, *args)
    result = subprocess.run(argv, env=compose_env(settings), check=False)
    if result.returncode != 0:
        raise DockerError(
            f"docker compose {args[0]} failed (exit {result.returncode}); see the output above"
        )


def build(settings: Settings, *, no_cache: bool = False, pull: bool = False) -> None:
    require_docker()
    flags = (["--no-cache"] if no_cache else []) + (["--pull"] if pull else [])
    _compose(settings, "build", *flags)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on host:port. SO_REUSEADDR as servers set it (docker-proxy,
    postgres): connections lingering in TIME_WAIT from a container just removed do not count."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def check_port(settings: Settings) -> None:
    """Before `up` in development: the host port must be free, or published by our container."""
    state = container_state(settings)
    if (state and state.running) or not port_in_use(settings.postgres_port):
        return
    holder = run(
        ["docker", "ps", "--filter", f"publish={settings.postgres_port}", "--format", "{{.Names}}"],
        what="docker ps",
    ).strip()
    who = f"container {holder}" if holder else "another process"
    raise PgkuraError(
        f"port {settings.postgres_port} on 127.0.0.1 is already in use by {who}.\n"
        f"→ stop it (find it with `ss -ltnp 'sport = :{settings.postgres_port}'`), or choose "
        "another port: set POSTGRES_PORT in .env (e.g. POSTGRES_PORT=55432) and run this again"
    )


def _require_password(settings: Settings) -> None:
    if not settings.postgres_password:
        raise ConfigError(
            "POSTGRES_PASSWORD is not set: the container will not start without one.\n"
            "→ copy .env.example to .env and set POSTGRES_PASSWORD"
        )


def up(settings: Settings, *, build_first: bool = False, log: Log) -> int:
    """Start the container and wait until the server answers a query; its version number."""
    require_docker()
    _require_password(settings)
    if not settings.is_production:
        check_port(settings)
    settings.socket_dir.mkdir(parents=True, exist_ok=True)
    _compose(settings, "up", "--detach", *(["--build"] if build_first else []))
    log(f"waiting for {settings.target.redacted()} to accept connections")
    try:
        return wait_until_ready(settings.target, settings.connect_wait_ms, poll_s=0.1)
    except ConnectError as exc:
        raise DockerError(
            f"{exc}\n--- last lines of `docker logs {settings.container_name}` ---\n"
            f"{logs_tail(settings)}"
        ) from None


def down(settings: Settings, *, volumes: bool) -> None:
    require_docker()
    _compose(settings, "down", *(["--volumes"] if volumes else []))


def restart(settings: Settings, log: Log) -> int:
    require_docker()
    _compose(settings, "restart")
    log(f"waiting for {settings.target.redacted()} to accept connections")
    return wait_until_ready(settings.target, settings.connect_wait_ms, poll_s=0.1)


def passthrough(settings: Settings, *args: str) -> int:
    """`docker compose ARGS` with the terminal attached (logs, ps); its exit status."""
    require_docker()
    return subprocess.run(
        compose_argv(settings, *args), env=compose_env(settings), check=False
    ).returncode


def psql_command(
    settings: Settings, sql: str | None, *, tty: bool
) -> tuple[list[str], dict[str, str]]:
    """argv and extra environment for psql: the container's own psql (its socket, no
    password), or the host's psql for DATABASE_URL (password through PGPASSWORD)."""
    options = ["-X", "-v", "ON_ERROR_STOP=1", *(["-c", sql] if sql is not None else [])]
    target = settings.target
    if target.source == "container":
        require_running(settings)
        login = ["-U", settings.postgres_user, "-d", settings.postgres_db]
        return exec_argv(settings, "psql", *login, *options, stdin=sql is None, tty=tty), {}
    if shutil.which("psql") is None:
        raise PgkuraError("DATABASE_URL is set but this machine has no psql; install a client")
    conninfo, env = target.child_process_args()
    return ["psql", *options, conninfo], env
