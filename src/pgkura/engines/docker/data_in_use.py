"""Is anything else using a cluster's files? Asked before `db.upgrade` starts a server on them.

Two postmasters on one data directory corrupt it, and PostgreSQL's own lock (postmaster.pid)
does not stop the second one when each runs in its own container: each has its own process
IDs, so the new server takes the old one's PID for a stale entry. So the answer comes from
Docker (every container, of any project, running or paused, with a writable mount of the
volume, of the directory, or of a directory holding it or inside it) and from the
postmaster.pid (a server on this machine, or one left by a server that did not shut down).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import Any

from pgkura.engines.docker.compose import run

_RUNNING = ("running", "paused", "restarting")  # a server may run (or go on running) there
COMPOSE_PROJECT = "com.docker.compose.project"


@dataclass(frozen=True)
class Mounter:
    """A container that can run a server on the files."""

    name: str
    state: str
    compose_project: str  # "" when Compose did not make it
    mount: str  # what it mounts: the volume's name or a host path


@dataclass(frozen=True)
class Lock:
    """A cluster's postmaster.pid: the server's PID and data directory, as it saw them."""

    pid: int
    data_dir: str


def mounters(containers: list[dict[str, Any]], *, volume: str, path: str,
             ignore: dict[str, str]) -> list[Mounter]:  # fmt: skip
    """The containers (`docker inspect` output) that mount `volume` (by name; "" for none) or
    `path` (a host path) writable, and run; those carrying any of the `ignore` labels aside."""
    found = []
    for container in containers:
        state = container.get("State", {}).get("Status", "")
        labels = container.get("Config", {}).get("Labels") or {}
        if state not in _RUNNING or any(labels.get(k) == v for k, v in ignore.items()):
            continue
        for mount in container.get("Mounts") or []:
            if not mount.get("RW", True):
                continue  # no server runs on read-only files
            named = bool(volume) and mount.get("Type") == "volume" and mount.get("Name") == volume
            if named or _overlap(str(mount.get("Source", "")), path):
                found.append(Mounter(container.get("Name", "").lstrip("/"), state,
                                     labels.get(COMPOSE_PROJECT, ""),
                                     volume if named else str(mount.get("Source"))))  # fmt: skip
                break
    return found


def _overlap(source: str, path: str) -> bool:
    """The same directory, or one inside the other."""
    if not source or not path:
        return False
    a, b = os.path.normpath(source), os.path.normpath(path)
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def containers() -> list[dict[str, Any]]:
    """`docker inspect` of every container on the engine."""
    ids = run(["docker", "ps", "-aq", "--no-trunc"], what="docker ps").split()
    if not ids:
        return []
    found = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True,
                           check=False)  # fmt: skip
    # a container removed between the two calls is simply not listed
    return list(json.loads(found.stdout or "[]"))


def volume_path(volume: str) -> str:
    """Where the engine keeps `volume`'s files (a bind mount of that path uses them too)."""
    return run(["docker", "volume", "inspect", "-f", "{{.Mountpoint}}", volume],
               what="docker volume inspect").strip()  # fmt: skip


def lock_problem(lock: Lock | None, host_dir: str, where: str) -> str | None:
    """What a postmaster.pid in the cluster (`where`, in `host_dir` on this machine) says when
    no container uses the files: a live server here, or a lock left over."""
    if lock is None:
        return None
    if os.path.normpath(lock.data_dir) == os.path.normpath(host_dir) and _alive(lock.pid):
        return (f"a PostgreSQL server on this machine (PID {lock.pid}) runs on {where}\n"
                f"→ stop it (`pg_ctl stop -D {host_dir}`) and run the upgrade again")  # fmt: skip
    return (
        f"{where} holds a postmaster.pid (PID {lock.pid}, data directory {lock.data_dir}) "
        "but no container here mounts it and no process here runs on it: it was left by a "
        "server that did not shut down cleanly, or a server on another machine uses the same "
        "files\n→ if no server anywhere uses them, start the old setup once and stop it "
        "cleanly (or delete the postmaster.pid), then run the upgrade again"
    )


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
