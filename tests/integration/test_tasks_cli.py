"""The invoke tasks as a person or CI runs them: exit codes, messages, no tracebacks."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import run_invoke


def invoke(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_invoke(*args, env={"PGKURA_ENV_FILE": str(cwd / ".env"), **env}, cwd=cwd)


def test_migrate_status_rollback_through_invoke(pg_server, database, write_migration, tmp_path):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    write_migration("001_a.down.sql", "DROP TABLE a;")
    env = {
        "DATABASE_URL": pg_server.url(database),
        "PGKURA_MIGRATIONS_DIR": str(write_migration.directory),
    }
    status = invoke("db.status", "--check", env=env, cwd=tmp_path)
    assert status.returncode == 3, status.stderr
    assert "pending" in status.stdout
    migrate = invoke("db.migrate", env=env, cwd=tmp_path)
    assert migrate.returncode == 0, migrate.stderr
    assert "applied 001_a.sql" in migrate.stdout
    assert pg_server.password not in migrate.stdout + migrate.stderr
    assert "postgresql://postgres:***@127.0.0.1" in migrate.stderr
    assert invoke("db.status", "--check", env=env, cwd=tmp_path).returncode == 0

    refused = invoke("db.rollback", env=env, cwd=tmp_path)
    assert refused.returncode == 1
    assert "without confirmation in a non-interactive run; pass --yes" in refused.stderr
    assert "Traceback" not in refused.stderr
    done = invoke("db.rollback", "--yes", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "rolled back 001_a" in done.stdout


def test_bad_setting_is_one_line_not_a_traceback(tmp_path):
    (tmp_path / ".env").write_text("POSTGRES_PORT=fifty\n")
    result = invoke("db.status", env={}, cwd=tmp_path)
    assert result.returncode == 1
    assert "POSTGRES_PORT='fifty'" in result.stderr
    assert "Traceback" not in result.stderr


def test_new_creates_the_next_file(tmp_path):
    env = {"PGKURA_MIGRATIONS_DIR": str(tmp_path / "m")}
    result = invoke("db.new", "add users", "--down", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "001_add_users.down.sql",
        "001_add_users.sql",
    ]
