"""Off-site copies on a real S3 server (`rclone serve s3` on 127.0.0.1) with boto3: upload
after the local file is complete, remote retention, listing, and restores that download and
verify first. A damaged remote copy is refused with the database untouched; a failed upload
fails the run, alerts, and keeps the local backup. Credentials are never printed."""

from __future__ import annotations

import hashlib
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from pgkura.backups.offsite import RemoteStore
from pgkura.backups.store import MANIFEST_FORMAT, Backup, manifest_path
from pgkura.clusters.throwaway import bin_dir
from pgkura.config.offsite import Offsite
from pgkura.progress import Reporter
from tests.conftest import TOKEN, free_port, run_invoke
from tests.s3 import S3Server

PREFIX = "prod/app"


@pytest.fixture
def bucket(s3_server: S3Server, database: str) -> str:
    return s3_server.bucket(f"bk-{database.replace('_', '-')}")


@pytest.fixture
def env(pg_server, database, tmp_path, s3_server, bucket) -> dict[str, str]:
    """db.* settings with the S3 credentials in the project's .env, as a user would keep them."""
    (tmp_path / ".env").write_text(
        f"AWS_ACCESS_KEY_ID={s3_server.access_key}\n"
        f"AWS_SECRET_ACCESS_KEY={s3_server.secret_key}\n"
        "AWS_REGION=us-east-1\n"
    )
    return {
        "PGKURA_ENV_FILE": str(tmp_path / ".env"),
        "DATABASE_URL": pg_server.url(database),
        "PGKURA_PG_BIN": str(bin_dir()),
        "PGKURA_BACKUP_DIR": str(tmp_path / "backups"),
        "PGKURA_OFFSITE_URL": f"s3://{bucket}/{PREFIX}",
        "PGKURA_S3_ENDPOINT": s3_server.endpoint,
        "PGKURA_S3_SSE": "AES256",
    }


def invoke(*args: str, env: dict[str, str], cwd: Path, secret: str):
    result = run_invoke(*args, env=env, cwd=cwd)
    assert secret not in result.stdout + result.stderr
    return result


def store(s3_server: S3Server, bucket: str) -> RemoteStore:
    aws = {"AWS_ACCESS_KEY_ID": s3_server.access_key,
           "AWS_SECRET_ACCESS_KEY": s3_server.secret_key, "AWS_REGION": "us-east-1"}  # fmt: skip
    return RemoteStore(Offsite(bucket, PREFIX + "/", s3_server.endpoint, None, aws))


def seed(url: str, text: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v text)")
        conn.execute("INSERT INTO t VALUES (%s)", (text,))


def value(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT v FROM t").fetchone()
    assert row is not None
    return str(row[0])


def test_a_backup_goes_off_site_and_restores_from_there(
    pg_server, database, tmp_path, env, s3_server, bucket
):
    url = pg_server.url(database)
    seed(url, "東京の朝")
    key = s3_server.secret_key
    done = invoke("db.backup", env=env, cwd=tmp_path, secret=key)
    assert done.returncode == 0, done.stderr
    local = next((tmp_path / "backups").glob("*.sql.gz"))
    assert f"off-site copy: s3://{bucket}/{PREFIX}/{local.name}" in done.stdout
    remote_file = s3_server.root / bucket / PREFIX / local.name
    assert remote_file.read_bytes() == local.read_bytes()
    assert (remote_file.parent / (local.name + ".json")).read_bytes() == (
        manifest_path(local).read_bytes()
    )
    head = store(s3_server, bucket).client.head_object(Bucket=bucket, Key=f"{PREFIX}/{local.name}")
    assert head["ServerSideEncryption"] == "AES256"
    sha256 = json.loads(manifest_path(local).read_text())["sha256"]
    assert {k.lower(): v for k, v in head["Metadata"].items()}["sha256"] == sha256

    doctor = invoke("db.doctor", env=env, cwd=tmp_path, secret=key)
    assert f"1 backup(s) in s3://{bucket}/{PREFIX}/, newest {local.name}" in doctor.stdout
    listed = invoke("db.backups", "--remote", env=env, cwd=tmp_path, secret=key)
    assert listed.returncode == 0, listed.stderr
    assert local.name in listed.stdout
    assert sha256[:16] in listed.stdout

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE t SET v = 'changed since'")
    for path in (tmp_path / "backups").iterdir():  # the host lost its disk
        path.unlink()
    restored = invoke("db.restore", "latest", "--remote", "--yes", "--no-safety-backup",
                      env=env, cwd=tmp_path, secret=key)  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    assert f"downloaded and verified {local.name}" in restored.stderr
    assert value(url) == "東京の朝"
    assert not list((tmp_path / "backups").glob(".pgkura-remote-*"))  # the download is gone

    checked = invoke("db.verify", local.name, "--remote", env=env, cwd=tmp_path, secret=key)
    assert checked.returncode == 0, checked.stderr
    assert "gzip intact, dump complete" in checked.stdout


def test_a_damaged_remote_copy_is_refused_and_the_database_untouched(
    pg_server, database, tmp_path, env, s3_server, bucket
):
    url = pg_server.url(database)
    seed(url, "backed up")
    key = s3_server.secret_key
    assert invoke("db.backup", env=env, cwd=tmp_path, secret=key).returncode == 0
    remote_file = next((s3_server.root / bucket / PREFIX).glob("*.sql.gz"))
    data = bytearray(remote_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    remote_file.write_bytes(bytes(data))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE t SET v = 'current'")
    refused = invoke("db.restore", "latest", "--remote", "--yes", env=env, cwd=tmp_path, secret=key)
    assert refused.returncode == 1
    assert "does not match its SHA-256" in refused.stderr
    assert "Nothing was restored or changed" in refused.stderr
    assert value(url) == "current"
    assert not list((tmp_path / "backups").glob(".pgkura-remote-*"))
    with psycopg.connect(url) as conn:  # not even a safety copy was made
        copies = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE %s", (f"{database}\\_before%",)
        ).fetchone()
    assert copies == (0,)
    bad = invoke("db.verify", "latest", "--remote", env=env, cwd=tmp_path, secret=key)
    assert bad.returncode == 1
    assert "does not match its SHA-256" in bad.stderr


def test_a_failed_upload_fails_the_run_alerts_and_keeps_the_local_backup(
    pg_server, database, tmp_path, env, s3_server, monitor
):
    alert_url, pings = monitor
    (tmp_path / ".env").write_text(
        f"AWS_ACCESS_KEY_ID={s3_server.access_key}\nAWS_SECRET_ACCESS_KEY=wrong-Secret-123\n"
    )
    env = {**env, "PGKURA_ALERT_URL": alert_url}
    result = invoke("db.backup", env=env, cwd=tmp_path, secret="wrong-Secret-123")
    assert result.returncode == 1
    local = next((tmp_path / "backups").glob("*.sql.gz"))
    assert f"the backup {local} is complete and kept, but upload" in result.stderr
    assert "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY" in result.stderr
    ((path, body),) = pings
    assert path == f"/ping/{TOKEN}/fail"
    assert "is complete and kept, but upload" in body
    doctor = invoke("db.doctor", env=env, cwd=tmp_path, secret="wrong-Secret-123")
    assert "off-site" in doctor.stdout
    assert "check AWS_ACCESS_KEY_ID" in doctor.stdout
    assert "wrong-Secret-123" not in body
    assert TOKEN not in result.stdout + result.stderr


def test_retention_applies_off_site_as_well(pg_server, database, tmp_path, env, s3_server, bucket):
    env = {**env, "PGKURA_BACKUP_KEEP": "2"}
    for _ in range(3):
        done = invoke("db.backup", env=env, cwd=tmp_path, secret=s3_server.secret_key)
        assert done.returncode == 0, done.stderr
    local = sorted(p.name for p in (tmp_path / "backups").glob("*.sql.gz"))
    remote = [e.path.name for e in store(s3_server, bucket).entries()]
    assert len(local) == 2
    assert remote == local
    assert "retention: removed the off-site copy" in done.stdout
    skipped = invoke(
        "db.backup", "--no-offsite", env=env, cwd=tmp_path, secret=s3_server.secret_key
    )
    assert skipped.returncode == 0
    assert "off-site" not in skipped.stdout


def migrations(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "001_u.sql").write_text("CREATE TABLE u (id int);")
    return directory


def test_backups_before_a_migration_or_a_restore_go_off_site_too(
    pg_server, database, tmp_path, env, s3_server, bucket
):
    """Every backup pgkura takes follows db.backup's path, whatever it is taken for."""
    url = pg_server.url(database)
    seed(url, "before")
    env = {**env, "PGKURA_MIGRATIONS_DIR": str(migrations(tmp_path))}
    key = s3_server.secret_key
    done = invoke("db.migrate", "--backup", env=env, cwd=tmp_path, secret=key)
    assert done.returncode == 0, done.stderr
    (local,) = (tmp_path / "backups").glob("*.sql.gz")
    assert f"off-site copy: s3://{bucket}/{PREFIX}/{local.name}" in done.stdout
    remote = {e.path.name: e.manifest for e in store(s3_server, bucket).entries()}
    assert remote[local.name]["reason"] == "before migrating"

    # a session kept open: the restore cannot copy the database, so it takes a safety file
    with psycopg.connect(url, autocommit=True):
        restored = invoke("db.restore", "latest", "--yes", env=env, cwd=tmp_path, secret=key)
    assert restored.returncode == 0, restored.stderr
    remote = {e.path.name: e.manifest for e in store(s3_server, bucket).entries()}
    assert sorted(m["purpose"] for m in remote.values()) == ["backup", "safety"]
    assert value(url) == "before"


def test_an_off_site_failure_stops_a_migration_before_it_starts(
    pg_server, database, tmp_path, env, s3_server
):
    """The same rule as db.backup: the local backup is kept, the run fails; and a migration
    that was to be protected by it does not run."""
    (tmp_path / ".env").write_text(
        f"AWS_ACCESS_KEY_ID={s3_server.access_key}\nAWS_SECRET_ACCESS_KEY=wrong-Secret-123\n"
    )
    env = {**env, "PGKURA_MIGRATIONS_DIR": str(migrations(tmp_path))}
    result = invoke("db.migrate", "--backup", env=env, cwd=tmp_path, secret="wrong-Secret-123")
    assert result.returncode == 1
    (local,) = (tmp_path / "backups").glob("*.sql.gz")
    assert f"the backup {local} is complete and kept, but upload" in result.stderr
    with psycopg.connect(pg_server.url(database)) as conn:
        assert conn.execute("SELECT to_regclass('u')").fetchone() == (None,)


def local_backup(directory: Path, name: str, payload: bytes) -> Backup:
    path = directory / name
    path.write_bytes(payload)
    manifest = {"format": MANIFEST_FORMAT, "file": path.name, "database": "app", "mode": "full",
                "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}  # fmt: skip
    manifest_path(path).write_text(json.dumps(manifest))
    return Backup(path, manifest)


def test_large_backups_go_up_in_parts_and_come_back_whole(tmp_path, s3_server, bucket):
    """A multipart upload (three 5 MiB parts) is one object, listed and fetched whole; both
    ways report their progress, up to every byte."""
    payload = os.urandom(12 * 2**20)
    told = io.StringIO()
    remote = store(s3_server, bucket)
    # every update shown, as plain lines (the scheduler's and CI's form)
    remote.part_size = 5 * 2**20
    remote.progress = Reporter(told, settle=0, every=0, heartbeat=None)
    remote.upload(local_backup(tmp_path, "app_20260101_030000.sql.gz", payload))
    lines = told.getvalue().splitlines()
    assert any(" of 12.0 MiB, " in line and "%, " in line for line in lines), lines
    assert lines[-1].startswith("upload app_20260101_030000.sql.gz: 12.0 MiB in ")
    told.seek(0), told.truncate()
    (found,) = remote.entries()
    with remote.fetched(found, tmp_path / "restore") as fetched:
        assert fetched.read_bytes() == payload
        assert fetched.stat().st_mode & 0o777 == 0o600
    assert (
        told.getvalue()
        .splitlines()[-1]
        .startswith("download app_20260101_030000.sql.gz: 12.0 MiB in ")
    )
    assert not any((tmp_path / "restore").iterdir())


def test_what_failed_uploads_left_is_removed_once_a_day_old(tmp_path, s3_server, bucket):
    """A multipart upload cut off and a data object whose manifest never came: kept while they
    may be uploads under way, removed after the grace period; complete backups and other
    people's objects stay."""
    remote = store(s3_server, bucket)
    kept = local_backup(tmp_path, "app_20260101_030000.sql.gz", b"complete")
    remote.upload(kept)
    client, prefix = remote.client, PREFIX + "/"
    cut = client.create_multipart_upload(Bucket=bucket, Key=prefix + "app_20260102_030000.sql.gz")
    client.upload_part(Bucket=bucket, Key=prefix + "app_20260102_030000.sql.gz", PartNumber=1,
                       UploadId=cut["UploadId"], Body=b"part")  # fmt: skip
    client.put_object(Bucket=bucket, Key=prefix + "app_20260103_030000.sql.gz", Body=b"orphan")
    client.put_object(Bucket=bucket, Key=prefix + "notes.txt", Body=b"not ours")

    assert remote.remove_leftovers(datetime.now(UTC) - timedelta(hours=24)) == []
    assert client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads")
    a_day_on = datetime.now(UTC) + timedelta(hours=25)
    assert remote.remove_leftovers(a_day_on) == [
        "the unfinished multipart upload of app_20260102_030000.sql.gz",
        "app_20260103_030000.sql.gz, whose manifest never arrived",
    ]
    assert not client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads")
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    assert sorted(o["Key"][len(prefix) :] for o in listed) == [
        kept.path.name,
        kept.path.name + ".json",
        "notes.txt",
    ]
    assert [e.path.name for e in remote.entries()] == [kept.path.name]


def test_an_unreachable_endpoint_is_one_line_with_what_to_check(
    pg_server, database, tmp_path, env, s3_server
):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {**env, "PGKURA_S3_ENDPOINT": endpoint}
    result = invoke("db.backup", env=env, cwd=tmp_path, secret=s3_server.secret_key)
    assert result.returncode == 1
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "is complete and kept, but upload s3://" in error
    assert f"cannot reach the S3 endpoint {endpoint} → check PGKURA_S3_ENDPOINT" in error
    assert "AWS_SECRET_ACCESS_KEY" in error
    assert "Traceback" not in result.stderr
    assert "uploadId" not in result.stderr + result.stdout
    assert "Could not connect" not in result.stderr  # botocore's words, with the request's URL


def test_credentials_in_the_offsite_url_are_refused_and_never_shown(tmp_path, env):
    env = {**env, "PGKURA_OFFSITE_URL": "s3://AKIAEXAMPLE:wJalr/XUtnFEMI@bucket/p"}
    result = invoke("db.backups", "--remote", env=env, cwd=tmp_path, secret="wJalr/XUtnFEMI")
    assert result.returncode == 1
    assert "PGKURA_OFFSITE_URL='s3://***@bucket/p'" in result.stderr
    assert "the keys go in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in result.stderr
    assert "AKIAEXAMPLE" not in result.stderr


def test_the_listing_reads_one_level_beside_pgbackrests_repository(s3_server, bucket):
    """PITR keeps pgBackRest's repository under <prefix>/pgbackrest (thousands of WAL objects
    in a week): the dumps' listing must neither walk it nor take its objects for dumps."""
    remote = store(s3_server, bucket)
    dump = "app_20261130_031500.sql.gz"
    put = remote.client.put_object
    put(Bucket=bucket, Key=f"{PREFIX}/{dump}", Body=b"x")
    put(Bucket=bucket, Key=f"{PREFIX}/{dump}.json", Body=b"{}")
    repo = f"{PREFIX}/pgbackrest"
    for n in range(30):
        put(Bucket=bucket, Key=f"{repo}/archive/db/18-1/0000000100000000/{n:024X}-ab.gz", Body=b"w")
    # dump-shaped names inside the repository's folder are not dumps either
    put(Bucket=bucket, Key=f"{repo}/{dump}", Body=b"x")
    put(Bucket=bucket, Key=f"{repo}/{dump}.json", Body=b"{}")
    returned: list[str] = []

    def count(parsed: dict, **_: object) -> None:
        returned.extend(obj["Key"] for obj in parsed.get("Contents", []))

    remote.client.meta.events.register("after-call.s3.ListObjectsV2", count)
    assert [e.path.name for e in remote.entries()] == [dump]
    assert sorted(returned) == [f"{PREFIX}/{dump}", f"{PREFIX}/{dump}.json"]
