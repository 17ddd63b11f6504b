"""Running `invoke db.schedule --run` in tests of both tiers: start, wait, read its record, stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import INVOKE


@pytest.fixture
def runners() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `db.schedule --run` processes; any still running at the end are stopped."""
    started: list[subprocess.Popen[str]] = []

    def start(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [*INVOKE, "db.schedule", "--run"], env={**os.environ, **env}, cwd=cwd,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def state(env: dict[str, str]) -> dict:
    path = Path(env["PGKURA_BACKUP_DIR"]) / ".pgkura-schedule.json"
    return json.loads(path.read_text()) if path.exists() else {}


def wait_for(check: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            pytest.fail(f"the runner ended: {proc.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the scheduler")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    return out
