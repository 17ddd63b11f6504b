"""The invoke tasks as a person or CI runs them: exit codes, messages, no tracebacks."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from pgkura.clusters.throwaway import bin_dir
from tests.conftest import EXAMPLE_SCHEMA, ROOT, run_invoke


def invoke(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_invoke(*args, env={"PGKURA_ENV_FILE": str(cwd / ".env"), **env}, cwd=cwd)


def test_migrate_status_rollback_through_invoke(pg_server, database, write_migration, tmp_path):
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    write_migration("001_a.down.sql", "DROP TABLE a;")
    env = {
        "DATABASE_URL": pg_server.url(database),
        "PGKURA_MIGRATIONS_DIR": str(write_migration.directory),
    }
    status = invoke("db.status", "--check", env=env, cwd=tmp_path)
    assert status.returncode == 3, status.stderr
    assert "pending" in status.stdout
    migrate = invoke("db.migrate", env=env, cwd=tmp_path)
    assert migrate.returncode == 0, migrate.stderr
    assert "applied 001_a.sql" in migrate.stdout
    assert pg_server.password not in migrate.stdout + migrate.stderr
    assert "postgresql://postgres:***@127.0.0.1" in migrate.stderr
    assert invoke("db.status", "--check", env=env, cwd=tmp_path).returncode == 0

    refused = invoke("db.rollback", env=env, cwd=tmp_path)
    assert refused.returncode == 1
    assert "without confirmation in a non-interactive run; pass --yes" in refused.stderr
    assert "Traceback" not in refused.stderr
    done = invoke("db.rollback", "--yes", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "rolled back 001_a" in done.stdout


def test_bad_setting_is_one_line_not_a_traceback(tmp_path):
    (tmp_path / ".env").write_text("POSTGRES_PORT=fifty\n")
    result = invoke("db.status", env={}, cwd=tmp_path)
    assert result.returncode == 1
    assert "POSTGRES_PORT='fifty'" in result.stderr
    assert "Traceback" not in result.stderr


def test_new_creates_the_next_file(tmp_path):
    env = {"PGKURA_MIGRATIONS_DIR": str(tmp_path / "m")}
    result = invoke("db.new", "add users", "--down", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "001_add_users.down.sql",
        "001_add_users.sql",
    ]


def test_example_adds_the_example_schema_after_the_projects_own(tmp_path):
    """Nothing of the example is applied unless asked; asked, it follows the user's history."""
    env = {"PGKURA_MIGRATIONS_DIR": str(tmp_path / "m")}
    assert invoke("db.new", "add users", env=env, cwd=tmp_path).returncode == 0
    result = invoke("db.example", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    added = sorted(p.name for p in (tmp_path / "m").iterdir() if p.name != "001_add_users.sql")
    assert added == [
        "002_create_documents.sql",
        "003_documents_embedding_hnsw.sql",
        "004_documents_body_bigm.sql",
        "005_add_documents_language.down.sql",
        "005_add_documents_language.sql",
    ]
    source = EXAMPLE_SCHEMA / "migrations" / "001_create_documents.sql"
    assert (tmp_path / "m" / added[0]).read_bytes() == source.read_bytes()
    assert "created " in result.stdout

    again = invoke("db.example", env=env, cwd=tmp_path)
    assert again.returncode == 1
    assert "already in" in again.stderr
    assert "Traceback" not in again.stderr


def test_a_failure_leaves_an_accurate_account_of_what_committed(
    pg_server, database, write_migration, tmp_path
):
    """Each file's line appears when it commits; the failing file's error follows, with no
    library warning (a pipeline aborted by the error once logged one)."""
    write_migration("001_a.sql", "CREATE TABLE a (id int);")
    write_migration("001_a.down.sql", "DROP TABLE a;")
    write_migration("002_b.sql", "CREATE TABLE b (id int);")
    write_migration("002_b.down.sql", "DROP TABLE b;")
    # an error early in a long file: psycopg meets it while the pipeline is still being filled
    write_migration("003_c.sql", "CREATE TABLE c (id int);\nSELECT nope;\n" + "SELECT 1;\n" * 3000)
    env = {
        "DATABASE_URL": pg_server.url(database),
        "PGKURA_MIGRATIONS_DIR": str(write_migration.directory),
    }
    failed = invoke("db.migrate", env=env, cwd=tmp_path)
    assert failed.returncode == 1
    lines = failed.stdout.splitlines()
    assert [line.split(" (")[0] for line in lines] == ["applied 001_a.sql", "applied 002_b.sql"]
    assert "003_c.sql:2:8: ERROR 42703" in failed.stderr
    assert "error ignored" not in failed.stderr
    assert "Pipeline" not in failed.stderr

    (write_migration.directory / "003_c.sql").unlink()
    write_migration("001_a.down.sql", "DROP TABLE no_such_table;")
    undo = invoke("db.rollback", "--steps", "2", "--yes", env=env, cwd=tmp_path)
    assert undo.returncode == 1
    assert undo.stdout.splitlines()[0].startswith("rolled back 002_b (")
    assert "rolled back 001_a" not in undo.stdout
    assert "no_such_table" in undo.stderr


def test_restore_then_undo_through_invoke(pg_server, database, tmp_path):
    """The default restore keeps a copy of the database; `latest --safety` puts it back."""
    url = pg_server.url(database)
    backups = tmp_path / "b"  # relative paths resolve against the project, not the cwd
    env = {"DATABASE_URL": url, "PGKURA_PG_BIN": str(bin_dir()), "PGKURA_BACKUP_DIR": str(backups)}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('backed up')")
    assert invoke("db.backup", env=env, cwd=tmp_path).returncode == 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE t SET v = 'changed since'")
    restored = invoke("db.restore", "latest", "--yes", env=env, cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert f"the previous contents are in database {database}_before_restore_" in restored.stdout
    doctor = invoke("db.doctor", env=env, cwd=tmp_path)
    assert "1 safety copy kept by restores" in doctor.stdout
    undone = invoke("db.restore", "latest", "--safety", "--yes", env=env, cwd=tmp_path)
    assert undone.returncode == 0, undone.stderr
    assert f"{database} holds again what it held before the last restore" in undone.stdout
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [("changed since",)]
        leftovers = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{database}\\_%",)
        ).fetchall()
    assert len(leftovers) == 1  # what the restore had made, kept as a copy in its turn
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        for (name,) in leftovers:
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))


def test_backups_list_from_the_manifests_and_read_the_files_on_request(
    pg_server, database, tmp_path
):
    """The listing trusts what each manifest recorded (a changed size shows at once); only
    --verify reads the files."""
    backups = tmp_path / "b"
    env = {
        "DATABASE_URL": pg_server.url(database),
        "PGKURA_PG_BIN": str(bin_dir()),
        "PGKURA_BACKUP_DIR": str(backups),
    }
    for _ in range(2):
        assert invoke("db.backup", env=env, cwd=tmp_path).returncode == 0
    flipped, cut = sorted(backups.glob("*.sql.gz"))
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the same size: only reading the file finds it
    flipped.write_bytes(bytes(data))
    cut.write_bytes(cut.read_bytes()[:-10])

    listed = invoke("db.backups", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert rows[flipped.name].endswith("complete when taken")
    assert f"CHECK: {cut.stat().st_size} bytes on disk, the manifest recorded" in rows[cut.name]
    assert "`invoke db.backups --verify` reads every file" in listed.stdout

    verified = invoke("db.backups", "--verify", env=env, cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    rows = {line.split()[0]: line for line in verified.stdout.splitlines()}
    assert "FAILED: " in rows[flipped.name]
    assert "FAILED: " in rows[cut.name]
    assert "Traceback" not in verified.stderr


def test_reporting_tasks_answer_json_with_the_facts_they_print(pg_server, database, tmp_path):
    """Each --json answer parses, on stdout alone, with the documented top-level keys, the same
    facts as the text, and the same exit code (so a script can gate on either)."""
    schema = tmp_path / "db"
    shutil.copytree(ROOT / "tests" / "fixtures" / "vector_only", schema)
    url = pg_server.url(database)
    env = {
        "DATABASE_URL": url,
        "PGKURA_PG_BIN": str(bin_dir()),
        "PGKURA_BACKUP_DIR": str(tmp_path / "b"),
        "PGKURA_MIGRATIONS_DIR": str(schema / "migrations"),
        "PGKURA_INIT_SQL": str(schema / "init.sql"),
        "PGKURA_EXTENSIONS": "vector",
        "PGKURA_BACKUP_SCHEDULE": "daily 03:15",
    }

    def answer(*args: str, code: int = 0) -> dict:
        done = invoke(*args, "--json", env=env, cwd=tmp_path)
        assert done.returncode == code, done.stderr
        return json.loads(done.stdout)

    pending = answer("db.status")
    assert set(pending) == {"target", "in_sync", "counts", "migrations"}
    assert pending["in_sync"] is False
    assert {m["state"] for m in pending["migrations"]} == {"pending"}
    assert pg_server.password not in json.dumps(pending)
    assert answer("db.status", "--check", code=3)["counts"] == pending["counts"]

    extensions = answer("db.extensions", "--ensure")
    assert set(extensions) >= {"verdict", "target", "extensions", "warning"}
    assert [e["name"] for e in extensions["extensions"]] == ["vector"]
    assert extensions["extensions"][0]["installed"]

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((schema / "init.sql").read_text())
    assert invoke("db.migrate", env=env, cwd=tmp_path).returncode == 0
    assert answer("db.status", "--check")["in_sync"] is True
    assert answer("db.drift") == {
        "clean": True, "target": pending["target"], "snapshot": "schema.sql",
        "added": [], "removed": [], "changed": {},
    }  # fmt: skip
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE INDEX notes_content_idx ON notes (content)")
    drifted = answer("db.drift", code=1)
    assert drifted["added"] == ["INDEX public.notes_content_idx"]
    assert drifted["clean"] is False

    assert invoke("db.backup", env=env, cwd=tmp_path).returncode == 0
    listed = answer("db.backups")
    assert set(listed) == {"directory", "verified", "backups", "point_in_time", "last_drill"}
    (one,) = listed["backups"]
    assert one["database"] == database
    assert one["ok"]
    assert one["problem"] is None
    assert one["size"] == (tmp_path / "b" / one["file"]).stat().st_size
    assert answer("db.backups", "--verify")["backups"][0]["ok"]
    verified = answer("db.verify", "latest", "--restore-test")
    assert set(verified) == {"file", "ok", "kind", "sha256", "manifest", "problems", "restore_test"}
    assert verified["ok"]
    assert verified["manifest"]
    assert verified["problems"] == []
    assert len(verified["sha256"]) == 64
    assert verified["restore_test"]["tables"] >= 1
    broken = tmp_path / "b" / one["file"]
    broken.write_bytes(broken.read_bytes()[:-64])  # cut short: the gzip stream ends early
    failed = answer("db.verify", "latest", code=1)
    assert failed["ok"] is False
    assert failed["problems"]

    said = invoke("db.doctor", env=env, cwd=tmp_path)
    doctor = answer("db.doctor", code=said.returncode)
    assert said.stdout.startswith(f"verdict: {doctor['summary']}")
    assert {f["check"] for f in doctor["findings"]} >= {"server", "migrations"}

    schedule = answer("db.schedule")
    assert schedule["runner_active"] is False
    backup_job = {j["name"]: j for j in schedule["jobs"]}["backup"]
    assert backup_job["schedule"].startswith("daily")
    assert backup_job["last"] is None
