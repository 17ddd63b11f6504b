"""Backups and restores through `docker exec` and a one-off container, on a real engine."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from pgkura.backups.take import BACKUP_LOCK
from tests.conftest import INVOKE
from tests.scheduling import state, stop, wait_for

from .conftest import Project

pytestmark = pytest.mark.e2e
OLD_CLIENT = Path("/usr/lib/postgresql/15/bin")


def backup_path(output: str) -> Path:
    match = re.search(r"^backup: (\S+\.sql\.gz) ", output, re.MULTILINE)
    assert match, output
    return Path(match.group(1))


@pytest.fixture(scope="module")
def running(project: Project) -> Project:
    project.env["PGKURA_BACKUP_DIR"] = str(project.dir / "backups")
    up = project.invoke("db.up", "--build")
    assert up.returncode == 0, up.stderr
    migrated = project.invoke("db.migrate")
    assert migrated.returncode == 0, migrated.stderr
    project.sql(
        "INSERT INTO notes (content, embedding) SELECT '日本語のメモ ' || g, ARRAY[g, 1, 2]::vector "
        "FROM generate_series(1, 2000) g"
    )
    return project


def test_backup_through_docker_exec_and_restore(running: Project):
    result = running.invoke("db.backup")
    assert result.returncode == 0, result.stderr
    assert f"container {running.container}" in result.stdout
    path = backup_path(result.stdout)
    assert path.stat().st_mode & 0o777 == 0o600
    running.sql("DELETE FROM notes WHERE id > 100")
    restored = running.invoke("db.restore", "latest", "--yes")
    assert restored.returncode == 0, restored.stderr
    assert "2000" in running.sql("SELECT count(*) FROM notes")
    assert "the previous contents are in" in restored.stdout


def test_the_quick_paths_record_versions_and_fall_back_when_they_cannot_connect(running: Project):
    """A backup and a --no-safety-backup restore of the running container use its own tools
    without connecting from the host first: the manifest's versions come from pg_dump's header,
    and a dump or psql that cannot connect falls back to the careful path and its errors."""
    path = backup_path(running.invoke("db.backup").stdout)
    manifest = json.loads(path.with_name(path.name + ".json").read_text())
    shown = re.search(r"^\s*(\d+\.\d+)", running.sql("SHOW server_version"), re.MULTILINE)
    assert shown, "no version in SHOW server_version"
    version = shown[1]  # 18.6 of "18.6 (Debian 18.6-3)"
    assert manifest["server_version"] == version
    assert manifest["dump_tool"] == f"pg_dump {version}"
    assert manifest["database_size"] > 0  # asked through the container's psql: progress's total
    missing = running.invoke("db.backup", POSTGRES_DB="no_such_db")
    assert missing.returncode == 1
    assert 'database "no_such_db" does not exist' in missing.stderr
    assert "Traceback" not in missing.stderr
    restored = running.invoke("db.restore", str(path), "--yes", "--no-safety-backup")
    assert restored.returncode == 0, restored.stderr
    assert "safety" not in restored.stdout
    elsewhere = running.invoke(
        "db.restore", str(path), "--database", "no_such_db", "--yes", "--no-safety-backup"
    )
    assert elsewhere.returncode == 1
    assert "database no_such_db does not exist; pass --create to create it" in elsewhere.stderr


def test_verify_with_a_restore_test(running: Project):
    path = backup_path(running.invoke("db.backup").stdout)
    result = running.invoke("db.verify", str(path), "--restore-test")
    assert result.returncode == 0, result.stderr
    assert "restore test: 2 tables, 2003 rows" in result.stdout  # notes + schema_migrations


def test_database_url_with_old_host_tools_uses_a_one_off_container(running: Project):
    if not (OLD_CLIENT / "pg_dump").exists():
        pytest.skip("needs an older PostgreSQL client (Debian's postgresql-client-15)")
    url = f"postgresql://app:{running.env['POSTGRES_PASSWORD']}@127.0.0.1:{running.port}/app"
    remote = {"DATABASE_URL": url, "PGKURA_PG_BIN": str(OLD_CLIENT)}
    result = running.invoke("db.backup", **remote)
    assert result.returncode == 0, result.stderr
    assert "one-off container pgkura-postgres:e2e" in result.stdout
    assert "older than the server" in result.stderr
    running.sql("DELETE FROM notes")
    restored = running.invoke("db.restore", str(backup_path(result.stdout)), "--yes", **remote)
    assert restored.returncode == 0, restored.stderr
    assert "2000" in running.sql("SELECT count(*) FROM notes")


def test_migrate_with_backup_takes_one_when_something_is_pending(running: Project, tmp_path):
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    for f in Path(running.env["PGKURA_MIGRATIONS_DIR"]).iterdir():
        (migrations / f.name).write_bytes(f.read_bytes())
    (migrations / "004_add_notes_color.sql").write_text(
        "ALTER TABLE notes ADD COLUMN color text;\n"
    )
    result = running.invoke("db.migrate", "--backup", PGKURA_MIGRATIONS_DIR=str(migrations))
    assert result.returncode == 0, result.stderr
    assert backup_path(result.stdout).exists()
    assert "applied 004_add_notes_color.sql" in result.stdout


def test_down_with_volumes_backs_up_first(running: Project):
    result = running.invoke("db.down", "--volumes", "--yes")
    assert result.returncode == 0, result.stderr
    saved = backup_path(result.stdout)
    assert running.invoke("db.up").returncode == 0
    assert running.invoke("db.restore", str(saved), "--yes").returncode == 0
    assert "2000" in running.sql("SELECT count(*) FROM notes")


def test_schema_snapshot_and_drift_on_the_container(running: Project, tmp_path):
    import shutil

    from tests.e2e.conftest import FIXTURES

    shutil.copytree(FIXTURES, tmp_path / "schema")
    env = {"PGKURA_MIGRATIONS_DIR": str(tmp_path / "schema" / "migrations")}
    (tmp_path / "schema" / "schema.sql").unlink()
    dumped = running.invoke("db.dump-schema", **env)
    assert dumped.returncode == 0, dumped.stderr
    # the container's pg_dump builds the same bytes as the throwaway server's
    assert (tmp_path / "schema" / "schema.sql").read_text() == (FIXTURES / "schema.sql").read_text()
    checked = running.invoke("db.check-migrations", "--on-target", **env)
    assert checked.returncode == 0, checked.stderr
    assert "scratch database pgkura_scratch_" in checked.stderr
    running.sql("ALTER TABLE notes DROP COLUMN IF EXISTS color")  # from the --backup test above
    clean = running.invoke("db.drift", **env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    running.sql("CREATE INDEX notes_by_hand ON notes (content)")
    drifted = running.invoke("db.drift", **env)
    assert drifted.returncode == 1
    assert "+ INDEX public.notes_by_hand" in drifted.stdout
    running.sql("DROP INDEX notes_by_hand")


def test_ctrl_c_stops_the_dump_inside_the_container(running: Project):
    """Ctrl-C reaches invoke and the docker client, not pg_dump inside the container: pgkura
    must end the dump's server session itself and leave no partial file."""
    url = f"postgresql://app:{running.env['POSTGRES_PASSWORD']}@127.0.0.1:{running.port}/app"
    backups = Path(running.env["PGKURA_BACKUP_DIR"])

    def files() -> list[Path]:  # hidden ones too, but for the directory's lock file
        return sorted(p for p in backups.glob("*") if p.name != BACKUP_LOCK)

    before = files()
    with psycopg.connect(url) as blocker:
        blocker.execute("LOCK TABLE notes IN ACCESS EXCLUSIVE MODE")  # pg_dump waits behind it
        proc = subprocess.Popen(
            [*INVOKE, "db.backup"],
            env={**os.environ, **running.env},
            cwd=running.dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, like a job in a terminal
        )
        with psycopg.connect(url, autocommit=True) as watcher:
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgkura pg_dump %'"
            for _ in range(600):
                if watcher.execute(waiting).fetchone() == (1,):
                    break
                time.sleep(0.1)
            else:
                pytest.fail("pg_dump never started: " + proc.communicate(timeout=30)[1])
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
            _, stderr = proc.communicate(timeout=60)
            assert proc.returncode == 130, stderr
            assert "interrupted" in stderr
            assert watcher.execute(waiting).fetchone() == (0,)
        blocker.rollback()
    top = subprocess.run(
        ["docker", "top", running.container], capture_output=True, text=True, check=True
    ).stdout
    assert "pg_dump" not in top
    assert files() == before  # no partial or temporary file left behind


def test_scheduled_backups_of_the_container_alert_when_it_is_down(
    running: Project, monitor, runners
):
    """A short schedule against the container: a run while it is stopped fails and pings the
    monitor; once it is back, the next run succeeds. (The runner's other behaviours, catch-up
    included, are in tests/integration/schedule/test_scheduler.py.)"""
    alert_url, pings = monitor
    env = {**running.env, "PGKURA_BACKUP_SCHEDULE": "every 2s", "PGKURA_ALERT_URL": alert_url,
           "PGKURA_CONNECT_WAIT": "1s"}  # fmt: skip
    runner = runners(env, running.dir)
    try:
        wait_for(lambda: state(env).get("jobs", {}).get("backup", {}).get("exit_code") == 0, runner)
        subprocess.run(["docker", "stop", running.container], check=True, capture_output=True)
        wait_for(lambda: state(env)["jobs"]["backup"]["exit_code"] != 0, runner)
        failed = state(env)["jobs"]["backup"]
        assert f"container {running.container} is exited" in failed["summary"]
        assert any(path.endswith("/fail") and "db.backup failed" in body for path, body in pings)
        assert running.invoke("db.up").returncode == 0
        wait_for(lambda: state(env)["jobs"]["backup"]["exit_code"] == 0, runner)
    finally:
        stop(runner)


def test_inspect_and_sqlite_import_on_the_container(running: Project, tmp_path):
    """Both work through the container's published port, and inspect adds the engine's view."""
    source = tmp_path / "legacy.db"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE memo (id INTEGER PRIMARY KEY, body TEXT, done BOOLEAN)")
        conn.executemany("INSERT INTO memo (body, done) VALUES (?, ?)",
                         [("買い物", 0), ("掃除", 1)])  # fmt: skip
    conn.close()
    imported = running.invoke("db.import-sqlite", str(source), "--schema", "legacy")
    assert imported.returncode == 0, imported.stderr
    assert "imported 1 tables, 2 rows into legacy" in imported.stdout
    assert "掃除" in running.sql("SELECT body FROM legacy.memo WHERE done")
    shown = running.invoke("db.inspect")
    assert shown.returncode == 0, shown.stderr
    assert "== container" in shown.stdout
    assert "CPUPerc" in shown.stdout
    assert "MemUsage" in shown.stdout


def test_a_scheduled_run_missed_while_the_runner_was_stopped_runs_at_once(
    running: Project, runners
):
    """Hourly backups whose last slot was served yesterday: the runner runs one now."""
    env = {**running.env, "PGKURA_BACKUP_SCHEDULE": "hourly",
           "PGKURA_BACKUP_DIR": str(running.dir / "missed")}  # fmt: skip
    directory = running.dir / "missed"
    directory.mkdir()
    old = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    (directory / ".pgkura-schedule.json").write_text(
        json.dumps({"jobs": {"backup": {"slot": old.isoformat(), "exit_code": 0}}})
    )
    runner = runners(env, running.dir)
    try:
        wait_for(lambda: state(env)["jobs"]["backup"]["slot"] != old.isoformat(), runner)
        assert state(env)["jobs"]["backup"]["exit_code"] == 0
        assert len(list(directory.glob("*.sql.gz"))) == 1
    finally:
        stop(runner)
