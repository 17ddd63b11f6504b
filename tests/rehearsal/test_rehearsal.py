"""A production rehearsal: backups in both compressions, restores on both paths, listing,
a restore test, migrations under load (CREATE INDEX CONCURRENTLY; a lock the application holds),
inspect, an off-site round trip, a PostgreSQL 17 upgrade and a standby cloned under load, on
the real container with a database of application shape while an application reads and
writes.

The tests run in file order, each a step on the same server; the facts that span all steps
(no restart, memory, progress, the load's errors) are the last tests."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.conftest import Project
from tests.e2e.test_upgrade import OLD_17, _image, docker
from tests.s3 import S3Server

from .conftest import SIZE_MB, UPGRADE_MB, Rehearsal, timed
from .data import FINGERPRINT_SQL, LOAD_FINGERPRINT_SQL, fingerprint, generate_sql, psql

pytestmark = pytest.mark.e2e
MEMORY_BOUND_MIB = 256  # whatever the database's size: the tasks stream
SILENCE_BOUND_S = 5
STATE: dict[str, object] = {}  # what one step leaves for a later one


def backup_file(output: str) -> Path:
    match = re.search(r"^backup: (\S+\.sql\.(?:gz|zst)) ", output, re.MULTILINE)
    assert match, output
    return Path(match[1])


def everything(container: str) -> dict[str, str]:
    return fingerprint(container, FINGERPRINT_SQL + " UNION ALL " + LOAD_FINGERPRINT_SQL)


def test_the_rehearsal_database_has_every_shape(rehearsal: Rehearsal):
    container = rehearsal.project.container
    shapes = psql(container, """
        SELECT (SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass),
               (SELECT count(*) FROM pg_largeobject_metadata),
               (SELECT count(*) FROM pg_matviews),
               (SELECT count(*) FROM pg_sequences),
               (SELECT string_agg(amname, ',' ORDER BY amname) FROM pg_index
                  JOIN pg_class c ON c.oid = indexrelid JOIN pg_am a ON a.oid = c.relam
                  WHERE indrelid = 'articles'::regclass)""").strip()  # fmt: skip
    partitions, large_objects, views, sequences, methods = shapes.split("|")
    assert partitions == "12"
    assert int(large_objects) >= 4
    assert views == "1"
    assert int(sequences) >= 60
    assert methods == "btree,gin,hnsw"
    STATE["source"] = fingerprint(container)
    time.sleep(5)  # the load has run a while
    assert rehearsal.load.done["record_activity"] > 0, rehearsal.load.errors[:5]
    rehearsal.assert_server_unchanged()


def test_backup_gzip_under_load(rehearsal: Rehearsal):
    ran = rehearsal.run("db.backup (gzip)", "db.backup")
    assert ran.returncode == 0, ran.output
    STATE["gzip"] = backup_file(ran.output)
    rehearsal.assert_server_unchanged()


def test_backup_zstd_of_a_quiet_moment(rehearsal: Rehearsal):
    """The load pauses around it, so the restore below can be compared table by table,
    the load's own tables too."""
    with rehearsal.load.paused():
        STATE["quiet"] = everything(rehearsal.project.container)
        ran = rehearsal.run("db.backup --compression zstd", "db.backup", "--compression", "zstd")
    assert ran.returncode == 0, ran.output
    STATE["zstd"] = backup_file(ran.output)
    rehearsal.assert_server_unchanged()


def test_restore_on_the_default_path_under_load(rehearsal: Rehearsal):
    ran = rehearsal.run("db.restore (default path)", "db.restore", str(STATE["gzip"]), "--yes")
    assert ran.returncode == 0, ran.output
    assert "the previous contents are in" in ran.output
    assert fingerprint(rehearsal.project.container) == STATE["source"]
    rehearsal.assert_server_unchanged()


def test_restore_without_safety_backup_brings_back_the_quiet_moment(rehearsal: Rehearsal):
    with rehearsal.load.paused():
        ran = rehearsal.run("db.restore --no-safety-backup", "db.restore", str(STATE["zstd"]),
                            "--yes", "--no-safety-backup")  # fmt: skip
        assert ran.returncode == 0, ran.output
        assert everything(rehearsal.project.container) == STATE["quiet"]
    rehearsal.assert_server_unchanged()


def test_restore_on_the_default_path_with_the_application_stopped(rehearsal: Rehearsal):
    """With no session connected, the safety copy is a template copy of the database: the
    health check (on the same database) meets it."""
    with rehearsal.load.stopped():
        ran = rehearsal.run("db.restore (default path, application stopped)", "db.restore",
                            str(STATE["gzip"]), "--yes")  # fmt: skip
    assert ran.returncode == 0, ran.output
    assert "the previous contents are in database" in ran.output
    assert fingerprint(rehearsal.project.container) == STATE["source"]
    rehearsal.assert_server_unchanged()


def test_backups_lists_and_verifies_them(rehearsal: Rehearsal):
    ran = rehearsal.run("db.backups", "db.backups")
    assert ran.returncode == 0, ran.output
    for key in ("gzip", "zstd"):
        assert Path(str(STATE[key])).name in ran.output
    rehearsal.assert_server_unchanged()


def test_verify_with_a_restore_test(rehearsal: Rehearsal):
    ran = rehearsal.run("db.verify --restore-test", "db.verify", str(STATE["gzip"]),
                        "--restore-test")  # fmt: skip
    assert ran.returncode == 0, ran.output
    assert re.search(r"restore test: \d+ tables, \d+ rows", ran.output), ran.output
    rehearsal.assert_server_unchanged()


def add_migration(rehearsal: Rehearsal, name: str, text: str) -> None:
    (Path(rehearsal.project.env["PGKURA_MIGRATIONS_DIR"]) / name).write_text(text)


def test_migrate_creates_an_index_concurrently_while_the_load_writes(rehearsal: Rehearsal):
    add_migration(rehearsal, "005_activity_by_session.sql", "-- pgkura:no-transaction\n"
                  "CREATE INDEX CONCURRENTLY activity_by_session ON activity (session_id, at);\n")  # fmt: skip
    ran = rehearsal.run("db.migrate (CREATE INDEX CONCURRENTLY)", "db.migrate")
    assert ran.returncode == 0, ran.output
    assert "applied 005_activity_by_session.sql" in ran.output
    valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = 'activity_by_session'::regclass"
    assert psql(rehearsal.project.container, valid).strip() == "t"
    rehearsal.assert_server_unchanged()


def test_a_migration_that_needs_a_lock_the_application_holds(rehearsal: Rehearsal):
    """It gives up after PGKURA_LOCK_TIMEOUT with nothing applied (the application's other
    sessions queue behind it only that long); inspect meanwhile does not wait; once the
    application lets go, the same migration applies."""
    add_migration(rehearsal, "006_sessions_locale.sql",
                  "ALTER TABLE app_sessions ADD COLUMN locale text NOT NULL DEFAULT 'ja';\n")  # fmt: skip
    with rehearsal.load.holding("app_sessions"):
        refused = rehearsal.run("db.migrate (lock held by the application)", "db.migrate")
        inspected = rehearsal.run("db.inspect (lock held)", "db.inspect")
    assert refused.returncode == 1, refused.output
    assert "lock_timeout (5s) expired" in refused.output
    assert "Nothing was applied" in refused.output
    assert "Traceback" not in refused.output
    assert inspected.returncode == 0, inspected.output
    assert "== container" in inspected.output
    ran = rehearsal.run("db.migrate (lock released)", "db.migrate")
    assert ran.returncode == 0, ran.output
    assert "applied 006_sessions_locale.sql" in ran.output
    rehearsal.assert_server_unchanged()


def test_an_off_site_round_trip(rehearsal: Rehearsal, s3_server: S3Server):
    aws = (f"AWS_ACCESS_KEY_ID={s3_server.access_key}\n"
           f"AWS_SECRET_ACCESS_KEY={s3_server.secret_key}\nAWS_REGION=us-east-1\n")  # fmt: skip
    env_file = Path(rehearsal.project.env["PGKURA_ENV_FILE"])
    env_file.write_text(aws)
    env_file.chmod(0o600)
    bucket = s3_server.bucket(f"rehearsal-{uuid.uuid4().hex[:8]}")
    offsite = {"PGKURA_OFFSITE_URL": f"s3://{bucket}/prod/app",
               "PGKURA_S3_ENDPOINT": s3_server.endpoint}  # fmt: skip
    sent = rehearsal.run("db.backup with an off-site copy", "db.backup", **offsite)
    assert sent.returncode == 0, sent.output
    name = backup_file(sent.output).name
    assert f"off-site copy: s3://{bucket}/prod/app/{name}" in sent.output
    back = rehearsal.run("db.restore --remote", "db.restore", name, "--remote", "--yes",
                         "--no-safety-backup", **offsite)  # fmt: skip
    assert back.returncode == 0, back.output
    assert f"downloaded and verified {name}" in back.output
    assert s3_server.secret_key not in sent.output + back.output
    assert fingerprint(rehearsal.project.container) == STATE["source"]
    rehearsal.assert_server_unchanged()


@contextmanager
def old_server(volume: str) -> Iterator[str]:
    """PostgreSQL 17 (with pgvector, no pg_bigm) on `volume` in the pre-18 layout."""
    name = f"pgkura-rehearsal-old-{uuid.uuid4().hex[:8]}"
    docker("volume", "create", volume)
    docker("run", "-d", "--name", name, "-v", f"{volume}:/var/lib/postgresql/data",
           "-e", "POSTGRES_USER=app", "-e", "POSTGRES_PASSWORD=e2e-Secret-pw",
           "-e", "POSTGRES_DB=app", _image(OLD_17))  # fmt: skip
    try:
        for _ in range(240):  # the first start's own temporary server does not count
            logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True,
                                  check=False)  # fmt: skip
            ready = subprocess.run(["docker", "exec", name, "pg_isready", "-q", "-h",
                                    "127.0.0.1"], check=False)  # fmt: skip
            if "init process complete" in logs.stdout + logs.stderr and ready.returncode == 0:
                break
            time.sleep(0.5)
        yield name
    finally:
        docker("stop", name)
        docker("rm", "-v", name)


@pytest.fixture
def upgrade_project(rehearsal: Rehearsal, tmp_path: Path) -> Iterator[Project]:
    proj = Project(tmp_path)
    proj.env["PGKURA_IMAGE"] = rehearsal.project.env["PGKURA_IMAGE"]  # built already
    proj.old_volume = f"{proj.container}-old"  # type: ignore[attr-defined]
    yield proj
    proj.invoke("db.down", "--volumes", "--yes", "--no-backup")
    subprocess.run(["docker", "volume", "rm", "-f", proj.old_volume], capture_output=True,  # type: ignore[attr-defined]
                   check=False)  # fmt: skip


def test_upgrade_of_a_postgresql_17_volume_of_the_same_shapes(
    rehearsal: Rehearsal, upgrade_project: Project
):
    proj, old = upgrade_project, upgrade_project.old_volume  # type: ignore[attr-defined]
    with old_server(old) as container:
        timed(f"generate {UPGRADE_MB} MB on PostgreSQL 17", "",
              lambda: psql(container, generate_sql(UPGRADE_MB, bigm=False)))  # fmt: skip
        before = everything(container)
        size = psql(container, "SELECT pg_size_pretty(pg_database_size('app'))").strip()
    ran = rehearsal.run("db.upgrade (PostgreSQL 17 volume)", "db.upgrade", "--yes",
                        "--from-volume", old, "--old-image", OLD_17, project=proj, size=size)  # fmt: skip
    assert ran.returncode == 0, ran.output
    assert "verified: " in ran.output
    up = proj.invoke("db.up")
    assert up.returncode == 0, up.stderr
    assert everything(proj.container) == before
    rehearsal.assert_server_unchanged()  # the application's server, meanwhile


def test_a_standby_cloned_while_the_application_writes(rehearsal: Rehearsal):
    """db.standby copies the whole database through a replication slot while the load writes,
    with progress; the standby catches up (every source table, large object and sequence the
    same on both), and --drop frees the slot's WAL on the primary."""
    primary = rehearsal.project.container
    ran = rehearsal.run("db.standby (clone under load)", "db.standby")
    assert ran.returncode == 0, ran.output
    assert "standby created" in ran.output
    deadline = time.monotonic() + 120  # only ends a broken run
    while fingerprint(f"{primary}-standby") != fingerprint(primary):
        assert time.monotonic() < deadline, "the standby did not catch up"
        time.sleep(1)
    dropped = rehearsal.run("db.standby --drop", "db.standby", "--drop", "--yes")
    assert dropped.returncode == 0, dropped.output
    slots = psql(primary, "SELECT count(*) FROM pg_replication_slots").strip()
    assert slots == "0"
    rehearsal.assert_server_unchanged()


def test_the_server_never_restarted(rehearsal: Rehearsal):
    rehearsal.assert_server_unchanged()


def test_the_application_saw_no_errors(rehearsal: Rehearsal):
    """The documentation promises none: during a restore the application waits for the tables'
    locks, and no other step touches what it uses. Listed by step, operation and SQLSTATE."""
    load = rehearsal.load
    assert sum(load.done.values()) > 100, load.done
    errors = Counter((e.step, e.operation, e.sqlstate, e.message) for e in load.errors)
    assert not errors, "\n".join(f"{n} times: {error}" for error, n in errors.items())


def test_memory_stayed_flat(rehearsal: Rehearsal):
    """Peak RSS of the largest process of each task, below a bound that does not depend on
    the database's size (SIZE_MB scales the data, not the bound)."""
    heavy = {r.step: round(r.peak_rss_mib) for r in rehearsal.runs
             if r.peak_rss_mib > MEMORY_BOUND_MIB}  # fmt: skip
    assert not heavy, f"above {MEMORY_BOUND_MIB} MiB with {SIZE_MB} MB of data: {heavy}"


def test_no_long_task_was_silent(rehearsal: Rehearsal):
    """On a terminal, every task says how far it is at least every few seconds."""
    silent = {r.step: round(r.longest_silence, 1) for r in rehearsal.runs
              if r.longest_silence > SILENCE_BOUND_S}  # fmt: skip
    assert not silent, f"no output for more than {SILENCE_BOUND_S} s: {silent}"
