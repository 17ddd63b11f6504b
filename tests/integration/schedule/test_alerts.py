"""db.backup pings a monitoring URL (healthchecks.io's shape) on a real local HTTP listener:
failures always, start and success when asked; the URL's token is never printed."""

from __future__ import annotations

from pathlib import Path

from pgkura.clusters.throwaway import bin_dir
from tests.conftest import TOKEN, run_invoke


def _env(pg_server, database: str, tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    return {
        "PGKURA_ENV_FILE": str(tmp_path / ".env"),
        "DATABASE_URL": pg_server.url(database),
        "PGKURA_PG_BIN": str(bin_dir()),
        "PGKURA_BACKUP_DIR": str(tmp_path / "backups"),
        "PGKURA_ALERT_URL": url,
        **extra,
    }


def test_start_and_success_are_pinged_when_asked(pg_server, database, tmp_path, monitor):
    url, pings = monitor
    env = _env(pg_server, database, tmp_path, url, PGKURA_ALERT_SUCCESS="true")
    result = run_invoke("db.backup", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [path for path, _ in pings] == [f"/ping/{TOKEN}/start", f"/ping/{TOKEN}"]
    assert pings[1][1] == "db.backup succeeded"
    assert TOKEN not in result.stdout + result.stderr


def test_a_failure_is_pinged_with_its_message_and_no_secret(pg_server, database, tmp_path, monitor):
    url, pings = monitor
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = _env(pg_server, database, tmp_path, url, PGKURA_BACKUP_DIR=str(blocker))
    result = run_invoke("db.backup", env=env, cwd=tmp_path)
    assert result.returncode == 1
    ((path, body),) = pings  # failures only by default: no start ping
    assert path == f"/ping/{TOKEN}/fail"
    assert body.startswith("db.backup failed: cannot write backups to")
    assert pg_server.password not in body
    assert TOKEN not in result.stdout + result.stderr


def test_an_unreachable_monitor_is_a_warning_not_a_lost_backup(pg_server, database, tmp_path):
    url = f"http://127.0.0.1:9/ping/{TOKEN}"  # the discard port: nothing listens
    env = _env(pg_server, database, tmp_path, url, PGKURA_ALERT_SUCCESS="yes")
    result = run_invoke("db.backup", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning: the alert ping to PGKURA_ALERT_URL/start failed" in result.stderr
    assert list((tmp_path / "backups").glob("*.sql.gz"))
    assert TOKEN not in result.stdout + result.stderr


def test_a_malformed_alert_url_is_refused_without_echoing_it(tmp_path):
    env = {"PGKURA_ENV_FILE": str(tmp_path / ".env"), "PGKURA_ALERT_URL": f"hc-ping {TOKEN}"}
    result = run_invoke("db.backup", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "PGKURA_ALERT_URL from the environment is invalid" in result.stderr
    assert TOKEN not in result.stdout + result.stderr
