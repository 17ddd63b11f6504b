"""Containers and volumes pgkura makes for a while beside the project's server: the old and new
servers of `db.upgrade`, the replay of `db.restore-to`, their volumes. Each is labelled, so a
killed run's leftovers are found again; a server is stopped (cleanly, the image's stop signal)
before it is removed; a helper server has no network and is reached through its socket."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence

from pgkura.engines.docker.compose import DockerError, run

SOCKET = "/var/run/postgresql"  # where the images' servers put their socket
_READY_S = 300


def labelled(key: str, value: str) -> list[str]:
    """The containers (running or not) that carry the label key=value."""
    return run(
        ["docker", "ps", "-aq", "--filter", f"label={key}={value}"], what="docker ps"
    ).split()


def start(
    name: str,
    image: str,
    *command: str,
    label: tuple[str, str],
    mounts: Sequence[str] = (),
    env: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    network: str = "none",
    what: str,
) -> None:
    """`docker run -d` of a helper: no network (unless one is named: a replay that reads the
    off-site repository), an init process, labelled. `env` names variables passed from
    `environ` (values off argv)."""
    argv = ["docker", "run", "-d", "--init", "--name", name, "--label", "=".join(label),
            "--network", network, *[a for m in mounts for a in ("-v", m)],
            *[a for e in env for a in ("-e", e)], image, *command]  # fmt: skip
    run(argv, what=what, env=environ)


def stop(name: str, timeout_s: int = 60) -> None:
    """Stop a container if it runs (its server shuts down cleanly); nothing if it does not."""
    subprocess.run(["docker", "stop", "-t", str(timeout_s), name], capture_output=True, check=False)


def remove(name: str, timeout_s: int = 60) -> None:
    """Stop, then remove a container with its anonymous volumes; nothing if there is none."""
    stop(name, timeout_s)
    subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)


def create_volume(name: str, label: tuple[str, str] | None = None) -> None:
    labels = ["--label", "=".join(label)] if label else []
    run(["docker", "volume", "create", *labels, name], what="docker volume create")


def volume_label(name: str, key: str) -> str | None:
    """The volume's label `key` ("" when it has none), or None when there is no such volume."""
    found = subprocess.run(
        ["docker", "volume", "inspect", "-f", f'{{{{index .Labels "{key}"}}}}', name],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return found.stdout.strip() if found.returncode == 0 else None


def volume_exists(name: str) -> bool:
    return volume_label(name, "pgkura") is not None


def remove_volume(name: str) -> None:
    subprocess.run(["docker", "volume", "rm", "-f", name], capture_output=True, check=False)


class HelperServer:
    """A helper PostgreSQL container with no network, reached through its socket."""

    def __init__(self, name: str, superuser: str = "") -> None:
        self.name = name
        self.superuser = superuser

    def psql_argv(self, dbname: str, *options: str) -> list[str]:
        """psql in the container on `dbname` over the socket, reading SQL from stdin."""
        return ["docker", "exec", "-i", self.name, "psql", "-X", *options, "-v", "ON_ERROR_STOP=1",
                "-h", SOCKET, "-U", self.superuser, "-d", dbname, "-f", "-"]  # fmt: skip

    def psql(
        self, dbname: str, *, sql: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = self.psql_argv(dbname, "-At")
        result = subprocess.run(argv, input=sql, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise DockerError(f"psql in {self.name} ({dbname}) failed: {result.stderr.strip()}")
        return result

    def wait(self, *, fresh: bool = False) -> None:
        """Until the server answers. `fresh`: a first start, whose temporary init server
        answers on the socket and then stops; only the real server listens on TCP (inside the
        container: loopback exists even with no network)."""
        deadline = time.monotonic() + _READY_S
        host = "127.0.0.1" if fresh else SOCKET
        while True:
            ready = subprocess.run(["docker", "exec", self.name, "pg_isready", "-q", "-h", host],
                                   capture_output=True, check=False)  # fmt: skip
            if ready.returncode == 0:
                return
            state = run(["docker", "inspect", "-f", "{{.State.Status}}", self.name], what="inspect")
            if state.strip() != "running" or time.monotonic() > deadline:
                logs = subprocess.run(["docker", "logs", "--tail", "30", self.name],
                                      capture_output=True, text=True, check=False)  # fmt: skip
                raise DockerError(f"the server in {self.name} did not come up:\n"
                                  f"{(logs.stdout + logs.stderr).strip()}")  # fmt: skip
            time.sleep(0.5)

    def databases(self) -> list[str]:
        """Every database one can connect to, templates aside."""
        query = (
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"
        )
        return self.psql("postgres", sql=query).stdout.splitlines()
