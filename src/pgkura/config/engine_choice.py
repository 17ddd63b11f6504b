"""Which engine runs the database when PGKURA_ENGINE is not set.

Production is always Docker: a server never switches engines by itself. In development the
engine this project already runs on (remembered by `db.up`), else Docker when an engine answers,
else the embedded engine, so that "Run it" works on any machine with Python. The choice is
remembered because switching later would leave the data behind on the other engine."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

ENGINES = ("docker", "embedded")
RECORD = Path(".pgkura") / "engine"  # under the project root, ignored by git
EMBEDDED_NOTE = (
    "no Docker engine reachable here: running on the embedded engine (PostgreSQL 18 from a Python "
    "wheel, in PGKURA_EMBEDDED_DIR); set PGKURA_ENGINE=docker to use Docker instead"
)


def choose(root: Path, environment: str, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """(engine, the line to tell the user, or None when there is nothing to tell)."""
    if environment == "production":
        return "docker", None
    recorded = recorded_engine(root)
    if recorded:
        return recorded, None
    if docker_reachable(environ):
        return "docker", None
    return "embedded", EMBEDDED_NOTE


def recorded_engine(root: Path) -> str | None:
    with contextlib.suppress(OSError, UnicodeDecodeError):
        text = (root / RECORD).read_text().strip()
        return text if text in ENGINES else None
    return None


def remember(root: Path, engine: str) -> None:
    """Keep the automatic choice: the data now lives on this engine."""
    path = root / RECORD
    if recorded_engine(root) != engine:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(engine + "\n")


def docker_reachable(environ: Mapping[str, str]) -> bool:
    """Whether a Docker engine answers. The default socket is tried directly (a connect costs
    far less than starting the docker CLI); other hosts and contexts ask the CLI."""
    if shutil.which("docker", path=environ.get("PATH")) is None:
        return False
    if (
        not environ.get("DOCKER_HOST")
        and not environ.get("DOCKER_CONTEXT")
        and not _context(environ)
    ):
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect("/var/run/docker.sock")
            except PermissionError:
                return True  # an engine is there; the docker task will say how to reach it
            except OSError:
                return False
            return True
    try:
        answered = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True, check=False, timeout=10, env=dict(environ),
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return answered.returncode == 0


def _context(environ: Mapping[str, str]) -> str:
    """The docker CLI's current context when it is not the default (Docker Desktop, colima)."""
    base = environ.get("DOCKER_CONFIG") or str(
        Path(environ.get("HOME", "~")).expanduser() / ".docker"
    )
    with contextlib.suppress(OSError, ValueError):
        current = json.loads((Path(base) / "config.json").read_text()).get("currentContext", "")
        return "" if current in ("", "default") else str(current)
    return ""
