"""The container's life: build, up (until it really answers), down, reset, port checks."""

from __future__ import annotations

import errno
import socket
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import psutil

from pgkura.config.engine_choice import remember as remember_engine
from pgkura.config.settings import Settings
from pgkura.engines.docker.compose import (
    ContainerState,
    DockerError,
    compose_argv,
    compose_env,
    container_state,
    exec_argv,
    image_exists,
    logs_tail,
    require_docker,
    require_running,
    require_up,
    run,
)
from pgkura.engines.docker.publish import is_published, pull
from pgkura.engines.docker.volume_check import check as check_volume
from pgkura.engines.embedded import server as embedded
from pgkura.engines.pg_tools import host_program
from pgkura.engines.readiness import condition, ready
from pgkura.errors import ConfigError, ConnectError, PgkuraError
from pgkura.extensions.bigm_source import staged
from pgkura.pitr import archiving as pitr

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
    if settings.is_embedded:
        raise embedded.not_here("building an image")
    require_docker()
    flags = (["--no-cache"] if no_cache else []) + (["--pull"] if pull else [])
    had_base = image_exists(settings.base_image)
    try:
        with _build_inputs(settings, building=True):
            _compose(settings, "build", *flags)
    except DockerError as exc:
        if had_base or image_exists(settings.base_image):
            raise
        raise DockerError(
            f"{exc}.\nThe base image {settings.base_image} (PG_BASE_IMAGE) is not on this "
            f"machine and could not be pulled for the {settings.build_target!r} target "
            "(PGKURA_BUILD_TARGET).\n→ `docker pull` it where a registry is reachable (or "
            "`docker load` it), or set PG_BASE_IMAGE to an image this machine has"
        ) from None


def _build_inputs(settings: Settings, *, building: bool) -> AbstractContextManager[None]:
    """What a build of the full target reads from outside the build context (a local pg_bigm
    archive, PG_BIGM_SOURCE), put in place for as long as Compose runs."""
    if not building or settings.build_target != "full":
        return nullcontext()
    return staged(settings.pg_bigm, settings.root)


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
    raise PgkuraError(
        f"port {settings.postgres_port} on 127.0.0.1 is already in use by "
        f"{port_holder(settings.postgres_port)}.\n→ stop it, or choose another port: set "
        "POSTGRES_PORT in .env (e.g. POSTGRES_PORT=55432) and run this again"
    )


def port_holder(port: int) -> str:
    """Who listens on `port`: a container, a process with its PID, or how to find out."""
    holder = run(
        ["docker", "ps", "--filter", f"publish={port}", "--format", "{{.Names}}"],
        what="docker ps",
    ).strip()
    if holder:
        return f"container {holder}"
    try:
        for conn in psutil.net_connections(kind="tcp"):
            listening = conn.status == psutil.CONN_LISTEN and conn.laddr
            if listening and conn.laddr.port == port and conn.pid:
                return f"{psutil.Process(conn.pid).name()} (PID {conn.pid})"
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        pass
    return (
        "a process this user cannot see (find it with `sudo ss -ltnp 'sport = :" + str(port) + "'`)"
    )


def _require_password(settings: Settings) -> None:
    if not settings.postgres_password:
        raise ConfigError(
            "POSTGRES_PASSWORD is not set: the container will not start without one.\n"
            "→ copy .env.example to .env and set POSTGRES_PASSWORD"
        )


def up(settings: Settings, *, build_first: bool = False, log: Log) -> int:
    """Start the container (or the embedded engine's server) and wait until the server answers
    a query; its version number."""
    if settings.engine_note:
        log(settings.engine_note)
    if settings.is_embedded:
        problem = pitr.embedded_problem(settings)
        if problem:
            raise problem
        if build_first:
            log("the embedded engine has no image to build: starting its server")
        version = embedded.up(settings, log)
        _remember_engine(settings)
        return version
    require_docker()
    _require_password(settings)
    if not settings.is_production:
        check_port(settings)
    settings.socket_dir.mkdir(parents=True, exist_ok=True)
    before = container_state(settings)
    check_volume(settings)  # never an empty PostgreSQL 18 cluster beside (or instead of) data
    if not build_first and is_published(settings.image) and not image_exists(settings.image):
        pull(settings, log)  # PGKURA_IMAGE names a registry: run what was published, never build
    # Compose builds the image when it is missing: its inputs must be in place then too.
    with _build_inputs(settings, building=build_first or not image_exists(settings.image)):
        _compose(settings, "up", "--detach", *(["--build"] if build_first else []))
    log(f"waiting for {settings.target.redacted()} to accept connections")
    watch = _StartWatch(settings, before)
    try:
        version = ready(settings, poll_s=0.1, still_hopeful=watch)
    except ConnectError as exc:
        raise DockerError(f"{exc}\n{_logs(settings)}") from None
    watch()  # the first start may have failed and the restart policy brought up the rest
    if settings.pitr.enabled:
        log(f"point-in-time recovery: checking pgBackRest's stanza {settings.pitr.stanza} and "
            "that WAL reaches its repository")  # fmt: skip
        pitr.ensure_stanza(settings)
    _remember_engine(settings)
    return version


def _remember_engine(settings: Settings) -> None:
    """An engine pgkura chose now holds the data: later runs stay on it."""
    if settings.engine_chosen:
        remember_engine(settings.root, settings.engine)


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


def down(settings: Settings, *, volumes: bool) -> None:
    if settings.is_embedded:
        (embedded.destroy if volumes else embedded.down)(settings)
        return
    require_docker()
    _compose(settings, "down", *(["--volumes"] if volumes else []))


def restart(settings: Settings, log: Log) -> int:
    if settings.is_embedded:
        embedded.down(settings)
        return embedded.up(settings, log)
    require_docker()
    _compose(settings, "restart")
    log(f"waiting for {settings.target.redacted()} to accept connections")
    return ready(settings, poll_s=0.1)


def show_log(settings: Settings, lines: int, *, follow: bool) -> int:
    """The server's log on the terminal: its last `lines`, then new ones with `follow`."""
    if settings.is_embedded:
        return embedded.show_log(settings, lines, follow=follow)
    return _passthrough(settings, "logs", "--tail", str(lines), *(["--follow"] if follow else []))


def show_state(settings: Settings) -> int:
    """The container's state and health (the embedded server's state), and a line on the
    server when it runs but is not simply up (the health check does not see a crash restart
    that is over); an exit status."""
    if settings.is_embedded:
        print(embedded.status(settings)[1])
        running = embedded.cluster(settings).running
        code = 0
    else:
        code = _passthrough(settings, "ps", "--all")
        state = container_state(settings)
        running = settings.target.is_container and state is not None and state.running
    note = condition(settings) if running else None
    if note:
        print(f"note: {note}")
    return code


def _passthrough(settings: Settings, *args: str) -> int:
    """`docker compose ARGS` with the terminal attached; its exit status."""
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
    if target.is_container:
        require_running(settings)
        login = ["-U", settings.postgres_user, "-d", settings.postgres_db]
        return exec_argv(settings, "psql", *login, *options, stdin=sql is None, tty=tty), {}
    psql = host_program(settings, "psql")
    if psql is None:
        raise PgkuraError("DATABASE_URL is set but this machine has no psql; install a client")
    conninfo, env = target.child_process_args()
    return [psql, *options, conninfo], env
