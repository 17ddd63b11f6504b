"""Shared helpers for every tier."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

pytest_plugins = ["tests.scheduling"]  # the `runners` fixture, for both tiers

ROOT = Path(__file__).resolve().parent.parent
INVOKE = [sys.executable, "-m", "invoke", "--search-root", str(ROOT)]


def run_invoke(
    *args: str, env: dict[str, str], cwd: Path, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """`invoke ARGS` as a person in a non-interactive shell runs it (stdin closed)."""
    return subprocess.run(
        [*INVOKE, *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=timeout,
    )


def _untracked() -> set[str]:
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--others", "--exclude-standard", "-z"],
        capture_output=True,
        text=True,
        check=False,
    )
    return set(listed.stdout.split("\0")) if listed.returncode == 0 else set()


@pytest.fixture(scope="session", autouse=True)
def _repository_left_clean():
    """Tests write into their tmp_path, never into the checkout (a relative setting resolves
    against the project: one test once committed its backups that way)."""
    before = _untracked()
    yield
    strays = sorted(_untracked() - before)
    assert not strays, f"tests left files in the repository: {strays}"


@pytest.fixture
def write_migration(tmp_path: Path):
    """write_migration("001_name.sql", "SQL") -> path, in tmp_path/migrations."""
    directory = tmp_path / "migrations"
    directory.mkdir(exist_ok=True)

    def write(name: str, text: str, *, newline: str = "\n", bom: bool = False) -> Path:
        path = directory / name
        data = ("\ufeff" if bom else "") + text.replace("\n", newline)
        path.write_bytes(data.encode("utf-8"))
        return path

    write.directory = directory  # type: ignore[attr-defined]
    return write


TOKEN = "0f5c4b1e-secret-check-token"  # a monitoring check's secret, never to be printed


class _Recorder(http.server.BaseHTTPRequestHandler):
    pings: ClassVar[list[tuple[str, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.pings.append((self.path, body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def monitor() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.pings = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ping/{TOKEN}", _Recorder.pings
    server.shutdown()
