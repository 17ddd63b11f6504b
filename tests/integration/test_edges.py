"""What users type and point us at, on a real PostgreSQL 18: names, passwords, flags, files."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pgkura.backups.archive import verify
from pgkura.backups.consent import Consent
from pgkura.backups.operations import restore_backup
from pgkura.backups.restore import restore
from pgkura.backups.safety_net import newer_safety_copy
from pgkura.backups.store import SAFETY, BackupStore, read_manifest
from pgkura.backups.take import take_backup
from pgkura.clusters.throwaway import bin_dir
from pgkura.config.settings import load_settings
from pgkura.connect.connection import ConnectionRefused, Refusal
from pgkura.engines.readiness import ready
from pgkura.errors import RestoreError
from tests.conftest import run_invoke

from .conftest import admin

QUIET = lambda _msg: None  # noqa: E731
YES = Consent(yes=True)


def _settings(tmp_path: Path, url: str, **extra: str):
    env = {"DATABASE_URL": url, "PGKURA_PG_BIN": str(bin_dir()), "PGKURA_BACKUP_DIR": "backups"}
    return load_settings(tmp_path, {**env, **extra})


def _container_kind(tmp_path: Path, pg_server, **extra: str):
    """Settings whose target is 'the container' but whose port is the throwaway server's."""
    env = {
        "PGKURA_ENV_FILE": str(tmp_path / "missing.env"),
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(pg_server.port),
        "POSTGRES_USER": "postgres",
        "PGKURA_CONTAINER": "pgkura-test-no-such-container",
        "PGKURA_CONNECT_WAIT": "30s",
    }
    return load_settings(tmp_path, {**env, **extra})


def test_a_wrong_password_is_refused_at_once_with_a_true_remedy(pg_server, tmp_path):
    settings = _container_kind(tmp_path, pg_server, POSTGRES_PASSWORD="not-the-password")
    with pytest.raises(ConnectionRefused) as err:
        ready(settings)
    message = str(err.value)
    assert err.value.refusal is Refusal.REFUSED
    assert "gave up after" not in message  # refused at once, not after the wait
    assert "password authentication failed" in message
    assert "only when it initialises an empty volume" in message
    assert "\\password" in message
    assert "not-the-password" not in message


def test_a_missing_password_says_where_it_should_be(pg_server, tmp_path):
    settings = _container_kind(tmp_path, pg_server)
    with pytest.raises(ConnectionRefused) as err:
        ready(settings)
    assert err.value.refusal is Refusal.NO_PASSWORD
    assert f"POSTGRES_PASSWORD in {tmp_path / 'missing.env'}" in str(err.value)
    assert ".env.example" in str(err.value)


def test_words_in_names_do_not_decide_anything(tmp_path):
    """A socket directory named like an error word is still just 'no server yet'."""
    odd = tmp_path / "invalid does not exist"
    odd.mkdir()
    settings = load_settings(
        tmp_path, {"DATABASE_URL": f"postgresql://u:pw@/invalid?host={odd}", "PGKURA_ENV_FILE": "x"}
    )
    with pytest.raises(ConnectionRefused) as err:
        ready(settings, timeout_ms=600)
    assert err.value.refusal is Refusal.UNREACHABLE
    assert "gave up after 600ms" in str(err.value)


@pytest.mark.parametrize("name", ["../../escape", "a/b", "..", "日本語 データ", "x\ty"])
def test_backups_of_any_database_name_stay_in_their_directory(pg_server, tmp_path, name):
    with admin(pg_server) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = pg_server.url(name)
        settings = _settings(tmp_path, url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')")
        made = [take_backup(settings, keep=2, log=QUIET).path for _ in range(3)]
        directory = settings.backup_dir
        assert [p.parent for p in made] == [directory] * 3
        assert sorted(p.name for p in tmp_path.iterdir()) == ["backups"]  # nothing escaped
        assert [p.exists() for p in made] == [False, True, True]  # retention sees them
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM t")
        path, _ = restore_backup(settings, "latest", YES, safety_backup=False, log=QUIET)
        assert path == made[-1]
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT v FROM t").fetchall() == [("kept",)]
    finally:
        with admin(pg_server) as conn:
            query = sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
            conn.execute(query)


def test_latest_is_stable_across_restores(pg_server, database, tmp_path):
    """With the application connected (so each restore keeps a safety backup *file*), `latest`
    stays the ordinary backup, and `--safety` undoes the last restore from its file."""
    url = pg_server.url(database)
    settings = _settings(tmp_path, url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v int); INSERT INTO t VALUES (1)")
    wanted = take_backup(settings, log=QUIET).path
    with psycopg.connect(url, autocommit=True) as application:
        for _ in range(2):  # twice: the second must not restore the first one's safety copy
            application.execute("INSERT INTO t VALUES (2)")
            path, done = restore_backup(settings, "latest", YES, log=QUIET)
            assert path == wanted
            assert done.safety_backup is not None
            assert read_manifest(done.safety_backup.path)["purpose"] == SAFETY
            assert application.execute("SELECT v FROM t").fetchall() == [(1,)]
        last_safety = BackupStore(settings.backup_dir).latest(database, safety=True)
        assert newer_safety_copy(settings, database) is None
        undo, _ = restore_backup(settings, "latest", YES, from_safety=True, log=QUIET)
        assert undo == last_safety
        assert application.execute("SELECT v FROM t ORDER BY v").fetchall() == [(1,), (2,)]


@pytest.mark.parametrize(
    "content",
    [b"plain text, not a backup\n", gzip.compress(b"SELECT 1;\n"), b"\x1f\x8b broken"],
)
def test_a_file_that_is_not_a_backup_is_refused_before_any_safety_backup(
    pg_server, database, tmp_path, content
):
    settings = _settings(tmp_path, pg_server.url(database))
    bogus = tmp_path / "bogus.sql.gz"
    bogus.write_bytes(content)
    with pytest.raises(RestoreError, match="no safety backup was taken"):
        restore(settings, bogus, log=QUIET)
    assert not settings.backup_dir.exists()


def _cli(tmp_path: Path, url: str, *args: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        {
            "DATABASE_URL": url,
            "PGKURA_PG_BIN": str(bin_dir()),
            "PGKURA_ENV_FILE": str(tmp_path / "none.env"),
            "PGKURA_BACKUP_DIR": str(tmp_path / "backups"),
        }
    )
    return run_invoke(*args, env=env, cwd=tmp_path)


def test_bad_flag_values_are_refused_before_anything_runs(pg_server, database, tmp_path):
    url = pg_server.url(database)
    first = _cli(tmp_path, url, "db.backup")
    assert first.returncode == 0, first.stderr
    before = sorted((tmp_path / "backups").iterdir())
    for flags, words in [
        (["--keep", "-1"], "--keep='-1' from the command line is invalid: expected a whole number"),
        (
            ["--level", "10"],
            "--level='10' from the command line is invalid: expected a compression level",
        ),
        (["--level", "0"], "--level='0' from the command line is invalid"),
    ]:
        result = _cli(tmp_path, url, "db.backup", *flags)
        assert result.returncode == 1
        assert words in result.stderr
        assert "Traceback" not in result.stderr
        assert sorted((tmp_path / "backups").iterdir()) == before  # nothing made or deleted
    env_form = run_invoke(
        "db.backup",
        env={"PGKURA_ENV_FILE": str(tmp_path / "none.env"), "PGKURA_BACKUP_KEEP": "-1"},
        cwd=tmp_path,
    )
    assert "PGKURA_BACKUP_KEEP='-1' from the environment is invalid: expected a whole number" in (
        env_form.stderr
    )


def test_verify_accepts_latest(pg_server, database, tmp_path):
    url = pg_server.url(database)
    assert _cli(tmp_path, url, "db.backup").returncode == 0
    result = _cli(tmp_path, url, "db.verify", "latest")
    assert result.returncode == 0, result.stderr
    assert "gzip intact, dump complete" in result.stdout
    made = BackupStore(tmp_path / "backups").latest(database)
    assert verify(made).ok
    assert made.name in result.stdout
