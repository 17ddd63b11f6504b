"""The production rehearsal tier: the real tasks on the real container, against a database of
application shape and size, while an application reads and writes.

One setting scales it: PGKURA_REHEARSAL_SIZE_MB (default 1024), the generated database's size;
the PostgreSQL 17 volume for db.upgrade is a quarter of it. Like the e2e tier it needs a Docker
engine (skips saying why, fails under CI=1), and reuses that tier's Project and engine
fixtures and the integration tier's S3 server."""

from __future__ import annotations

import dataclasses
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import INVOKE, with_examples
from tests.e2e.conftest import Project, engine  # noqa: F401 (a fixture)
from tests.e2e.test_upgrade import docker

from .data import generate_sql, psql
from .load import Load

SIZE_MB = int(os.environ.get("PGKURA_REHEARSAL_SIZE_MB", "1024"))
UPGRADE_MB = max(16, SIZE_MB // 4)
RESTARTED = "terminating any other active server processes"
SUMMARY: list[tuple[str, str, float, float, float]] = []  # step, size, s, peak RSS, silence


@dataclass(frozen=True)
class Ran:
    """One task run on a pseudo-terminal, as a person at a terminal runs it."""

    step: str
    returncode: int
    output: str  # stdout and stderr, as the terminal showed them
    seconds: float
    peak_rss_mib: float  # the largest process of the task's tree (invoke, docker client, ...)
    longest_silence: float  # seconds without a byte of output


def on_pty(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 1800) -> Ran:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    start = time.monotonic()
    # a person at a terminal: not CI's environment, where pgkura writes plain log lines
    person = {k: v for k, v in os.environ.items() if k != "CI"}
    proc = subprocess.Popen(
        argv, env={**person, "TERM": "xterm", **env}, cwd=cwd, stdin=slave, stdout=slave,
        stderr=slave, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    chunks: list[bytes] = []
    last = start
    silence = 0.0
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        now = time.monotonic()
        if now - start > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
        if not ready:
            continue
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every holder of the terminal is gone
            break
        if not data:
            break
        silence = max(silence, now - last)
        last = now
        chunks.append(data)
    os.close(master)
    _, status, usage = os.wait4(proc.pid, 0)
    end = time.monotonic()
    output = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    return Ran(
        step="",
        returncode=os.waitstatus_to_exitcode(status),
        output=output,
        seconds=end - start,
        peak_rss_mib=usage.ru_maxrss / 1024,
        longest_silence=max(silence, end - last),
    )


@dataclass
class Rehearsal:
    project: Project
    load: Load
    size: str  # the database's size, as pg_size_pretty says it
    identity: tuple[str, str] = ("", "")  # postmaster start time, container restart count
    runs: list[Ran] = field(default_factory=list)

    def server(self) -> tuple[str, str]:
        started = psql(self.project.container, "SELECT pg_postmaster_start_time()").strip()
        restarts = docker("inspect", "-f", "{{.RestartCount}}", self.project.container).strip()
        return started, restarts

    def run(self, step: str, *args: str, project: Project | None = None, size: str = "",
            **env: str) -> Ran:  # fmt: skip
        """`invoke ARGS` on a pseudo-terminal while the load runs; recorded for the summary."""
        proj = project or self.project
        self.load.step = step
        ran = on_pty([*INVOKE, *args], {**proj.env, **env}, proj.dir)
        ran = dataclasses.replace(ran, step=step)
        assert "e2e-Secret-pw" not in ran.output
        self.runs.append(ran)
        SUMMARY.append((step, size or self.size, ran.seconds, ran.peak_rss_mib,
                        ran.longest_silence))  # fmt: skip
        return ran

    def assert_server_unchanged(self) -> None:
        """The same postmaster, never restarted by Docker, never reinitialised after a crash,
        and its health check still on and passing."""
        assert self.server() == self.identity
        logs = subprocess.run(["docker", "logs", self.project.container], capture_output=True,
                              text=True, check=True)  # fmt: skip
        assert RESTARTED not in logs.stdout + logs.stderr
        health = docker("inspect", "-f", "{{.State.Health.Status}}", self.project.container)
        assert health.strip() == "healthy"


def timed(step: str, size: str, action: Callable[[], object]) -> float:
    """A step that is not a task (generating data), for the summary."""
    start = time.monotonic()
    action()
    seconds = time.monotonic() - start
    SUMMARY.append((step, size, seconds, 0.0, 0.0))
    return seconds


@pytest.fixture(scope="module")
def rehearsal(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:  # noqa: F811
    """The full image with db/ and the example schema, SIZE_MB of generated data, and the load
    running."""
    base = tmp_path_factory.mktemp("rehearsal")
    schema = with_examples(base / "examples")
    proj = Project(base, fixtures=schema, extensions="vector,pg_bigm")
    proj.env["PGKURA_IMAGE"] = "pgkura-postgres:e2e-full"
    try:
        proj.up_and_migrate()
        timed(f"generate {SIZE_MB} MB (SQL in the container)", "",
              lambda: psql(proj.container, generate_sql(SIZE_MB, bigm=True)))  # fmt: skip
        size = psql(proj.container, "SELECT pg_size_pretty(pg_database_size('app'))").strip()
        password = proj.env["POSTGRES_PASSWORD"]
        load = Load(f"postgresql://app:{password}@127.0.0.1:{proj.port}/app")
        load.start()
        run = Rehearsal(proj, load, size)
        run.identity = run.server()
        yield run
        load.stop()
    finally:
        gone = proj.invoke("db.down", "--volumes", "--yes", "--no-backup")
        assert gone.returncode == 0, gone.stderr


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not SUMMARY:
        return
    write = terminalreporter.write_line
    write("")
    write("| step | database | time | peak RSS | longest silence |")
    write("|---|---|---|---|---|")
    for step, size, seconds, rss, silence in SUMMARY:
        memory = f"{rss:.0f} MiB" if rss else "—"
        quiet = f"{silence:.1f} s" if rss else "—"
        write(f"| {step} | {size or '—'} | {seconds:.1f} s | {memory} | {quiet} |")
