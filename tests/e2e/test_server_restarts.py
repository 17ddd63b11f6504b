"""The server in its container survives orphans and a busy application database, and a crash
restart that does happen is told as one (issue 20: a restore crashed the server)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable

import psycopg
import pytest

from pgkura.engines.readiness import START_MARGIN
from tests.conftest import INVOKE

from .conftest import Project

pytestmark = pytest.mark.e2e
CRASH_LINE = "terminating any other active server processes"


@pytest.fixture(scope="module")
def running(project: Project) -> Project:
    up = project.invoke("db.up", "--build")
    assert up.returncode == 0, up.stderr
    return project


def wait_for(done: Callable[[], object], what: str) -> None:
    """Poll until `done()` is true; a generous bound only so that a broken build cannot hang
    the tier (no test depends on how long anything takes)."""
    for _ in range(1200):
        if done():
            return
        time.sleep(0.2)
    pytest.fail(f"gave up waiting for {what}")


def url(p: Project, dbname: str = "app") -> str:
    return f"postgresql://app:{p.env['POSTGRES_PASSWORD']}@127.0.0.1:{p.port}/{dbname}"


def in_container(p: Project, script: str) -> str:
    done = subprocess.run(["docker", "exec", p.container, "sh", "-c", script],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


def server_log(p: Project) -> str:
    done = subprocess.run(["docker", "logs", p.container], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return done.stdout + done.stderr


def checkpointer_started(conn: psycopg.Connection) -> object:
    """A crash restart starts every server process again but the postmaster (whose start
    time therefore stays the same): the checkpointer's start time is the witness."""
    row = conn.execute(
        "SELECT backend_start FROM pg_stat_activity WHERE backend_type = 'checkpointer'"
    ).fetchone()
    assert row is not None
    return row[0]


def test_an_orphan_that_exits_non_zero_does_not_restart_the_server(running):
    """What a health check killed at Docker's timeout leaves behind (docker-library/postgres
    #1349): with the postmaster as PID 1 it adopts the orphan and takes its exit status 2 for
    a crashed backend. docker-init (`init: true`) reaps it instead."""
    assert CRASH_LINE not in server_log(running)
    with psycopg.connect(url(running), autocommit=True) as session:
        before = checkpointer_started(session)
        orphan = in_container(running, "(sleep 2; exit 2) & echo $!; exit 0")
        gone = f"test -d /proc/{orphan} || echo reaped"
        wait_for(lambda: in_container(running, gone), "the orphan to be reaped")
        assert session.execute("SELECT 1").fetchone() == (1,)  # the session survived
        assert checkpointer_started(session) == before
    assert CRASH_LINE not in server_log(running)


def healthcheck(p: Project) -> tuple[str, float]:
    """The container's health check command and Docker's timeout for it, as Docker has them."""
    found = subprocess.run(
        ["docker", "inspect", "--format", "{{json .Config.Healthcheck}}", p.container],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    check = json.loads(found)
    assert check["Test"][0] == "CMD-SHELL"
    return check["Test"][1], check["Timeout"] / 1e9


def hold_app(p: Project) -> psycopg.Connection:
    """A session on the maintenance database holding the lock on app that a running
    `CREATE DATABASE ... TEMPLATE app` holds: new connections to app wait until it ends. Taken
    once sessions of earlier steps (a backup's pg_dump, a connection given up) are gone."""
    holder = psycopg.connect(url(p, "postgres"), autocommit=True)
    others = "SELECT 1 FROM pg_stat_activity WHERE datname = 'app' AND pid <> pg_backend_pid()"
    wait_for(lambda: not holder.execute(others).fetchone(), "app to have no sessions")
    holder.execute("BEGIN")
    holder.execute("ALTER DATABASE app RENAME TO app_held")  # rolled back, never committed
    return holder


def test_the_health_check_answers_while_the_application_database_is_held(running):
    """A restore's safety copy (CREATE DATABASE ... TEMPLATE app) locks app, and every new
    connection to app waits until the copy is done. The same lock held here: the health check
    must still answer, within Docker's timeout, that the server is up."""
    command, timeout_s = healthcheck(running)
    old_check = ["pg_isready", "-h", "127.0.0.1", "-t", "2", "-U", "app", "-d", "app"]
    with hold_app(running) as holder:
        # the check as it was (on app) gets no answer: the lock is real
        held = subprocess.run(["docker", "exec", running.container, *old_check], check=False,
                              capture_output=True)  # fmt: skip
        assert held.returncode == 2, held
        answered = subprocess.run(
            ["docker", "exec", running.container, "sh", "-c", command],
            capture_output=True, text=True, timeout=timeout_s, check=False,
        )  # fmt: skip
        holder.execute("ROLLBACK")
    assert answered.returncode == 0, answered.stdout + answered.stderr


def wait_for_old_enough_server(p: Project) -> None:
    """A crash restart is dated by a checkpointer younger than the postmaster by more than
    START_MARGIN (see pgkura.engines.readiness): wait until the server is that old (its own clock)."""
    old_enough = "SELECT now() > pg_postmaster_start_time() + %s"
    with psycopg.connect(url(p, "postgres"), autocommit=True) as conn:
        wait_for(lambda: conn.execute(old_enough, (START_MARGIN,)).fetchone()[0],
                 "the server to be older than START_MARGIN")  # fmt: skip


def test_a_crash_restart_during_a_restore_is_told_and_reported(running):
    """Issue 20 as it happened, with a backend killed (as the OOM killer would) where the
    orphan was: the restore says the server restarted, not 'start it with invoke db.up';
    db.doctor and db.ps report the crash restart afterwards."""
    backed_up = running.invoke("db.backup")
    assert backed_up.returncode == 0, backed_up.stderr
    wait_for_old_enough_server(running)
    holder = hold_app(running)  # the safety copy will wait
    restore = subprocess.Popen(
        [*INVOKE, "db.restore", "latest", "--yes"],
        env={**os.environ, **running.env}, cwd=running.dir,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        copying = (
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgkura admin' "
            "AND wait_event_type = 'Lock' AND query LIKE 'CREATE DATABASE%'"
        )
        # watched from outside: a transaction sees pg_stat_activity as it first looked
        with psycopg.connect(url(running, "postgres"), autocommit=True) as watcher:
            wait_for(lambda: restore.poll() is not None or watcher.execute(copying).fetchone(),
                     "the safety copy to wait on app")  # fmt: skip
        assert restore.poll() is None, restore.communicate()
        in_container(running, f"kill -9 {holder.info.backend_pid}")
        out, err = restore.communicate(timeout=300)
    finally:
        holder.close()
        if restore.poll() is None:
            restore.kill()
    assert restore.returncode == 1, out + err
    assert "the server ended this session mid-way" in err, err
    assert f"Container {running.container} is still running" in err
    assert "invoke db.logs" in err
    assert "start it with `invoke db.up`" not in err
    assert "safety backup" not in out + err  # no fallback to a server that went away
    assert CRASH_LINE in server_log(running)

    assert running.invoke("db.up").returncode == 0  # waits until it takes connections again
    doctor = running.invoke("db.doctor")
    assert "[WARN] restarts" in doctor.stdout, doctor.stdout
    assert "the server restarted after a crash at" in doctor.stdout
    ps = running.invoke("db.ps")
    assert ps.returncode == 0, ps.stderr
    assert "note: the server restarted after a crash at" in ps.stdout
