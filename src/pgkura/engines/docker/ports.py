"""The host port a development container publishes: free, or ours, before `db.up`."""

from __future__ import annotations

import errno
import socket

import psutil

from pgkura.config.settings import Settings
from pgkura.engines.docker.compose import container_state, run
from pgkura.errors import PgkuraError


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
