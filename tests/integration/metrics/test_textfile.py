"""pgkura's facts as a Prometheus textfile, read back with Prometheus' own parser: written by
the scheduler after a restore drill that failed on a damaged backup, with a migration pending;
and on demand by `db.metrics`, still written when the database does not answer."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pgkura.backups.store import read_manifest
from pgkura.backups.take import take_backup
from pgkura.clusters.throwaway import bin_dir
from pgkura.config.settings import load_settings
from tests.conftest import run_invoke
from tests.promtool import fire, metric_problems
from tests.scheduling import state, stop, wait_for


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(name, sorted labels): value} as Prometheus reads the text."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return parse(path.read_text())


@pytest.fixture
def env(pg_server, database, tmp_path) -> dict[str, str]:
    (tmp_path / "textfile").mkdir()
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "001_notes.sql").write_text("CREATE TABLE notes (id int PRIMARY KEY);\n")
    return {
        "PGKURA_ENV_FILE": str(tmp_path / ".env"),
        "DATABASE_URL": pg_server.url(database),
        "PGKURA_PG_BIN": str(bin_dir()),
        "PGKURA_BACKUP_DIR": str(tmp_path / "backups"),
        "PGKURA_MIGRATIONS_DIR": str(migrations),
        "PGKURA_METRICS_TEXTFILE": str(tmp_path / "textfile" / "pgkura.prom"),
    }


def test_the_scheduler_writes_the_facts_after_a_failed_drill(env, database, tmp_path, runners):
    settings = load_settings(tmp_path, env)
    backup = take_backup(settings, log=lambda _: None).path
    manifest = read_manifest(backup)
    data = bytearray(backup.read_bytes())  # bit rot: same size, so it still looks complete
    data[len(data) // 2] ^= 0xFF
    backup.write_bytes(bytes(data))

    runner = runners({**env, "PGKURA_DRILL_SCHEDULE": "hourly"}, tmp_path)
    textfile = Path(env["PGKURA_METRICS_TEXTFILE"])
    drill = ("pgkura_scheduled_job_last_run_success", (("name", "drill"),))
    wait_for(lambda: textfile.exists() and drill in samples(textfile), runner)
    stop(runner)

    found, db = samples(textfile), (("database", database),)
    assert metric_problems(textfile.read_text()) == ""
    assert found[drill] == 0
    assert state(env)["jobs"]["drill"]["exit_code"] != 0
    ran = datetime.fromisoformat(state(env)["jobs"]["drill"]["finished_at"]).timestamp()
    assert found["pgkura_scheduled_job_last_run_timestamp_seconds", (("name", "drill"),)] == ran
    assert found["pgkura_scheduled_job_missed", (("name", "drill"),)] == 0
    assert found["pgkura_scheduler_active", ()] == 1
    assert found["pgkura_backup_files", db] == 1
    taken = datetime.fromisoformat(manifest["created_at"]).timestamp()
    assert found["pgkura_backup_newest_timestamp_seconds", db] == taken
    assert found["pgkura_backup_newest_size_bytes", db] == manifest["size"]
    assert found["pgkura_migrations_pending", ()] == 1
    assert found["pgkura_migrations_applied", ()] == 0
    for collector in ("backups", "schedule", "database"):
        assert found["pgkura_collector_success", (("collector", collector),)] == 1
    # node_exporter runs as another user; the temporary file never stays behind
    assert textfile.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in textfile.parent.iterdir()) == ["pgkura.prom"]

    # the alert rules fire on these facts, as Prometheus would read them an hour on
    series = {name + "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}": value
              for (name, labels), value in found.items()}  # fmt: skip
    drill_failed = {"exp_labels": {"name": "drill", "severity": "critical"}, "exp_annotations": {
        "summary": "The last restore drill failed: the newest backup may not restore",
        "description": "`invoke db.schedule` shows why; `invoke db.verify latest "
        "--restore-test` repeats it."}}  # fmt: skip
    pending = {"exp_labels": {"severity": "warning"}, "exp_annotations": {
        "summary": "1 migration(s) pending", "description": "The code expects a schema the "
        "database does not have yet → `invoke db.migrate`."}}  # fmt: skip
    expected = [{"alertname": "PgkuraRestoreDrillFailed", "exp_alerts": [drill_failed]},
                {"alertname": "PgkuraMigrationsPending", "exp_alerts": [pending]},
                {"alertname": "PgkuraNoBackup", "exp_alerts": []},
                {"alertname": "PgkuraFactsUnreadable", "exp_alerts": []}]  # fmt: skip
    assert fire(tmp_path, series, 70, expected) == ""


def test_db_metrics_writes_what_it_can_when_the_database_is_down(env, tmp_path):
    env = {**env, "DATABASE_URL": "postgresql://app:pw@127.0.0.1:9/app",
           "PGKURA_BACKUP_SCHEDULE": "daily 03:15"}  # fmt: skip
    done = run_invoke("db.metrics", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {env['PGKURA_METRICS_TEXTFILE']}\n"
    assert "warning: the database facts could not be read: " in done.stderr
    found = samples(Path(env["PGKURA_METRICS_TEXTFILE"]))
    assert found["pgkura_collector_success", (("collector", "database"),)] == 0
    assert found["pgkura_backup_files", (("database", "app"),)] == 0
    # no runner and a slot passed: the backup schedule is missed
    assert found["pgkura_scheduler_active", ()] == 0
    assert found["pgkura_scheduled_job_missed", (("name", "backup"),)] == 1
    assert ("pgkura_migrations_pending", ()) not in found

    printed = run_invoke("db.metrics", env={**env, "PGKURA_METRICS_TEXTFILE": ""}, cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    names = {f.name for f in text_string_to_metric_families(printed.stdout)}
    assert {"pgkura_backup_files", "pgkura_collector_success"} <= names


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--textfile", "metrics.txt"], "does not end in .prom: node_exporter's textfile"),
        (["--textfile", "missing/pgkura.prom"], "cannot write the metrics file"),
    ],
)
def test_db_metrics_refuses_a_file_the_collector_cannot_read(env, tmp_path, args, message):
    done = run_invoke("db.metrics", *args, env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_pitr_facts_come_from_the_server_s_archiver(env, tmp_path):
    env = {**env, "PGKURA_PITR": "on"}
    done = run_invoke("db.metrics", env={**env, "PGKURA_METRICS_TEXTFILE": ""}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    names = {f.name for f in text_string_to_metric_families(done.stdout)}
    assert "pgkura_pitr_archive_failing" in names  # archive_mode is off here: never failing
    assert metric_problems(done.stdout) == ""
    assert "warning" not in done.stderr


def test_off_site_facts_come_from_the_s3_store(env, database, tmp_path, s3_server):
    """A backup shipped to a real S3 server is counted there; with a wrong secret the off-site
    collector fails alone, and the secret is never printed."""
    bucket = s3_server.bucket(f"metrics-{database.replace('_', '-')}")
    (tmp_path / ".env").write_text(
        f"AWS_ACCESS_KEY_ID={s3_server.access_key}\nAWS_SECRET_ACCESS_KEY={s3_server.secret_key}\n"
        "AWS_REGION=us-east-1\n"
    )
    env = {**env, "PGKURA_OFFSITE_URL": f"s3://{bucket}/prod", "PGKURA_METRICS_TEXTFILE": "",
           "PGKURA_S3_ENDPOINT": s3_server.endpoint}  # fmt: skip
    backed_up = run_invoke("db.backup", env=env, cwd=tmp_path)
    assert backed_up.returncode == 0, backed_up.stderr
    (backup,) = (tmp_path / "backups").glob("*.sql.gz")
    taken = datetime.fromisoformat(read_manifest(backup)["created_at"]).timestamp()

    done = run_invoke("db.metrics", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found, db = parse(done.stdout), (("database", database),)
    assert found["pgkura_collector_success", (("collector", "offsite"),)] == 1
    assert found["pgkura_offsite_files", db] == 1
    assert found["pgkura_offsite_newest_timestamp_seconds", db] == taken
    assert found["pgkura_offsite_newest_size_bytes", db] == backup.stat().st_size
    assert metric_problems(done.stdout) == ""

    (tmp_path / ".env").write_text(
        f"AWS_ACCESS_KEY_ID={s3_server.access_key}\nAWS_SECRET_ACCESS_KEY=wrong-Secret\n"
        "AWS_REGION=us-east-1\n"
    )
    refused = run_invoke("db.metrics", env=env, cwd=tmp_path)
    assert refused.returncode == 0, refused.stderr
    assert "warning: the offsite facts could not be read: " in refused.stderr
    found = parse(refused.stdout)
    assert found["pgkura_collector_success", (("collector", "offsite"),)] == 0
    assert ("pgkura_offsite_files", db) not in found
    assert found["pgkura_backup_files", db] == 1
    for secret in (s3_server.secret_key, "wrong-Secret"):
        assert secret not in refused.stdout + refused.stderr
