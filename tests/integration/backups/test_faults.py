"""Faults during long tasks, with nothing lost: a restore killed outright or interrupted half
way leaves the database exactly as it was, and a backup that fills its disk leaves no partial
file and says so in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from pgkura.backups.take import take_backup
from pgkura.clusters.throwaway import bin_dir
from pgkura.config.settings import load_settings
from tests.conftest import INVOKE, small_disk

ROWS = "SELECT count(*), md5(string_agg(body, ',' ORDER BY id)) FROM docs"


@pytest.fixture
def env(pg_server, database, tmp_path) -> dict[str, str]:
    with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
        conn.execute("CREATE TABLE docs (id int PRIMARY KEY, body text);"
                     "INSERT INTO docs SELECT g, '本文 ' || g FROM generate_series(1, 5000) g")  # fmt: skip
    return {
        "DATABASE_URL": pg_server.url(database),
        "PGKURA_PG_BIN": str(bin_dir()),
        "PGKURA_BACKUP_DIR": str(tmp_path / "backups"),
        "PGKURA_ENV_FILE": str(tmp_path / ".env"),
    }


def _start(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*INVOKE, *args], env={**os.environ, **env}, cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, like a job in a terminal
    )  # fmt: skip


def _restore_waiting(conn: psycopg.Connection) -> bool:
    """The restore's psql session is queued behind the lock the test holds."""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'psql'"
        " AND wait_event_type = 'Lock'"
    ).fetchone()
    return row == (1,)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_a_restore_killed_or_interrupted_half_way_changes_nothing(env, tmp_path, how):
    settings = load_settings(tmp_path, env)
    backup = take_backup(settings, log=lambda _m: None).path
    url = env["DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE docs SET body = body || ' 変更' WHERE id % 7 = 0")
        before = conn.execute(ROWS).fetchone()
    with psycopg.connect(url) as blocker, psycopg.connect(url, autocommit=True) as watcher:
        blocker.execute("SELECT 1 FROM docs LIMIT 1")  # holds a lock the restore's DROP needs
        proc = _start(env, tmp_path, "db.restore", str(backup), "--yes", "--no-safety-backup")
        for _ in range(600):
            if _restore_waiting(watcher) or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, how)
        _, stderr = proc.communicate(timeout=60)
        blocker.rollback()
        if how == signal.SIGINT:
            assert proc.returncode == 130, stderr
            assert "interrupted" in stderr
            assert "Traceback" not in stderr
        for _ in range(100):  # the server notices the lost client and rolls back
            if not _restore_waiting(watcher):
                break
            time.sleep(0.1)
        assert watcher.execute(ROWS).fetchone() == before
        assert not _restore_waiting(watcher)


def test_a_backup_that_fills_its_disk_leaves_no_partial_file(env, tmp_path):
    with small_disk(tmp_path / "small", "64k") as small:
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("INSERT INTO docs SELECT g, md5(g::text) || repeat('x', 200)"
                         " FROM generate_series(5001, 20000) g")  # fmt: skip
        result = subprocess.run(
            [*INVOKE, "db.backup"], env={**os.environ, **env, "PGKURA_BACKUP_DIR": str(small)},
            cwd=tmp_path, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
            timeout=300,
        )  # fmt: skip
        left = sorted(p.name for p in small.iterdir())
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "No space left on device; the partial file was removed" in errors[0], errors
    assert "PGKURA_BACKUP_DIR" in errors[0]
    assert [name for name in left if not name.startswith(".pgkura")] == [], left
