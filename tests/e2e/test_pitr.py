"""Point-in-time recovery on the real image: WAL archived by pgBackRest, a base backup, writes
after it, a noted moment, every row deleted, `db.restore-to` back to that moment in a
new volume, and archiving going on on the new timeline."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from pgkura.engines.docker.helpers import HelperServer

from .conftest import Project

pytestmark = pytest.mark.e2e
# its own tag: the image must have pgBackRest, and other e2e files build their own
IMAGE = "pgkura-postgres:e2e-pitr"
FINGERPRINT = (
    "SELECT count(*) || ' ' || md5(coalesce(string_agg(md5(n::text), '' ORDER BY id), '')) "
    "FROM notes n"
)
# the moment as the team writes it: Japan's time with its offset (the server runs in UTC)
NOW_IN_JST = (
    "SELECT to_char(clock_timestamp() AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD HH24:MI:SS.US') "
    "|| '+09:00'"
)


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def value(project: Project, query: str) -> str:
    """The one value `query` returns (psql's aligned output: header, rule, value)."""
    return project.sql(query).splitlines()[2].strip()


@pytest.fixture(scope="module")
def archiving(project: Project) -> Iterator[Project]:
    project.env.update(PGKURA_PITR="on", PGKURA_IMAGE=IMAGE)
    up = project.invoke("db.up", "--build")
    assert up.returncode == 0, up.stderr
    assert "checking pgBackRest's stanza" in up.stderr
    assert project.invoke("db.migrate").returncode == 0
    volume = f"{project.container}_pgdata"
    yield project
    subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True, check=False)


def test_refused_before_anything_changes(archiving: Project):
    no_offset = archiving.invoke("db.restore-to", "2026-11-30 16:59:00", "--yes")
    assert no_offset.returncode != 0
    assert "no UTC offset" in no_offset.stderr
    assert "Traceback" not in no_offset.stderr
    nothing = archiving.invoke("db.restore-to", "2001-01-01 00:00:00+09:00", "--yes")
    assert nothing.returncode != 0
    assert "no base backup ended before" in nothing.stderr, nothing.stderr


def test_restore_to_a_moment_into_a_new_volume(archiving: Project):
    p = archiving
    p.sql("INSERT INTO notes (content, embedding) SELECT '保存前のメモ ' || g, ARRAY[g, 1, 2]::vector"
          " FROM generate_series(1, 1000) g")  # fmt: skip
    backup = p.invoke("db.basebackup")
    assert backup.returncode == 0, backup.stderr
    assert "(full)" in backup.stdout
    assert "verified" in backup.stdout
    # after the base backup: only the WAL archive has these
    p.sql("INSERT INTO notes (content, embedding) SELECT '午後のメモ ' || g, ARRAY[g, 3, 4]::vector"
          " FROM generate_series(1, 500) g")  # fmt: skip
    then = value(p, FINGERPRINT)
    moment = value(p, NOW_IN_JST)
    p.sql("DELETE FROM notes")  # the bad DELETE
    assert value(p, "SELECT count(*) FROM notes") == "0"

    listed = p.invoke("db.backups")
    assert listed.returncode == 0, listed.stderr
    assert "can restore to any moment from" in listed.stdout

    old = f"{p.container}_pgdata"
    restored = p.invoke("db.restore-to", moment, "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert value(p, FINGERPRINT) == then
    assert then.startswith("1500 ")

    # the project now runs on the new volume, on a new timeline, archiving again
    env_file = (p.dir / ".env").read_text()
    new = next(line.split("=", 1)[1] for line in env_file.splitlines()
               if line.startswith("PGKURA_VOLUME="))  # fmt: skip
    assert new != old
    assert new in restored.stdout
    assert value(p, "SELECT timeline_id FROM pg_control_checkpoint()") == "2"
    assert value(p, "SELECT last_archived_wal FROM pg_stat_archiver").startswith("00000002")
    left = value(p, "SELECT count(*) FROM pg_file_settings WHERE name LIKE 'recovery_target%' "
                 "OR name = 'restore_command'")  # fmt: skip
    assert left == "0"
    doctor = p.invoke("db.doctor")
    assert doctor.returncode == 0, doctor.stdout
    assert "archiving" in doctor.stdout, doctor.stdout
    assert "base backups" in doctor.stdout, doctor.stdout

    # the old volume is as the live server left it: the DELETE is there, untouched
    helper = HelperServer(f"{p.container}-old", "app")
    docker("run", "-d", "--name", helper.name, "--network", "none", "-v",
           f"{old}:/var/lib/postgresql", IMAGE)  # fmt: skip
    try:
        helper.wait()
        assert helper.psql("app", sql="SELECT count(*) FROM notes").stdout.strip() == "0"
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", helper.name], capture_output=True, check=False)
