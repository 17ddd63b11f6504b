"""Which pg_dump / pg_dumpall / psql to run, and how: the container's own, the host's, or a
one-off container of the project's image, so the tools always match PostgreSQL 18.

Passwords travel through PGPASSWORD in the child's environment (`docker -e PGPASSWORD` names
the variable without its value), never through argv.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pgkura.config.settings import Settings
from pgkura.dsn import Target
from pgkura.engines.docker.compose import (
    DockerError,
    container_state,
    exec_argv,
    image_exists,
    require_running,
)
from pgkura.errors import PgkuraError

_VERSION = re.compile(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?")
# A client's own first line when it could not connect at all (not a connection lost half-way,
# which psql reports as `psql:<stdin>:LINE: ...`)
_CONNECT_FAILED = re.compile(
    r"^(?:pg_dump|pg_dumpall|psql): error: connection to server (?:on socket|at) .* failed",
    re.MULTILINE,
)


# libpq options that name a file on the client's machine
_CLIENT_FILES = ("sslrootcert", "sslcert", "sslkey", "sslcrl", "sslcrldir")


@dataclass(frozen=True)
class Tool:
    """A client program ready to run: argv up to its own options, connection options, env."""

    argv: list[str]
    connection: list[str]
    env: dict[str, str] = field(repr=False)
    source: str
    version: str
    session: str = ""  # its application_name on the server, to stop it if we are interrupted

    def command(self, *options: str) -> list[str]:
        return [*self.argv, *options, *self.connection]

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.env}


def could_not_connect(stderr: str) -> bool:
    """Whether a client program's errors say it never connected, so nothing ran."""
    return _CONNECT_FAILED.search(stderr) is not None


def parse_version(text: str) -> tuple[int, int]:
    match = _VERSION.search(text)
    if not match:
        raise PgkuraError(f"cannot read a PostgreSQL version from {text.strip()!r}")
    return int(match.group(1)), int(match.group(2) or 0)


def _version_of(argv: list[str]) -> str:
    result = subprocess.run([*argv, "--version"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PgkuraError(f"{' '.join(argv)} --version failed: {result.stderr.strip()}")
    major, minor = parse_version(result.stdout)
    return f"{major}.{minor}"


def host_program(settings: Settings, program: str) -> str | None:
    """The host's `program`: from PGKURA_PG_BIN when set, else from PATH."""
    if settings.pg_bin is not None:
        candidate = settings.pg_bin / program
        return str(candidate) if candidate.is_file() else None
    return shutil.which(program)


def container_tool(
    settings: Settings,
    program: str,
    target: Target,
    *,
    stdin: bool = False,
    server: int | None = None,
) -> Tool | None:
    """`program` of the running project container (the server's own installation, so no
    `--version` round trip: its version is the server's, "" while `server` is unknown);
    None when the container is not running."""
    state = container_state(settings)
    if state is None or not state.running:
        return None
    session = _session_name(program)
    argv = exec_argv(settings, program, stdin=stdin, env={"PGAPPNAME": session})
    login = ["-U", settings.postgres_user]
    if program != "pg_dumpall":
        login += ["-d", target.dbname]
    version = f"{server // 10000}.{server % 10000}" if server else ""
    return Tool(argv, login, {}, f"container {settings.container_name}", version, session)


def _session_name(program: str) -> str:
    return f"pgkura {program} {secrets.token_hex(6)}"


def choose(
    settings: Settings,
    program: str,
    server: int,
    *,
    stdin: bool = False,
    warn: Callable[[str], None],
    dbname: str | None = None,
) -> Tool:
    """The best way to run `program` against the target; PgkuraError if none fits.

    Each tool connects under a unique application_name (PGAPPNAME), so that its server session
    can be found and ended if pgkura is interrupted: Ctrl-C does not reach a process started by
    `docker exec`. `server` is the server's version number (PQserverVersion, e.g. 180006)."""
    server_major = server // 10000
    target = settings.target if dbname is None else settings.target.for_database(dbname)
    if target.is_container:
        own = container_tool(settings, program, target, stdin=stdin, server=server)
        if own is not None:
            return own
        warn(
            f"container {settings.container_name} is not running; using the host's {program} "
            f"against {target.redacted()}"
        )
    session = _session_name(program)
    conninfo, env = target.child_process_args()
    env = {**env, "PGAPPNAME": session}
    connection = ["-d", conninfo] if program != "pg_dumpall" else ["--dbname", conninfo]
    host = host_program(settings, program)
    if host is not None:
        version = _version_of([host])
        if parse_version(f"(PostgreSQL) {version}")[0] >= server_major:
            return Tool([host], connection, env, f"host {program} {version}", version, session)
        if target.is_container:
            raise PgkuraError(
                f"the host's {program} is version {version}, older than the server "
                f"(PostgreSQL {server_major}), and cannot handle PostgreSQL {server_major} "
                "dumps faithfully.\n→ start the container "
                "(`invoke db.up`) so its own tools are used, or install PostgreSQL "
                f"{server_major} client tools and set PGKURA_PG_BIN to their directory"
            )
        warn(f"the host's {program} {version} is older than the server; using a one-off container")
    tool = _one_off(settings, program, target.params, connection, env, stdin)
    return dataclasses.replace(tool, session=session)


def direct(program: Path, target: Target, source: str) -> Tool:
    """A specific client binary against `target` (the throwaway server's own tools)."""
    conninfo, env = target.child_process_args()
    return Tool([str(program)], ["-d", conninfo], env, source, _version_of([str(program)]))


def _one_off(
    settings: Settings,
    program: str,
    params: dict[str, str],
    connection: list[str],
    env: dict[str, str],
    stdin: bool,
) -> Tool:
    """`docker run --rm` of the project's image: PostgreSQL 18 tools for any server. The
    files the connection names (sslrootcert, sslcert, sslkey, sslcrl) are mounted read-only
    at the same paths, so `sslmode=verify-full` checks the same CA as on the host."""
    host = params.get("host", "")
    if not image_exists(settings.image):
        raise PgkuraError(
            f"no {program} of PostgreSQL 18 on this machine: the host has none (or an older one) "
            f"and the image {settings.image} is not built.\n→ `invoke docker.build`, or install "
            "PostgreSQL 18 client tools and set PGKURA_PG_BIN"
        )
    argv = ["docker", "run", "--rm", *(["-i"] if stdin else [])]
    if host.startswith("/"):
        argv += ["--volume", f"{host}:{host}"]
    elif _is_loopback(host):
        argv += ["--network", "host"]
    for name in _CLIENT_FILES:
        path = params.get(name, "")
        if path.startswith("/") and Path(path).exists():
            argv += ["--volume", f"{path}:{path}:ro"]
    # the values come from our environment, not argv
    argv += [arg for name in env for arg in ("--env", name)]
    argv += ["--entrypoint", program, settings.image]
    try:
        version = _version_of(argv)
    except PgkuraError as exc:
        raise DockerError(str(exc)) from None
    return Tool(argv, connection, env, f"one-off container {settings.image}", version)


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
