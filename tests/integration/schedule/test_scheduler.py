"""The scheduler runs for real: `invoke db.schedule --run` as a process, backups and restore
drills on a short interval against a real server, a run missed while it was stopped caught up
at once, a failing run alerting a local HTTP listener, one runner per directory, SIGTERM
stopping it between runs, and what `db.schedule`, `db.backups` and `db.doctor` show."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from pgkura.clusters.throwaway import bin_dir
from tests.conftest import TOKEN, run_invoke
from tests.scheduling import state, stop, wait_for


def finished(env: dict[str, str], job: str) -> bool:
    """Whether a run of `job` is recorded as done (a run is recorded as started first)."""
    return "exit_code" in state(env).get("jobs", {}).get(job, {})


@pytest.fixture
def env(pg_server, database, tmp_path) -> dict[str, str]:
    return {
        "PGKURA_ENV_FILE": str(tmp_path / ".env"),
        "DATABASE_URL": pg_server.url(database),
        "PGKURA_PG_BIN": str(bin_dir()),
        "PGKURA_BACKUP_DIR": str(tmp_path / "backups"),
        "PGKURA_BACKUP_KEEP": "3",
    }


def test_backups_and_drills_run_on_schedule_and_are_visible(env, tmp_path, runners):
    env = {**env, "PGKURA_BACKUP_SCHEDULE": "every 2s", "PGKURA_DRILL_SCHEDULE": "every 3s"}
    runner = runners(env, tmp_path)

    def both_ran_recently() -> bool:
        jobs = state(env).get("jobs", {})
        recent = datetime.now(UTC) - timedelta(seconds=4)
        served = [datetime.fromisoformat(jobs[j]["slot"]) for j in ("backup", "drill")
                  if "slot" in jobs.get(j, {})]  # fmt: skip
        backups = list((tmp_path / "backups").glob("*.sql.gz"))
        return len(served) == 2 and min(served) > recent and len(backups) >= 2

    wait_for(both_ran_recently, runner)
    jobs = state(env)["jobs"]
    assert jobs["backup"]["exit_code"] == 0, jobs["backup"]["output"]
    assert jobs["backup"]["summary"].startswith("backup: ")
    assert jobs["drill"]["exit_code"] == 0, jobs["drill"]["output"]
    assert jobs["drill"]["summary"].startswith("restore test: ")
    backups = list((tmp_path / "backups").glob("*.sql.gz"))
    assert 2 <= len(backups) <= 3  # the retention policy applies to scheduled backups too
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in backups)

    shown = run_invoke("db.schedule", env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "backup: every 2s; last run" in shown.stdout
    assert "drill: every 3s; last run" in shown.stdout
    assert "runner: active" in shown.stdout
    listed = run_invoke("db.backups", env=env, cwd=tmp_path)
    assert "last restore drill: " in listed.stdout
    assert "ok — restore test: " in listed.stdout

    second = run_invoke("db.schedule", "--run", env=env, cwd=tmp_path)
    assert second.returncode == 1
    assert f"another scheduler (pid {runner.pid}) already runs the jobs" in second.stderr

    assert "stopped" in stop(runner)
    time.sleep(3.5)  # a slot of each job passes with no runner
    idle = run_invoke("db.schedule", env=env, cwd=tmp_path)
    assert "runner: NOT running" in idle.stdout
    assert "MISSED" in idle.stdout
    doctor = run_invoke("db.doctor", env=env, cwd=tmp_path)
    assert "no runner is active: scheduled jobs will not run" in doctor.stdout


def test_a_run_missed_while_stopped_is_caught_up_at_once(env, tmp_path, runners):
    """Hourly backups, the last one served yesterday: the runner runs one now, not in an hour,
    and only one (the missed slots cannot be taken in the past)."""
    env = {**env, "PGKURA_BACKUP_SCHEDULE": "hourly"}
    backups = tmp_path / "backups"
    backups.mkdir()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    (backups / ".pgkura-schedule.json").write_text(
        json.dumps({"jobs": {"backup": {"slot": yesterday.isoformat(), "exit_code": 0}}})
    )
    started = datetime.now(UTC)
    runner = runners(env, tmp_path)
    wait_for(lambda: state(env)["jobs"]["backup"]["slot"] != yesterday.isoformat(), runner)
    run = state(env)["jobs"]["backup"]
    assert datetime.fromisoformat(run["started_at"]) - started < timedelta(seconds=30)
    assert run["slot"] == datetime.now(UTC).replace(minute=0, second=0, microsecond=0).isoformat()
    time.sleep(2)
    assert len(list(backups.glob("*.sql.gz"))) == 1
    stop(runner)


def test_a_failing_run_alerts_and_is_recorded(env, tmp_path, runners, monitor):
    alert_url, pings = monitor
    env = {**env, "PGKURA_BACKUP_SCHEDULE": "hourly", "PGKURA_ALERT_URL": alert_url,
           "DATABASE_URL": "postgresql://app:pw@127.0.0.1:9/app", "PGKURA_CONNECT_WAIT": "1s"}  # fmt: skip
    runner = runners(env, tmp_path)
    wait_for(lambda: finished(env, "backup"), runner)
    run = state(env)["jobs"]["backup"]
    assert run["exit_code"] == 1
    assert run["outcome"] == "failed (exit 1)"
    # what the child wrote as its result: the error, not its first line ("backing up …")
    errors = [line for line in run["output"].splitlines() if line.startswith("error: ")]
    assert run["summary"].startswith(errors[-1])
    wait_for(lambda: finished(env, "size snapshot"), runner)
    # the backup pings by itself; the size snapshot after it fails too, reported by the runner
    assert sorted(body.split(":")[0] for _, body in pings) == [
        "db.backup failed",
        "scheduled size snapshot failed",
    ]
    assert all(path == f"/ping/{TOKEN}/fail" for path, _ in pings)
    shown = run_invoke("db.schedule", env=env, cwd=tmp_path)
    assert "failed (exit 1) — error: " in shown.stdout
    assert TOKEN not in shown.stdout + shown.stderr + stop(runner)


def test_a_failing_restore_drill_alerts_through_the_runner(env, tmp_path, runners, monitor):
    """db.verify does not ping by itself: the runner sends the drill's failure (no backups to
    restore yet, here), and never a success ping that would reset the backups' dead-man timer."""
    alert_url, pings = monitor
    env = {**env, "PGKURA_DRILL_SCHEDULE": "hourly", "PGKURA_ALERT_URL": alert_url,
           "PGKURA_ALERT_SUCCESS": "true"}  # fmt: skip
    runner = runners(env, tmp_path)
    wait_for(lambda: finished(env, "drill"), runner)
    stop(runner)
    assert state(env)["jobs"]["drill"]["exit_code"] == 1
    ((path, body),) = pings
    assert path == f"/ping/{TOKEN}/fail"
    assert body.startswith("scheduled drill failed: error: no backups of database")


def test_the_systemd_service_keeps_the_runner_going(env, tmp_path):
    units = tmp_path / "units"
    made = run_invoke("db.schedule", "--install", "--unit-dir", str(units), env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    (unit,) = units.glob("pgkura-*-scheduler.service")
    text = unit.read_text()
    assert "db.schedule --run" in text
    assert "Restart=always" in text
    assert "KillMode=mixed" in text  # SIGTERM to the runner alone: it hands the job SIGINT
    assert "WantedBy=multi-user.target" in text
    assert "\nUser=" in text  # a system service does not run as root by default
    assert "systemctl daemon-reload; systemctl enable --now" in made.stdout
    if shutil.which("systemd-analyze"):
        checked = subprocess.run(
            ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stderr
    gone = run_invoke("db.schedule", "--remove", "--unit-dir", str(units), env=env, cwd=tmp_path)
    assert gone.returncode == 0, gone.stderr
    assert not unit.exists()


def _this_hour() -> str:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0).isoformat()


def test_a_run_cut_off_by_the_runner_s_stop_runs_again_when_it_is_back(
    env, tmp_path, runners, pg_server, database, monitor
):
    """A restart (SIGTERM) while a backup runs: the slot is not served and the run is recorded
    as unfinished; the next runner runs it at once, and once. No false alarm is sent."""
    alert_url, pings = monitor
    env = {**env, "PGKURA_BACKUP_SCHEDULE": "hourly", "PGKURA_ALERT_URL": alert_url}
    url = pg_server.url(database)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE held (v int)")
    with psycopg.connect(url) as holder:  # pg_dump waits for this lock: the backup is running
        holder.execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
        runner = runners(env, tmp_path)

        def dump_waits() -> bool:
            with psycopg.connect(url) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                ).fetchone()
            return row == (1,)

        wait_for(dump_waits, runner)
        said = stop(runner)
        holder.rollback()
    assert "cut off by the runner's stop; it runs again when the runner is back" in said
    record = state(env)["jobs"]["backup"]
    assert "slot" not in record  # not served
    assert record["unfinished"]["slot"] == _this_hour()
    assert record["unfinished"]["attempt"] == 1
    assert not list((tmp_path / "backups").glob("*.sql.gz"))
    shown = run_invoke("db.schedule", env=env, cwd=tmp_path)
    assert "was cut off: it runs again when a runner starts" in shown.stdout

    runner = runners(env, tmp_path)
    wait_for(lambda: finished(env, "backup"), runner)
    said = stop(runner)
    record = state(env)["jobs"]["backup"]
    assert record["exit_code"] == 0, record["output"]
    assert record["slot"] == _this_hour()
    assert "unfinished" not in record
    assert record["summary"].startswith("backup: ")
    assert "was cut off (the runner stopped or the host went down); it runs again" in said
    assert len(list((tmp_path / "backups").glob("*.sql.gz"))) == 1
    assert pings == []


def test_a_run_cut_off_twice_is_a_failure_and_alerted(env, tmp_path, runners, monitor):
    """The host went down during a retry: the slot counts as failed (a run that keeps taking
    the host down must not loop), with an alert; the backup is not tried a third time."""
    alert_url, pings = monitor
    env = {**env, "PGKURA_BACKUP_SCHEDULE": "hourly", "PGKURA_ALERT_URL": alert_url}
    backups = tmp_path / "backups"
    backups.mkdir()
    cut = {"slot": _this_hour(), "started_at": _this_hour(), "attempt": 2}
    (backups / ".pgkura-schedule.json").write_text(
        json.dumps({"jobs": {"backup": {"unfinished": cut}}})
    )
    runner = runners(env, tmp_path)
    wait_for(lambda: finished(env, "size snapshot"), runner)
    stop(runner)
    record = state(env)["jobs"]["backup"]
    assert record["slot"] == _this_hour()
    assert record["outcome"] == "failed (cut off)"
    assert "cut off twice" in record["summary"]
    assert not list(backups.glob("*.sql.gz"))
    ((path, body),) = pings
    assert path == f"/ping/{TOKEN}/fail"
    assert body.startswith("scheduled backup failed: the run for the slot")
    shown = run_invoke("db.schedule", env=env, cwd=tmp_path)
    assert "failed (cut off) — the run for the slot" in shown.stdout
