"""A server that restarts after a crash, or refuses connections for now: what tasks, db.doctor
and db.ps say about it. Each test has its own throwaway server: a crash restart drops every
session of the server, which the shared one must not see."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import psycopg
import pytest

from pgkura.clusters.throwaway import ThrowawayServer
from pgkura.config.settings import Settings, load_settings
from pgkura.connect.connection import ConnectionRefused, Refusal, connect, session_lost
from pgkura.engines.readiness import START_MARGIN, condition, last_crash_restart, ready
from pgkura.engines.server_lost import lost_server
from pgkura.inspection.doctor import diagnose


@pytest.fixture
def server() -> Iterator[ThrowawayServer]:
    with ThrowawayServer() as own:
        yield own


def settings_for(server: ThrowawayServer, tmp_path) -> Settings:
    return load_settings(tmp_path, {"DATABASE_URL": server.url("postgres")})


def crash(server: ThrowawayServer) -> psycopg.Error:
    """SIGKILL one backend, as the OOM killer would: PostgreSQL ends every other session and
    restarts its processes. The error an idle session opened before then meets."""
    with psycopg.connect(server.url(), autocommit=True) as conn:
        # a normal start forks the checkpointer within the margin; wait it out (server clock)
        while not conn.execute(
            "SELECT now() > pg_postmaster_start_time() + %s", (START_MARGIN,)
        ).fetchone()[0]:
            time.sleep(0.5)
        assert last_crash_restart(conn) is None
    idle = psycopg.connect(server.url(), autocommit=True)
    victim = psycopg.connect(server.url(), autocommit=True)
    os.kill(victim.info.backend_pid, signal.SIGKILL)
    try:
        for _ in range(600):  # the postmaster ends the other sessions once it reaps the victim
            try:
                idle.execute("SELECT 1")
            except psycopg.Error as exc:
                return exc
            time.sleep(0.1)
        pytest.fail("the server did not restart after a backend was killed")
    finally:
        idle.close()
        victim.close()


def test_a_crash_restart_is_told_as_such_and_doctor_and_ps_report_it(server, tmp_path):
    settings = settings_for(server, tmp_path)
    exc = crash(server)
    assert session_lost(exc) is not None
    message = lost_server(settings, exc)
    assert message is not None
    assert "ended this session mid-way" in message
    assert "log says why" in message
    assert "db.up" not in message
    ready(settings, timeout_ms=60_000)  # it recovers by itself
    found = {f.check: f for f in diagnose(settings)}
    assert found["restarts"].level == "warn", found["restarts"]
    assert "log shows why" in found["restarts"].detail
    note = condition(settings)
    assert note is not None
    assert "restarted after a crash" in note


def test_an_ordinary_database_error_is_not_a_lost_server(server, tmp_path):
    with (
        psycopg.connect(server.url(), autocommit=True) as conn,
        pytest.raises(psycopg.Error) as failed,
    ):
        conn.execute("SELECT 1/0")
    assert session_lost(failed.value) is None
    assert lost_server(settings_for(server, tmp_path), failed.value) is None
    found = {f.check: f for f in diagnose(settings_for(server, tmp_path))}
    assert found["restarts"].level == "ok"


def test_a_server_that_refuses_connections_for_now_is_not_sent_to_db_up(tmp_path):
    """A standby without hot standby answers every connection with SQLSTATE 57P03 for as long
    as it runs: the state of a server recovering after a crash, held still."""
    own = ThrowawayServer()
    try:
        own.start()
        own.cluster.stop()
        (own.cluster.data / "standby.signal").touch()
        own.cluster.start(own.port, "-c hot_standby=off")
        # the project's container as the tasks see it (its name: one no container has)
        env = {"POSTGRES_PORT": str(own.port), "POSTGRES_USER": own.user,
               "POSTGRES_DB": "postgres", "POSTGRES_PASSWORD": own.password,
               "PGKURA_CONTAINER": f"pgkura-test-{own.port}"}  # fmt: skip
        settings = load_settings(tmp_path, env)
        assert settings.target.is_container
        with pytest.raises(ConnectionRefused) as refused:
            connect(settings.target)
        assert refused.value.refusal is Refusal.NOT_NOW
        assert "db.up" not in str(refused.value)
        assert "57P03" in str(refused.value)
        assert "`invoke db.logs` says which" in str(refused.value)
        assert "accepts no connections now" in (condition(settings) or "")
    finally:
        own.stop()


def test_a_role_that_cannot_see_background_processes_gets_no_verdict(server, tmp_path):
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute("CREATE ROLE plain LOGIN PASSWORD 'plain-pw'")
    url = f"postgresql://plain:plain-pw@127.0.0.1:{server.port}/postgres"
    found = {f.check: f for f in diagnose(load_settings(tmp_path, {"DATABASE_URL": url}))}
    assert found["restarts"].level == "skip"
    assert "pg_read_all_stats" in found["restarts"].detail
