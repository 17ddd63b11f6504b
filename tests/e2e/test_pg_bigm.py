"""The full image (pgvector base + pg_bigm built from PG_BIGM_SOURCE) with the example schema
(examples/documents): both extensions, the committed schema snapshot, and Japanese search
through the bigram index, on a real engine; and a fresh clone's clean start."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator

import psycopg
import pytest

from pgkura.config.settings import load_settings
from tests.conftest import EXAMPLE_SCHEMA, ROOT, copy_tracked, with_examples
from tests.japanese_search import CHECKS, check_like_uses_the_bigram_index, load

from .conftest import TARGET, Project

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        TARGET != "full", reason=f"PGKURA_E2E_TARGET={TARGET}: the image has no pg_bigm"
    ),
]


def _connect(p: Project) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=p.port,
        user="app",
        dbname="app",
        password=p.env["POSTGRES_PASSWORD"],
        autocommit=True,
    )


@pytest.fixture(scope="module")
def example(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The full image up with db/init.sql, the example migrations applied and the documents
    loaded."""
    base = tmp_path_factory.mktemp("bigm")
    schema = with_examples(base / "examples")
    proj = Project(base, fixtures=schema, extensions="vector,pg_bigm")
    proj.env["PGKURA_IMAGE"] = "pgkura-postgres:e2e-full"
    try:
        proj.up_and_migrate()
        with _connect(proj) as conn:
            load(conn)
        yield proj
    finally:
        gone = proj.invoke("db.down", "--volumes", "--yes", "--no-backup")
        assert gone.returncode == 0, gone.stderr


def test_the_committed_schema_is_what_the_container_builds(example):
    assert (example.schema / "schema.sql").read_text() == (
        EXAMPLE_SCHEMA / "schema.sql"
    ).read_text()
    drift = example.invoke("db.drift")
    assert drift.returncode == 0, drift.stdout + drift.stderr


def test_extensions_shows_both_installed(example):
    result = example.invoke("db.extensions")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "installed" in lines["vector"]
    assert "installed" in lines["pg_bigm"]
    assert "1.2" in lines["pg_bigm"]


def test_doctor_finds_pg_bigm_preloaded(example):
    result = example.invoke("db.doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "shared_preload_libraries" not in result.stdout


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_japanese_search_on_the_full_image(example, check):
    with _connect(example) as conn:
        check(conn)


def test_a_restored_backup_searches_through_the_index(example):
    backup = example.invoke("db.backup")
    assert backup.returncode == 0, backup.stderr
    restored = example.invoke("db.restore", "latest", "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    with _connect(example) as conn:
        check_like_uses_the_bigram_index(conn)


def test_a_missing_or_different_archive_stops_the_build_before_docker(example, tmp_path):
    missing = example.invoke("docker.build", PG_BIGM_SOURCE=str(tmp_path / "none.tar.gz"))
    assert missing.returncode == 1
    assert f"PG_BIGM_SOURCE {tmp_path / 'none.tar.gz'} does not exist" in missing.stderr
    source = load_settings(ROOT).pg_bigm.path
    if source is None:
        pytest.skip("PG_BIGM_SOURCE is a URL here: no local archive to check a hash against")
    wrong = example.invoke("docker.build", PG_BIGM_SHA256="0" * 64)
    assert wrong.returncode == 1
    assert "a different or damaged archive. Nothing was built" in wrong.stderr
    assert not list((ROOT / "docker" / "postgres" / "pg_bigm-source").glob("*.tar.gz"))


def test_the_dockerfile_checks_the_sha256_itself(engine, tmp_path):
    """Plain `docker build` (no pgkura): an archive put in pg_bigm-source/ with the wrong hash
    fails the pg_bigm stage."""
    source = load_settings(ROOT).pg_bigm.path
    if source is None:
        pytest.skip("PG_BIGM_SOURCE is a URL here: no local archive to build from")
    context = tmp_path / "context"
    copy_tracked(context, "docker", "postgres")
    shutil.copy(source, context / "pg_bigm-source" / source.name)
    good = hashlib.sha256(source.read_bytes()).hexdigest()
    base = os.environ.get("PG_BASE_IMAGE", "")
    network = os.environ.get("PGKURA_BUILD_NETWORK", "")

    def build(sha256: str) -> subprocess.CompletedProcess[str]:
        argv = ["docker", "build", "--force-rm", "--target", "pg_bigm",
                "--build-arg", f"PG_BIGM_SHA256={sha256}",
                "--build-arg", f"PG_BIGM_SOURCE={source.name}"]  # fmt: skip
        argv += ["--build-arg", f"PG_BASE_IMAGE={base}"] if base else []
        argv += ["--network", network] if network else []
        return subprocess.run(
            [*argv, "-t", "pgkura-e2e:pg_bigm-stage", str(context)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )

    def stopped() -> set[str]:
        listed = ["docker", "ps", "-a", "-q", "--filter", "status=exited"]
        return set(subprocess.run(listed, capture_output=True, text=True).stdout.split())

    before = stopped()
    wrong = build("f" * 64)
    assert wrong.returncode != 0
    assert "FAILED" in wrong.stdout + wrong.stderr  # sha256sum --check
    assert stopped() <= before  # the failed step's container is removed too (none is new)
    right = build(good)
    assert right.returncode == 0, right.stdout[-2000:] + right.stderr
    subprocess.run(["docker", "image", "rm", "pgkura-e2e:pg_bigm-stage"], capture_output=True)


def test_a_fresh_clone_starts_clean_and_adds_the_example_when_asked(engine, tmp_path):
    """ "Run it" as CI runs it (db/ of a fresh clone, then a backup), then `db.example`."""
    fresh = Project(tmp_path, fixtures=ROOT / "db", extensions="vector,pg_bigm")
    fresh.env["PGKURA_IMAGE"] = "pgkura-postgres:e2e-full"
    try:
        for step in (("db.up", "--build", "db.migrate"), ("db.backup",), ("db.verify", "latest")):
            done = fresh.invoke(*step)
            assert done.returncode == 0, done.stdout + done.stderr
        assert fresh.sql("SELECT to_regclass('documents') IS NULL").split()[2] == "t"

        added = fresh.invoke("db.example", "db.migrate")
        assert added.returncode == 0, added.stdout + added.stderr
        assert "applied 004_add_documents_language.sql" in added.stdout
        # the snapshot refresh: one line with its time, not the migrations seemingly run twice
        assert re.search(r"^refreshed \S+schema\.sql in \d+ s ", added.stdout, re.M)
        assert added.stderr.count("applying 001_create_documents.sql") == 1
        assert "scratch database" not in added.stderr
        assert "running init.sql" not in added.stderr
        built = (fresh.schema / "schema.sql").read_text()
        assert built == (EXAMPLE_SCHEMA / "schema.sql").read_text()
    finally:
        gone = fresh.invoke("db.down", "--volumes", "--yes", "--no-backup")
        assert gone.returncode == 0, gone.stderr
