"""Major upgrades on a real engine with real old servers: volumes made by PostgreSQL 17 (with
pgvector) and 15 (without) in the pre-18 layouts, refused by db.up, moved by db.upgrade into a
new PostgreSQL 18 volume and compared; an upgrade killed half-way and run again; a refusal for
lack of disk space; and a Compose file that would put PGDATA on an anonymous volume.

The old servers are the stand-ins from ../shared/ci/standin-old.sh (CI builds them); the
default images in the code are the official ones."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgkura.config.settings import load_settings
from pgkura.engines.docker.volume_check import mount_problem
from pgkura.upgrade.major import make_plan
from tests.conftest import INVOKE, ROOT, large_objects_sql, run_invoke, small_disk
from tests.s3 import S3Server

from .conftest import Project, base_image

pytestmark = pytest.mark.e2e
OLD_17 = "local/postgres-standin:17"
OLD_15 = "local/postgres-standin:15"


def _image(name: str) -> str:
    found = subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False)
    if found.returncode != 0:
        why = f"{name} is not built (bash ../shared/ci/standin-old.sh {name[-2:]})"
        pytest.fail(why) if os.environ.get("CI") else pytest.skip(why)
    return name


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


# What the old clusters hold: two databases, a second role, Japanese text, sequences, large
# objects (one over 1 MiB, owned by another role, with a comment), and (17) pgvector data
# with an HNSW index
SEED = """
CREATE TABLE items (id bigserial PRIMARY KEY, body text NOT NULL{vector_column});
INSERT INTO items (body{vector_name}) SELECT '東京都の文書 ' || g{vector_value}
  FROM generate_series(1, 800) g;
{vector_index}
CREATE SEQUENCE invoice_no START 1000;
SELECT nextval('invoice_no') FROM generate_series(1, 7);
CREATE ROLE reader LOGIN PASSWORD 'reader-Pw-1';
CREATE ROLE "report viewer" NOLOGIN;
GRANT SELECT ON items TO reader, "report viewer";
{large_objects}
CREATE DATABASE analytics;
"""
LARGE_OBJECTS = """SELECT string_agg(concat_ws(' ', oid, pg_get_userbyid(lomowner),
  obj_description(oid, 'pg_largeobject'), length(lo_get(oid)), md5(lo_get(oid))), E'\n'
  ORDER BY oid) FROM pg_largeobject_metadata"""
VECTOR = {
    "vector_column": ", embedding vector(3)",
    "vector_name": ", embedding",
    "vector_value": ", ARRAY[g, g % 7, 1]::vector",
    "vector_index": "CREATE INDEX items_embedding ON items USING hnsw (embedding vector_l2_ops);",
}
PLAIN = dict.fromkeys(VECTOR, "")


def make_old_volume(image: str, volume: str, *, root_layout: bool, vector: bool) -> str:
    """A volume as an older setup left it: mounted at /var/lib/postgresql/data (files at the
    volume's root), or holding data/ (PGDATA /var/lib/postgresql/data under a mount of
    /var/lib/postgresql). Its large objects (LARGE_OBJECTS in the app database)."""
    name = f"pgkura-e2e-old-{uuid.uuid4().hex[:8]}"
    mount, pgdata = ("/var/lib/postgresql/data", "/var/lib/postgresql/data") if root_layout else (
        "/srv/pg", "/srv/pg/data")  # fmt: skip
    if not volume.startswith("/"):  # a named volume (else a host directory, bind-mounted)
        docker("volume", "create", volume)
    docker("run", "-d", "--name", name, "-v", f"{volume}:{mount}", "-e", f"PGDATA={pgdata}",
           "-e", "POSTGRES_USER=app", "-e", "POSTGRES_PASSWORD=e2e-Secret-pw", "-e",
           "POSTGRES_DB=app", image)  # fmt: skip
    try:
        for _ in range(240):  # the first start's own temporary server does not count
            logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True,
                                  check=False)  # fmt: skip
            started = "init process complete" in logs.stdout + logs.stderr
            ready = subprocess.run(["docker", "exec", name, "pg_isready", "-q"], check=False)
            if started and ready.returncode == 0:
                break
            time.sleep(0.5)
        seed = SEED.format(**(VECTOR if vector else PLAIN),
                           large_objects=large_objects_sql(80001, "reader"))  # fmt: skip
        if vector:
            seed = "CREATE EXTENSION vector;\n" + seed
        subprocess.run(["docker", "exec", "-i", name, "psql", "-U", "app", "-d", "app", "-X",
                        "-q", "-v", "ON_ERROR_STOP=1"], input=seed, text=True, check=True)  # fmt: skip
        subprocess.run(["docker", "exec", "-i", name, "psql", "-U", "app", "-d", "analytics",
                        "-X", "-q", "-v", "ON_ERROR_STOP=1"], text=True, check=True,
                       input="CREATE TABLE visits (id serial PRIMARY KEY, page text);"
                             "INSERT INTO visits (page) SELECT '/ページ/' || g "
                             "FROM generate_series(1, 50) g;"
                             "SELECT lo_from_bytea(0, 'アクセス記録'::bytea);")  # fmt: skip
        return docker(
            "exec", name, "psql", "-U", "app", "-d", "app", "-XAtc", LARGE_OBJECTS
        ).strip()
    finally:
        docker("stop", name)
        docker("rm", "-v", name)


@pytest.fixture
def old_project(engine, tmp_path) -> Iterator[Project]:
    """A project whose PGKURA_VOLUME is an old volume; both volumes go at the end."""
    proj = Project(tmp_path)
    proj.old_volume = f"{proj.container}-old"  # type: ignore[attr-defined]
    built = proj.invoke("docker.build")  # db.upgrade runs PostgreSQL 18 from the project's image
    assert built.returncode == 0, built.stderr
    yield proj
    proj.invoke("db.down", "--volumes", "--yes", "--no-backup")
    subprocess.run(["docker", "volume", "rm", "-f", proj.old_volume], capture_output=True,  # type: ignore[attr-defined]
                   check=False)  # fmt: skip
    leftovers = docker("ps", "-aq", "--filter", f"label=pgkura.upgrade={proj.container}")
    assert not leftovers.strip()


def at(proj: Project, query: str, db: str = "app") -> str:
    """One value, unaligned, through the container's psql."""
    return docker("exec", proj.container, "psql", "-U", "app", "-d", db, "-XAtc", query).strip()


def test_a_postgresql_17_volume_is_refused_then_upgraded_and_can_be_gone_back_to(old_project):
    proj, old = old_project, old_project.old_volume  # type: ignore[attr-defined]
    large_objects = make_old_volume(_image(OLD_17), old, root_layout=True, vector=True)
    (proj.dir / ".env").write_text(f"PGKURA_VOLUME={old}\n")
    (proj.dir / ".env").chmod(0o600)
    refused = proj.invoke("db.up", "--build")
    assert refused.returncode == 1
    assert f"the data volume {old} holds PostgreSQL 17 data in the pre-18 layout" in refused.stderr
    assert "Nothing was started or changed" in refused.stderr
    assert not docker("ps", "-aq", "--filter", f"name={proj.container}").strip()

    plan = proj.invoke("db.upgrade", "--dry-run", "--old-image", OLD_17)
    assert plan.returncode == 0, plan.stderr
    assert f"from: volume {old}: PostgreSQL 17 in the pre-18 layout" in plan.stdout
    assert "dry run: nothing was started or changed" in plan.stdout
    assert old + "_pg18" not in docker("volume", "ls", "-q")

    done = proj.invoke("db.upgrade", "--yes", "--old-image", OLD_17)
    assert done.returncode == 0, done.stderr
    assert "verified: 3 databases" in done.stderr
    assert f"PGKURA_VOLUME={old}_pg18" in (proj.dir / ".env").read_text()
    assert (proj.dir / ".env").stat().st_mode & 0o777 == 0o600
    backup = re.search(r"^backup of the old cluster: (\S+)$", done.stdout, re.MULTILINE)
    assert backup
    assert Path(backup[1]).stat().st_mode & 0o777 == 0o600

    up = proj.invoke("db.up")
    assert up.returncode == 0, up.stderr
    assert at(proj, "SELECT count(*) FROM items") == "800"
    assert at(proj, "SELECT body FROM items WHERE id = 1") == "東京都の文書 1"
    assert at(proj, "SELECT nextval('invoice_no')") == "1007"
    assert at(proj, "SELECT count(*) FROM pg_roles WHERE rolname = 'report viewer'") == "1"
    assert at(proj, "SELECT nextval('items_id_seq')") == "801"
    index = "SELECT indexdef FROM pg_indexes WHERE indexname = 'items_embedding'"
    assert "USING hnsw" in at(proj, index)
    nearest = "SELECT id FROM items ORDER BY embedding <-> '[5,5,1]' LIMIT 1"
    assert at(proj, nearest) == "5"
    reader = subprocess.run(
        ["docker", "exec", "-e", "PGPASSWORD=reader-Pw-1", proj.container, "psql", "-h",
         "127.0.0.1", "-U", "reader", "-d", "app", "-Atc", "SELECT count(*) FROM items"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert reader.stdout.strip() == "800", reader.stderr  # the role and its password came along
    assert at(proj, "SELECT min(page) FROM visits", db="analytics").startswith("/ページ/")
    assert at(proj, LARGE_OBJECTS) == large_objects
    assert "80002 reader 1.2 MB の大きなオブジェクト 1280000 " in large_objects
    assert at(proj, "SELECT convert_from(lo_get(oid), 'UTF8') FROM pg_largeobject_metadata",
              db="analytics") == "アクセス記録"  # fmt: skip

    # going back: PGKURA_VOLUME at the old volume, which still holds PostgreSQL 17 untouched
    assert proj.invoke("db.down").returncode == 0
    back = proj.invoke("db.up", PGKURA_VOLUME=old)
    assert back.returncode == 1
    assert "holds PostgreSQL 17 data" in back.stderr


def test_no_upgrade_while_a_container_of_the_users_own_runs_on_the_old_volume(old_project):
    """Two servers on one data directory corrupt it: a plain `docker run` of the user's own on
    the old volume, running or paused, stops db.upgrade before anything starts or changes."""
    proj, old = old_project, old_project.old_volume  # type: ignore[attr-defined]
    make_old_volume(_image(OLD_17), old, root_layout=True, vector=True)
    theirs = f"users-own-{uuid.uuid4().hex[:8]}"
    upgrade = ("db.upgrade", "--yes", "--from-volume", old, "--old-image", OLD_17)
    docker("run", "-d", "--name", theirs, "-v", f"{old}:/var/lib/postgresql/data", OLD_17)
    try:
        for _ in range(240):
            if (
                subprocess.run(
                    ["docker", "exec", theirs, "pg_isready", "-q"], check=False
                ).returncode
                == 0
            ):
                break
            time.sleep(0.5)
        started = docker("inspect", "-f", "{{.State.StartedAt}}", theirs)
        for state, stop in (("running", ""), ("paused", f"docker unpause {theirs} && ")):
            if state == "paused":
                docker("pause", theirs)
            refused = proj.invoke(*upgrade)
            assert refused.returncode == 1
            assert f"{old} is in use, so nothing was started or changed" in refused.stderr
            stop += f"docker stop {theirs}"
            assert f"container {theirs} ({state}) mounts {old} → `{stop}`" in refused.stderr
            assert "Traceback" not in refused.stderr
            assert old + "_pg18" not in docker("volume", "ls", "-q")
            assert not docker("ps", "-aq", "--filter", f"label=pgkura.upgrade={proj.container}")
            assert not (proj.dir / ".env").exists()
            assert not list((proj.dir / "backups").glob("*"))
        plan = proj.invoke("db.upgrade", "--dry-run", "--from-volume", old, "--old-image", OLD_17)
        assert f"in use (stop it first): container {theirs} (paused)" in plan.stdout
        docker("unpause", theirs)
        assert docker("inspect", "-f", "{{.State.StartedAt}}", theirs) == started
        docker("stop", theirs)
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", theirs], capture_output=True, check=False)
    done = proj.invoke(*upgrade)
    assert done.returncode == 0, done.stderr
    assert "verified: 3 databases" in done.stderr


def test_a_postgresql_15_volume_in_the_data_layout_is_upgraded(old_project, s3_server: S3Server):
    """… and its backup is copied off-site, as every backup pgkura takes when one is set."""
    proj, old = old_project, old_project.old_volume  # type: ignore[attr-defined]
    large_objects = make_old_volume(_image(OLD_15), old, root_layout=False, vector=False)
    bucket = s3_server.bucket(f"upgrade-{proj.container}")
    offsite = {"PGKURA_OFFSITE_URL": f"s3://{bucket}/db/", "PGKURA_S3_ENDPOINT": s3_server.endpoint,
               "AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_REGION": "us-east-1",
               "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}  # fmt: skip
    done = proj.invoke("db.upgrade", "--yes", "--from-volume", old, "--old-image", OLD_15,
                       **offsite)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert s3_server.secret_key not in done.stdout + done.stderr
    assert "from: volume " + old + ": PostgreSQL 15 in the pre-18 layout (data/ in the volume)" in (
        done.stdout
    )
    backup = Path(re.search(r"^backup of the old cluster: (\S+)$", done.stdout, re.MULTILINE)[1])
    assert f"off-site copy: s3://{bucket}/db/{backup.name}" in done.stderr
    copy = s3_server.root / bucket / "db" / backup.name
    assert copy.read_bytes() == backup.read_bytes()
    manifest = json.loads((copy.parent / (backup.name + ".json")).read_text())
    assert (manifest["purpose"], manifest["mode"], manifest["server_version"]) == (
        "upgrade", "cluster", "15")  # fmt: skip
    assert proj.invoke("db.up", "--build").returncode == 0
    assert "800" in proj.sql("SELECT count(*) FROM items")
    assert at(proj, LARGE_OBJECTS) == large_objects


def test_a_host_directory_of_an_old_setup_is_upgraded(old_project, tmp_path):
    """A bind-mounted data directory (`./pgdata:/var/lib/postgresql/data`), PostgreSQL 17."""
    proj = old_project
    directory = tmp_path / "pgdata"
    directory.mkdir()
    make_old_volume(_image(OLD_17), str(directory), root_layout=True, vector=True)
    upgrade = ("db.upgrade", "--yes", "--from-dir", str(directory), "--old-image", OLD_17)
    # a server of the user's own on it, killed: its postmaster.pid stays behind
    theirs = f"users-own-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--name", theirs, "-v", f"{directory}:/var/lib/postgresql/data", OLD_17)
    try:
        for _ in range(240):
            if (directory / "postmaster.pid").exists():
                break
            time.sleep(0.5)
        running = proj.invoke(*upgrade)
        assert f"container {theirs} (running) mounts {directory} → `docker stop" in running.stderr
        docker("kill", theirs)
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", theirs], capture_output=True, check=False)
    left = proj.invoke(*upgrade)
    assert left.returncode == 1
    assert f"{directory} holds a postmaster.pid" in left.stderr
    assert "did not shut down cleanly" in left.stderr
    assert (directory / "postmaster.pid").exists()  # pgkura deletes nothing of the user's
    (directory / "postmaster.pid").unlink()  # the remedy, for this test: no server uses it
    done = proj.invoke(*upgrade)
    assert done.returncode == 0, done.stderr
    assert f"from: directory {directory}: PostgreSQL 17" in done.stdout
    assert (directory / "PG_VERSION").read_text().strip() == "17"  # left where it was
    assert proj.invoke("db.up").returncode == 0
    assert at(proj, "SELECT count(*) FROM items") == "800"


def test_an_upgrade_killed_half_way_leaves_the_old_data_and_a_rerun_starts_clean(old_project):
    proj, old = old_project, old_project.old_volume  # type: ignore[attr-defined]
    make_old_volume(_image(OLD_17), old, root_layout=True, vector=True)
    for step in ("backing up the old cluster", "restoring "):
        proc = subprocess.Popen(
            [*INVOKE, "db.upgrade", "--yes", "--from-volume", old, "--old-image", OLD_17],
            env={**os.environ, **proj.env}, cwd=proj.dir, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith(step):
                proc.send_signal(signal.SIGKILL)  # no cleanup at all
                break
        proc.wait(timeout=120)
        assert proc.returncode == -signal.SIGKILL
    again = proj.invoke("db.upgrade", "--yes", "--from-volume", old, "--old-image", OLD_17)
    assert again.returncode == 0, again.stderr
    assert "removing what an interrupted upgrade left behind" in again.stderr
    assert "verified: 3 databases" in again.stderr


def test_too_little_disk_space_is_refused_before_anything_starts(old_project, tmp_path):
    proj, old = old_project, old_project.old_volume  # type: ignore[attr-defined]
    make_old_volume(_image(OLD_15), old, root_layout=True, vector=False)
    with small_disk(tmp_path / "small", "1m") as small:
        refused = proj.invoke("db.upgrade", "--yes", "--from-volume", old,
                              PGKURA_BACKUP_DIR=str(small))  # fmt: skip
    assert refused.returncode == 1
    assert "not enough free disk space, so nothing was started" in refused.stderr
    assert f"the backup directory {small}" in refused.stderr
    assert old + "_pg18" not in docker("volume", "ls", "-q")
    assert not docker("ps", "-aq", "--filter", f"label=pgkura.upgrade={proj.container}").strip()


def test_a_compose_file_that_keeps_pgdata_off_the_volume_is_refused(engine, tmp_path, monkeypatch):
    """The pre-18 habit `pgdata:/var/lib/postgresql/data` would put 18/docker on an anonymous
    volume: an empty cluster that vanishes with the container."""
    for name in ("docker-compose.yml", "docker-compose.override.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    compose = tmp_path / "docker-compose.yml"
    text = compose.read_text()
    assert "- pgdata:/var/lib/postgresql\n" in text
    compose.write_text(text.replace("- pgdata:/var/lib/postgresql\n",
                                    "- pgdata:/var/lib/postgresql/data\n"))  # fmt: skip
    monkeypatch.setenv("POSTGRES_PASSWORD", "x")  # Compose requires one to render the file
    env = {"POSTGRES_PASSWORD": "x", "PGKURA_ENV_FILE": str(tmp_path / "none.env")}
    problem = mount_problem(load_settings(tmp_path, env))
    assert problem is not None
    assert "pgdata at /var/lib/postgresql/data" in problem
    assert "mount the data volume at /var/lib/postgresql" in problem
    assert mount_problem(load_settings(ROOT, env)) is None


def test_doctor_says_when_it_cannot_look_at_the_volume(engine, tmp_path):
    """Without POSTGRES_PASSWORD Compose will not render its file: a finding, not a crash."""
    env = {"POSTGRES_PASSWORD": "", "PGKURA_ENV_FILE": str(tmp_path / "none.env"),
           "PGKURA_COMPOSE_PROJECT": f"pgkura-e2e-{uuid.uuid4().hex[:8]}",
           "PGKURA_BACKUP_DIR": str(tmp_path / "b"), "DATABASE_URL": ""}  # fmt: skip
    result = run_invoke("db.doctor", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "[FAIL] data volume cannot look" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_the_upgrades_backup_is_taken_in_the_projects_compression(engine, tmp_path, compression):
    """PGKURA_BACKUP_COMPRESSION, as for every backup: the plan (from a host directory that
    holds a PostgreSQL 17 cluster, surveyed in a container) says it, and the dump uses it."""
    (tmp_path / "old" / "data").mkdir(parents=True)
    (tmp_path / "old" / "data" / "PG_VERSION").write_text("17\n")
    env = {"POSTGRES_PASSWORD": "x", "PGKURA_ENV_FILE": str(tmp_path / "none.env"),
           "PGKURA_BACKUP_DIR": str(tmp_path / "backups"),
           "PGKURA_BACKUP_COMPRESSION": compression}  # fmt: skip
    settings = load_settings(tmp_path, {**env, "PGKURA_IMAGE": base_image()})
    plan = make_plan(settings, from_dir=str(tmp_path / "old"))
    assert plan.compression == compression
    assert f"pg_dumpall 18, {compression} → " in "\n".join(plan.lines())
