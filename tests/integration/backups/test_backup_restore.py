"""Backups and restores on a real PostgreSQL 18 with the server's own (18.x) client tools."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import re
import threading
import time
from pathlib import Path
from urllib.parse import quote

import psutil
import psycopg
import pytest
from psycopg import sql

from pgkura.backups import safety_copies
from pgkura.backups.archive import verify
from pgkura.backups.drills import restore_test
from pgkura.backups.restore import restore
from pgkura.backups.store import BackupStore, read_manifest
from pgkura.backups.take import BACKUP_LOCK, BackupError, take_backup
from pgkura.clusters.throwaway import bin_dir
from pgkura.compression.zstd_stream import zstd
from pgkura.config.settings import load_settings
from pgkura.errors import PgkuraError, RestoreError
from pgkura.progress import Reporter
from pgkura.retention import Policy
from pgkura.units import size
from tests.conftest import large_objects_sql

from ..conftest import admin

QUIET = lambda _msg: None  # noqa: E731
FINGERPRINT = (
    "SELECT count(*), md5(string_agg(id::text || body || emb::text, ',' ORDER BY id)) FROM docs"
)


@pytest.fixture
def app_settings(pg_server, database, tmp_path):
    """Settings for DATABASE_URL = the test database, host tools = the server's own (18)."""
    with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
        conn.execute(
            "CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL, emb vector(3));"
            "INSERT INTO docs SELECT g, '全文検索のテスト ' || g || E'\\tタブ\\n改行 BEGIN;',"
            " ARRAY[g, g / 2.0, 1]::vector FROM generate_series(1, 3000) g;"
            "SELECT lo_from_bytea(0, '大きなオブジェクト'::bytea);"
        )
    env = {
        "DATABASE_URL": pg_server.url(database),
        "PGKURA_PG_BIN": str(bin_dir()),
        "PGKURA_BACKUP_DIR": "backups",
    }
    return load_settings(tmp_path, env)


def fingerprint(url: str) -> tuple[object, ...]:
    with psycopg.connect(url) as conn:
        docs = conn.execute(FINGERPRINT).fetchone()
        lo = conn.execute(
            "SELECT string_agg(convert_from(lo_get(oid), 'UTF8'), ',') FROM pg_largeobject_metadata"
        ).fetchone()
        return (*(docs or ()), *(lo or ()))


def test_round_trip_keeps_vectors_japanese_text_and_large_objects(
    app_settings, pg_server, database
):
    before = fingerprint(pg_server.url(database))
    done = take_backup(app_settings, log=QUIET)
    assert done.path.name.startswith(f"{database}_")
    assert done.path.stat().st_mode & 0o777 == 0o600
    assert done.manifest_path.stat().st_mode & 0o777 == 0o600
    manifest = read_manifest(done.path)
    assert manifest["sha256"] == verify(done.path).sha256
    assert manifest["server_version"].startswith("18.")
    assert manifest["source"].startswith("host pg_dump 18.")
    with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
        conn.execute("DELETE FROM docs WHERE id > 10; UPDATE docs SET body = 'changed'")
    changed = fingerprint(pg_server.url(database))
    restored = restore(app_settings, done.path, log=QUIET)
    assert fingerprint(pg_server.url(database)) == before
    # the state just before the restore was kept: a copy of the database on the same server
    assert restored.safety_backup is None
    assert restored.safety_copy is not None
    assert restored.safety_copy.startswith(f"{database}_before_restore_")
    assert fingerprint(pg_server.url(restored.safety_copy)) == changed
    # undoing the restore puts the copy back; what was there is kept in its turn
    (copy,) = safety_copies.copies(app_settings, database)
    replaced = safety_copies.swap_back(app_settings, database, copy)
    assert fingerprint(pg_server.url(database)) == changed
    assert fingerprint(pg_server.url(replaced)) == before
    assert [c.name for c in safety_copies.copies(app_settings, database)] == [replaced]
    drop(pg_server, replaced)


# Several large objects: one over 1 MiB with another owner and a comment, a Japanese one, an
# empty one (their OIDs are kept by pg_dump)
LARGE_OBJECTS = """
DO $$ BEGIN CREATE ROLE pgkura_lo_owner NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
""" + large_objects_sql(70001, "pgkura_lo_owner")
# not the owner: db.backup dumps with --no-owner (the restoring role owns what it restores)
LARGE_OBJECT_FINGERPRINT = """
SELECT oid::bigint, obj_description(oid, 'pg_largeobject'), length(lo_get(oid)),
       md5(lo_get(oid))
  FROM pg_largeobject_metadata ORDER BY oid
"""


def large_objects(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(LARGE_OBJECT_FINGERPRINT).fetchall()


@pytest.mark.parametrize("safety_backup", [True, False])
def test_large_objects_come_back_whole_with_their_comment(
    app_settings, pg_server, database, safety_backup
):
    url = pg_server.url(database)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LARGE_OBJECTS)
    before = large_objects(url)
    assert len(before) == 4  # the fixture's own and three more
    assert before[-2][2] == 1_280_000
    done = take_backup(app_settings, log=QUIET)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT lo_unlink(70001); SELECT lo_put(70002, 1100000, 'x'::bytea);"
                     "COMMENT ON LARGE OBJECT 70002 IS NULL")  # fmt: skip
    restored = restore(app_settings, done.path, safety_backup=safety_backup, log=QUIET)
    assert large_objects(url) == before
    if restored.safety_copy:
        drop(pg_server, restored.safety_copy)


def test_a_restore_failing_after_the_large_objects_leaves_them_as_they_were(
    app_settings, pg_server, database, tmp_path
):
    """pg_dump's own COMMIT after the large objects must not commit part of the restore."""
    url = pg_server.url(database)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LARGE_OBJECTS)
    done = take_backup(app_settings, log=QUIET)
    text = gzip.decompress(done.path.read_bytes())
    assert b"lowrite" in text[: text.rindex(b"COMMIT;")]
    at = text.rindex(b"--\n-- PostgreSQL database dump complete")
    broken = tmp_path / "broken.sql.gz"
    broken.write_bytes(gzip.compress(text[:at] + b"SELECT 1/0;\n" + text[at:]))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT lo_unlink(70001); UPDATE docs SET body = 'kept' WHERE id = 1")
    before = fingerprint(url), large_objects(url)
    with pytest.raises(RestoreError, match="division by zero"):
        restore(app_settings, broken, safety_backup=False, log=QUIET)
    assert (fingerprint(url), large_objects(url)) == before


def drop(pg_server, name: str) -> None:
    with admin(pg_server) as conn:
        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(query.format(sql.Identifier(name)))


def test_safety_copies_follow_the_retention_policy(app_settings, pg_server, database):
    done = take_backup(app_settings, log=QUIET)
    keep_one = dataclasses.replace(app_settings, backup_retention=Policy(last=1))
    messages: list[str] = []
    first = restore(keep_one, done.path, log=messages.append).safety_copy
    time.sleep(1.1)  # copies are named by the second
    second = restore(keep_one, done.path, log=messages.append).safety_copy
    assert first is not None
    assert second is not None
    assert [c.name for c in safety_copies.copies(app_settings, database)] == [second]
    assert f"retention: dropped the safety copy {first}" in messages
    drop(pg_server, second)


def test_prune_lists_the_safety_copies_and_drops_all_but_the_newest(
    app_settings, pg_server, database, tmp_path
):
    """With no retention rule, restores keep every copy; `db.prune --yes` keeps the newest."""
    from tests.conftest import run_invoke

    done = take_backup(app_settings, log=QUIET)
    first = restore(app_settings, done.path, log=QUIET).safety_copy
    time.sleep(1.1)  # copies are named by the second
    second = restore(app_settings, done.path, log=QUIET).safety_copy
    assert first is not None
    assert second is not None
    env = {
        "DATABASE_URL": app_settings.database_url or "",
        "PGKURA_PG_BIN": str(bin_dir()),
        "PGKURA_BACKUP_DIR": str(app_settings.backup_dir),
        "PGKURA_ENV_FILE": str(tmp_path / "none.env"),
    }
    listed = run_invoke("db.prune", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert rows[first].endswith("DROP")
    assert "keep: one of the newest 1" in rows[second]
    assert "1 safety copy would be deleted" in listed.stdout
    planned = json.loads(run_invoke("db.prune", "--json", env=env, cwd=tmp_path).stdout)
    copies = planned["safety_copies"]
    assert copies["keep_rule"] == "the newest, as no retention rule is set"
    assert [(c["name"], c["keep"]) for c in copies["copies"]] == [(first, False), (second, True)]
    assert [c.name for c in safety_copies.copies(app_settings, database)] == [first, second]

    pruned = run_invoke("db.prune", "--yes", env=env, cwd=tmp_path)
    assert pruned.returncode == 0, pruned.stderr
    assert f"dropped the safety copy {first}" in pruned.stdout
    assert [c.name for c in safety_copies.copies(app_settings, database)] == [second]
    assert done.path.exists()  # no file rule is set: the files stay
    drop(pg_server, second)


def test_a_safety_copy_keeps_owner_settings_grants_and_says_what_it_is(
    app_settings, pg_server, database
):
    with admin(pg_server) as conn:
        conn.execute("DROP ROLE IF EXISTS pgkura_reader; CREATE ROLE pgkura_reader")
        ident = sql.Identifier(database)
        conn.execute(sql.SQL("ALTER DATABASE {} SET work_mem = '7MB'").format(ident))
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO pgkura_reader").format(ident))
    copy = safety_copies.take(app_settings, database, "before a test", QUIET)
    assert copy is not None
    try:
        with admin(pg_server) as conn:
            facts = (
                "SELECT pg_get_userbyid(d.datdba), d.datacl::text[], "
                "(SELECT setconfig FROM pg_db_role_setting WHERE setdatabase = d.oid "
                "AND setrole = 0), shobj_description(d.oid, 'pg_database') "
                "FROM pg_database d WHERE datname = %s"
            )
            original = conn.execute(facts, (database,)).fetchone()
            copied = conn.execute(facts, (copy,)).fetchone()
        assert original is not None
        assert copied is not None
        assert copied[:3] == original[:3]
        assert copied[2] == ["work_mem=7MB"]
        assert copied[3] == f"pgkura safety copy of {database}: before a test"
        assert fingerprint(pg_server.url(copy)) == fingerprint(pg_server.url(database))
    finally:
        drop(pg_server, copy)
        with admin(pg_server) as conn:
            conn.execute(sql.SQL("DROP OWNED BY pgkura_reader; DROP ROLE pgkura_reader"))


def test_without_the_database_to_itself_a_safety_file_is_taken_and_undo_waits(
    app_settings, pg_server, database, monkeypatch
):
    """pgkura never ends the application's sessions: a copy (or putting one back) needs the
    database to itself, so with a session connected a safety backup file is taken instead, and
    an undo is refused until the application stops. A refused copy falls back the same way."""
    done = take_backup(app_settings, log=QUIET)
    messages: list[str] = []
    with psycopg.connect(pg_server.url(database), autocommit=True) as application:
        application.execute("SELECT 1")
        restored = restore(app_settings, done.path, log=messages.append)
        assert not application.closed
    assert restored.safety_copy is None
    assert restored.safety_backup is not None
    assert verify(restored.safety_backup.path).ok
    assert any("1 other session(s) are connected" in m for m in messages)

    taken = "pgkura_name_in_use"
    with admin(pg_server) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(taken)))
    monkeypatch.setattr(safety_copies, "copy_name", lambda _db, _kind: taken)
    messages.clear()
    try:
        refused = restore(app_settings, done.path, log=messages.append)
    finally:
        drop(pg_server, taken)
    assert refused.safety_copy is None
    assert refused.safety_backup is not None
    assert any(f'cannot copy {database} (database "{taken}" already exists)' in m for m in messages)
    monkeypatch.undo()

    copy = restore(app_settings, done.path, log=QUIET).safety_copy
    assert copy is not None
    newest = safety_copies.copies(app_settings, database)[-1]
    with psycopg.connect(pg_server.url(database), autocommit=True) as application:
        application.execute("SELECT 1")
        with pytest.raises(PgkuraError, match="1 session\\(s\\) are connected"):
            safety_copies.swap_back(app_settings, database, newest)
    drop(pg_server, copy)


def test_restore_into_another_database_created_on_request(app_settings, pg_server, database):
    done = take_backup(app_settings, log=QUIET)
    with pytest.raises(RestoreError, match="pass --create"):
        restore(app_settings, done.path, dbname="copy_of_app", log=QUIET)
    try:
        restore(app_settings, done.path, dbname="copy_of_app", create=True, log=QUIET)
        assert fingerprint(pg_server.url("copy_of_app")) == fingerprint(pg_server.url(database))
    finally:
        with admin(pg_server) as conn:
            conn.execute("DROP DATABASE IF EXISTS copy_of_app WITH (FORCE)")


def _damaged_copies(path: Path, tmp_path: Path) -> dict[str, Path]:
    raw = path.read_bytes()
    text = gzip.decompress(raw)
    cut_between_statements = text[: text.index(b"\n--\n-- PostgreSQL database dump complete")]
    cut_inside_copy = text[: text.index(b"\\.\n", text.index(b"COPY public.docs"))]
    copies = {
        "truncated gzip": raw[: len(raw) // 2],
        "corrupted byte": raw[:200] + bytes([raw[200] ^ 0x55]) + raw[201:],
        "cut between statements": gzip.compress(cut_between_statements),
        "cut inside COPY data": gzip.compress(cut_inside_copy),
    }
    out = {}
    for name, data in copies.items():
        p = tmp_path / (name.replace(" ", "_") + ".sql.gz")
        p.write_bytes(data)
        out[name] = p
    return out


def test_damaged_archives_are_refused_and_the_database_is_untouched(
    app_settings, pg_server, database, tmp_path
):
    done = take_backup(app_settings, log=QUIET)
    with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
        conn.execute("INSERT INTO docs VALUES (99999, 'written after the backup', '[0,0,0]')")
    before = fingerprint(pg_server.url(database))
    for name, path in _damaged_copies(done.path, tmp_path).items():
        assert not verify(path).ok, name
        with pytest.raises(RestoreError, match="nothing was committed") as err:
            restore(app_settings, path, safety_backup=False, log=QUIET)
        assert fingerprint(pg_server.url(database)) == before, name
        assert "database is unchanged" in str(err.value)


def test_zstd_backups_round_trip_and_damage_is_refused(app_settings, pg_server, database, tmp_path):
    before = fingerprint(pg_server.url(database))
    done = take_backup(app_settings, compression="zstd", log=QUIET)
    assert done.path.name.endswith(".sql.zst")
    assert done.manifest["compression"] == "zstd level 6"
    assert done.path.stat().st_mode & 0o777 == 0o600
    check = verify(done.path)
    assert check.ok, check.problems
    assert check.kind == "zstd"
    assert check.sha256 == done.manifest["sha256"]
    text = zstd.decompress(done.path.read_bytes())
    assert b"-- PostgreSQL database dump complete" in text[-300:]
    assert BackupStore(app_settings.backup_dir).latest(database) == done.path
    with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
        conn.execute("DELETE FROM docs WHERE id > 10")
    restore(app_settings, done.path, safety_backup=False, log=QUIET)
    assert fingerprint(pg_server.url(database)) == before
    raw = done.path.read_bytes()
    cut = text[: text.index(b"\\.\n", text.index(b"COPY public.docs"))]
    damaged = {
        "truncated": raw[: len(raw) // 2],
        "corrupted": raw[:300] + bytes([raw[300] ^ 0x55]) + raw[301:],
        "cut inside COPY data": zstd.compress(cut),
    }
    with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
        conn.execute("UPDATE docs SET body = 'after the backup' WHERE id = 1")
    changed = fingerprint(pg_server.url(database))
    for name, data in damaged.items():
        path = tmp_path / f"{name.replace(' ', '_')}.sql.zst"
        path.write_bytes(data)
        assert not verify(path).ok, name
        with pytest.raises(RestoreError, match="nothing was committed"):
            restore(app_settings, path, safety_backup=False, log=QUIET)
        assert fingerprint(pg_server.url(database)) == changed, name


def test_checksum_mismatch_with_the_manifest_is_refused(app_settings, pg_server, database):
    done = take_backup(app_settings, log=QUIET)
    other = take_backup(app_settings, log=QUIET)
    done.path.write_bytes(other.path.read_bytes())  # a whole, valid dump, but not this one
    check = verify(done.path)
    assert check.trailer_seen
    assert any("does not match the manifest" in p for p in check.problems)
    with pytest.raises(RestoreError, match="does not match the manifest"):
        restore(app_settings, done.path, safety_backup=False, log=QUIET)


def test_a_restore_failing_half_way_leaves_the_database_unchanged(
    app_settings, pg_server, database, tmp_path
):
    done = take_backup(app_settings, log=QUIET)
    text = gzip.decompress(done.path.read_bytes())
    at = text.index(b"COPY public.docs")
    broken = tmp_path / "broken.sql.gz"
    broken.write_bytes(gzip.compress(text[:at] + b"SELECT 1/0;\n" + text[at:]))
    with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
        conn.execute("UPDATE docs SET body = 'kept' WHERE id = 1")
    before = fingerprint(pg_server.url(database))
    with pytest.raises(RestoreError) as err:
        restore(app_settings, broken, safety_backup=False, log=QUIET)
    line = text[:at].count(b"\n") + 1
    assert f"dump line {line}: ERROR:  division by zero" in str(err.value)
    assert "rolled back" in str(err.value)
    assert fingerprint(pg_server.url(database)) == before


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_pg_dump_killed_mid_stream_leaves_no_file(app_settings, pg_server, database, compression):
    with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bulk AS SELECT g, md5(g::text) || md5((g * 7)::text) AS t "
            "FROM generate_series(1, 600000) g"
        )
    directory = app_settings.backup_dir
    killed: list[int] = []

    def kill_pg_dump() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not killed:
            partial = list(directory.glob(".*.partial")) if directory.is_dir() else []
            children = psutil.Process().children(recursive=True)
            dumps = [p for p in children if p.name() == "pg_dump"]
            if dumps and partial and partial[0].stat().st_size > 0:
                dumps[0].kill()
                killed.append(dumps[0].pid)
            time.sleep(0.002)

    killer = threading.Thread(target=kill_pg_dump)
    killer.start()
    with pytest.raises(BackupError, match="pg_dump was killed by signal 9"):
        take_backup(app_settings, log=QUIET, progress=SLOW_TERMINAL, compression=compression)
    killer.join()
    assert killed
    assert sorted(p.name for p in directory.iterdir()) == [BACKUP_LOCK]  # no partial file


class _Slow(io.StringIO):
    def write(self, text: str) -> int:
        time.sleep(0.05)
        return super().write(text)


# a slow terminal drawing every block: the dump stays mid-stream
SLOW_TERMINAL = Reporter(_Slow(), tty=True, settle=0, redraw=0, heartbeat=None)


def every_block() -> tuple[Reporter, io.StringIO]:
    """A log that hears every block (intervals of 0, no background tick): progress shows on
    a small database without a timing assumption."""
    out = io.StringIO()
    return Reporter(out, settle=0, every=0, heartbeat=None), out


def test_backup_and_restore_report_progress_with_a_percentage(app_settings, pg_server, database):
    with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bulk AS SELECT g, md5(g::text) AS t FROM generate_series(1, 200000) g"
        )
    progress, out = every_block()
    done = take_backup(app_settings, log=QUIET, progress=progress)
    assert done.manifest["database_size"] > done.manifest["plain_size"] / 2  # the estimate
    lines = out.getvalue().splitlines()
    assert len(lines) > 2
    # the estimate is the database's size on disk: marked as one
    assert all(re.match(r"backup: [\d.]+ \w+ of ~[\d.]+ MiB, ~\d+%, ", ln) for ln in lines[:-1])
    assert lines[-1].startswith(f"backup: {size(done.manifest['plain_size'])} in ")

    progress, out = every_block()
    restore(app_settings, done.path, log=QUIET, progress=progress)
    total = size(done.path.stat().st_size)
    reading = out.getvalue().splitlines()
    assert len(reading) > 2
    assert all(f" of {total}, " in ln and re.search(r", \d+%, ", ln) for ln in reading[:-1])
    assert reading[-1].startswith(f"restore: {total} in ")
    assert verify(done.path, progress).ok
    assert out.getvalue().splitlines()[-1].startswith(f"verify {done.path.name}: {total} in ")


def test_unwritable_target_fails_before_dumping(app_settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(BackupError, match=r"cannot write backups to .*a-file/sub"):
        take_backup(app_settings, output=blocker / "sub" / "x.sql.gz", log=QUIET)


def test_retention_deletes_only_its_own_files(app_settings, database):
    directory = app_settings.backup_dir
    directory.mkdir()
    foreign = [
        directory / f"{database}_20200101_000000.sql.gz",  # right name, no pgkura manifest
        directory / "other_20200101_000000.sql.gz",
        directory / "notes.txt",
    ]
    for path in foreign:
        path.write_text("not ours")
    made = [take_backup(app_settings, keep=2, log=QUIET).path for _ in range(3)]
    assert [p.exists() for p in made] == [False, True, True]
    assert all(p.exists() for p in foreign)
    assert [e.path for e in BackupStore(directory).own(database)] == made[1:]


def test_schema_only_and_data_only(app_settings, pg_server, database):
    schema = take_backup(app_settings, mode="schema", log=QUIET)
    text = gzip.decompress(schema.path.read_bytes())
    assert b"CREATE TABLE public.docs" in text
    assert b"COPY public.docs" not in text
    data = take_backup(app_settings, mode="data", log=QUIET)
    text = gzip.decompress(data.path.read_bytes())
    assert b"CREATE TABLE" not in text
    assert b"COPY public.docs" in text


def test_cluster_dump_includes_roles_and_is_not_restored_into_one_database(app_settings):
    done = take_backup(app_settings, mode="cluster", log=QUIET)
    assert done.path.name.startswith(f"{app_settings.target.dbname}_cluster_")
    assert b"CREATE ROLE postgres" in gzip.decompress(done.path.read_bytes())
    assert verify(done.path).ok
    with pytest.raises(RestoreError, match="whole-cluster dump"):
        restore(app_settings, done.path, log=QUIET)


def test_restore_test_counts_tables_and_rows(app_settings, pg_server):
    done = take_backup(app_settings, log=QUIET)
    assert restore_test(app_settings, done.path, QUIET) == (1, 3000)
    with admin(pg_server) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'pgkura_verify_%'")
        assert left.fetchall() == []


def test_restore_test_counts_partitioned_and_inherited_rows_once(app_settings, pg_server, database):
    with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE events (at date NOT NULL, n int) PARTITION BY RANGE (at);"
            "CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO "
            "('2026-01-01');"
            "CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO "
            "('2027-01-01');"
            "INSERT INTO events SELECT '2025-06-01'::date + g, g FROM generate_series(1, 400) g;"
            "CREATE TABLE animals (name text); CREATE TABLE cats (lives int) INHERITS (animals);"
            "INSERT INTO animals VALUES ('ant'); INSERT INTO cats VALUES ('tama', 9), ('mike', 9);"
        )
    done = take_backup(app_settings, log=QUIET)
    # docs 3000 + events 400 (in two partitions) + animals 1 + cats 2
    assert restore_test(app_settings, done.path, QUIET) == (6, 3403)


def test_old_host_tools_are_refused_for_the_container_target(app_settings, pg_server, database):
    """The container is not running: the host's pg_dump must be at least the server's version."""
    old = Path("/usr/lib/postgresql/15/bin")
    if not (old / "pg_dump").exists():
        pytest.skip("needs an older PostgreSQL client (Debian's postgresql-client-15) installed")
    local = dataclasses.replace(
        app_settings,
        database_url=None,
        postgres_port=pg_server.port,
        postgres_user="postgres",
        postgres_password=pg_server.password,
        postgres_db=database,
        container_name="pgkura-no-such-container",
        pg_bin=old,
    )
    warnings: list[str] = []
    with pytest.raises(
        PgkuraError, match=r"host's pg_dump is version 15\.\d+, older than the server"
    ):
        take_backup(local, log=warnings.append)
    assert "container pgkura-no-such-container is not running" in warnings[0]
    fallback = dataclasses.replace(local, pg_bin=bin_dir())
    assert verify(take_backup(fallback, log=QUIET).path).ok


def test_database_url_with_special_password(app_settings, pg_server, database, tmp_path):
    password = "p@ss:w%rd"
    with admin(pg_server) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE backup_user LOGIN SUPERUSER PASSWORD {}").format(
                sql.Literal(password)
            )
        )
    try:
        url = f"postgresql://backup_user:{quote(password, safe='')}@127.0.0.1:{pg_server.port}/{database}"
        settings = dataclasses.replace(app_settings, database_url=url)
        done = take_backup(settings, log=QUIET)
        restore(settings, done.path, safety_backup=False, log=QUIET)
        assert verify(done.path).ok
        assert password not in done.path.with_name(done.path.name + ".json").read_text()
    finally:
        with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
            conn.execute("REASSIGN OWNED BY backup_user TO postgres; DROP OWNED BY backup_user")
        with admin(pg_server) as conn:
            conn.execute("DROP ROLE backup_user")


def test_restore_cli_refuses_without_confirmation(app_settings, tmp_path):
    from tests.conftest import run_invoke

    done = take_backup(app_settings, log=QUIET)
    env = {k: v for k, v in os.environ.items() if k.startswith("PG") is False}
    env.update(
        {
            "DATABASE_URL": app_settings.database_url or "",
            "PGKURA_PG_BIN": str(bin_dir()),
            "PGKURA_ENV_FILE": str(tmp_path / "none.env"),
        }
    )
    result = run_invoke("db.restore", str(done.path), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "non-interactive run; pass --yes" in result.stderr


def test_the_restore_prompt_shows_the_backups_age_size_and_origin(app_settings, database):
    from pgkura.backups.consent import Consent
    from pgkura.backups.operations import restore_backup
    from pgkura.errors import ConfirmationRequired

    done = take_backup(app_settings, reason="before migrating", log=QUIET)
    asked: list[str] = []
    refused = Consent(interactive=True, ask=lambda q: asked.append(q) or "n")
    with pytest.raises(ConfirmationRequired, match="not confirmed"):
        restore_backup(app_settings, "latest", refused, log=QUIET)
    expected = (
        rf"replace the contents of {re.escape(database)} with {re.escape(done.path.name)} "
        rf"\(taken \d+ min ago, {re.escape(size(done.path.stat().st_size))}, of database "
        rf"{re.escape(database)} on PostgreSQL 18\.\d+, before migrating\)\? \[y/N\] "
    )
    assert re.fullmatch(expected, asked[0]), asked[0]


PARTITIONED = """
CREATE TABLE events (id bigint, at date NOT NULL, what text, PRIMARY KEY (id, at))
  PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE "出来事 2026" PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX events_what ON events (what);
INSERT INTO events SELECT g, date '2025-06-01' + g, '出来事 ' || g FROM generate_series(1, 400) g;
"""


@pytest.mark.parametrize("safety_backup", [True, False])
def test_a_restore_over_a_partitioned_table_with_a_primary_key(
    app_settings, pg_server, database, safety_backup
):
    """pg_dump --clean drops each partition's inherited primary key on its own, which the
    server refuses ("cannot drop inherited constraint"): found by the production rehearsal."""
    url = pg_server.url(database)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PARTITIONED)
    done = take_backup(app_settings, log=QUIET)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM events WHERE id > 100")
    restore(app_settings, done.path, safety_backup=safety_backup, log=QUIET)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (400,)
        keys = conn.execute(
            "SELECT conrelid::regclass::text, coninhcount FROM pg_constraint WHERE contype = 'p'"
            " AND conrelid::regclass::text ~ '^(events|\"出来事)' ORDER BY 1"
        ).fetchall()
    assert keys == [('"出来事 2026"', 1), ("events", 0), ("events_2025", 1)]


def test_an_applications_prepared_statements_on_extension_types_survive_a_restore(
    app_settings, pg_server, database
):
    """The dump drops and recreates its extensions; the application's sessions then hold
    statements prepared with the old `vector` type and fail ("cache lookup failed for type")
    until they reconnect: found by the production rehearsal. The restore keeps an extension
    that is already installed."""
    url = pg_server.url(database)
    done = take_backup(app_settings, log=QUIET)
    with psycopg.connect(url, autocommit=True) as app:
        query = "SELECT id FROM docs ORDER BY emb <-> %s::vector LIMIT 1"
        for _ in range(6):  # psycopg prepares a statement on its fifth use
            assert app.execute(query, ("[1,0.5,1]",)).fetchone() == (1,)
        restore(app_settings, done.path, safety_backup=False, log=QUIET)
        assert app.execute(query, ("[1,0.5,1]",)).fetchone() == (1,)
        app.execute("SELECT NULL::vector")
