"""A streaming standby on the real image: cloned while the application writes, streaming, its
lag reported, refused as a target, promoted (the old primary stopped first), and the old
primary refused afterwards. One flow, in order: each step starts from the one before."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from .conftest import Project

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pair(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    proj = Project(tmp_path_factory.mktemp("e2e-standby"))
    yield proj
    gone = proj.invoke("db.down", "--volumes", "--yes", "--no-backup")  # the standby goes too
    assert gone.returncode == 0, gone.stderr


def primary(p: Project) -> str:
    return f"host=127.0.0.1 port={p.port} user=app dbname=app password={p.env['POSTGRES_PASSWORD']}"


def standby(p: Project) -> str:
    return f"host={p.dir / 'run' / 'postgresql-standby'} user=app dbname=app"


def count(conninfo: str) -> int:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT count(*) FROM ticks").fetchone()
    assert row is not None
    return int(row[0])


def eventually(check, what: str) -> None:
    """Poll until `check()` is true; the bound only ends a broken run."""
    deadline = time.monotonic() + 60
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def replication_password(p: Project) -> str:
    return (p.dir / "standby" / "replication.password").read_text().strip()


def invoke(p: Project, *args: str, **env: str):
    result = p.invoke(*args, **env)
    path = p.dir / "standby" / "replication.password"
    if path.is_file():
        assert replication_password(p) not in result.stdout + result.stderr
    return result


def test_standby_cloned_while_the_application_writes_then_streams(pair):
    pair.up_and_migrate()
    pair.sql(
        "CREATE TABLE ticks (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at timestamptz DEFAULT now())"
    )
    stop = threading.Event()

    def write() -> None:
        with psycopg.connect(primary(pair), autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO ticks DEFAULT VALUES")

    writer = threading.Thread(target=write)
    writer.start()
    try:
        made = invoke(pair, "db.standby")
    finally:
        stop.set()
        writer.join()
    assert made.returncode == 0, made.stdout + made.stderr
    assert "standby created" in made.stdout
    assert oct((pair.dir / "standby" / "replication.password").stat().st_mode & 0o777) == "0o600"
    written = count(primary(pair))
    assert written > 0
    eventually(lambda: count(standby(pair)) == written, "the rows written reach the standby")
    with psycopg.connect(primary(pair), autocommit=True) as conn:
        conn.execute("INSERT INTO ticks DEFAULT VALUES")
    eventually(lambda: count(standby(pair)) == written + 1, "a new row reaches the standby")

    # the standby logs in with a passfile: its configuration names the file, not the password
    conf = subprocess.run(
        ["docker", "exec", f"{pair.container}-standby", "cat",
         "/var/lib/postgresql/18/docker/postgresql.auto.conf"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "passfile=" in conf
    assert replication_password(pair) not in conf

    # the role's stored verifier matches the password kept for it (hashed before it was sent)
    role = f"host=127.0.0.1 port={pair.port} user=pgkura_replicator dbname=postgres"
    with psycopg.connect(f"{role} password={replication_password(pair)}") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("pgkura_replicator",)

    again = invoke(pair, "db.standby")
    assert again.returncode == 0, again.stderr
    assert "exists already" in again.stdout


def test_state_and_lag_reported(pair):
    ps = invoke(pair, "db.ps")
    assert ps.returncode == 0, ps.stderr
    assert "standby: slot" in ps.stdout, ps.stdout
    assert "streaming" in ps.stdout
    doctor = invoke(pair, "db.doctor")
    assert "streaming" in doctor.stdout, doctor.stdout
    status = invoke(pair, "db.status")
    assert "standby: slot" in status.stdout, status.stdout
    assert "streaming" in status.stdout
    inspected = invoke(pair, "db.inspect", "--json")
    assert inspected.returncode == 0, inspected.stderr
    replicas = json.loads(inspected.stdout)["sections"]["replication"]
    assert [r["streaming"] for r in replicas] == [True]
    assert replicas[0]["lag_bytes"] is not None


def test_db_down_then_db_up_bring_the_standby_back_streaming(pair):
    down = invoke(pair, "db.down")
    assert down.returncode == 0, down.stderr
    up = invoke(pair, "db.up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "standby started" in up.stdout, up.stdout
    with psycopg.connect(primary(pair), autocommit=True) as conn:
        conn.execute("INSERT INTO ticks DEFAULT VALUES")
    written = count(primary(pair))
    eventually(lambda: count(standby(pair)) == written, "the standby streams again")


def test_the_standby_is_refused_as_a_target(pair):
    url = f"postgresql://app@/app?host={pair.dir / 'run' / 'postgresql-standby'}"
    for task in ("db.backup", "db.migrate"):
        refused = invoke(pair, task, DATABASE_URL=url)
        assert refused.returncode != 0, task
        assert "is a standby" in refused.stderr, refused.stderr
        assert "run it against the primary" in refused.stderr


def test_promotion_refused_while_the_primary_writes_then_done_with_stop_old(pair):
    refused = invoke(pair, "db.promote", "--yes")
    assert refused.returncode != 0
    assert "still accepts writes" in refused.stderr
    assert "--stop-old" in refused.stderr

    promoted = invoke(pair, "db.promote", "--stop-old", "--yes")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert "promoted: timeline 2" in promoted.stdout
    assert f"127.0.0.1:{pair.port}" in promoted.stdout  # where applications connect
    before = count(primary(pair))
    with psycopg.connect(primary(pair), autocommit=True) as conn:
        conn.execute("INSERT INTO ticks DEFAULT VALUES")
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    assert count(primary(pair)) == before + 1
    backup = invoke(pair, "db.backup")
    assert backup.returncode == 0, backup.stdout + backup.stderr


def test_the_old_primary_is_refused_as_a_target(pair):
    env = (pair.dir / ".env").read_text()
    new = next(
        line.split("=", 1)[1] for line in env.splitlines() if line.startswith("PGKURA_VOLUME=")
    )
    old = next(
        line.split("=", 1)[1]
        for line in env.splitlines()
        if line.startswith("PGKURA_STANDBY_VOLUME=")
    )
    wrong = {"PGKURA_VOLUME": old, "PGKURA_STANDBY_VOLUME": new}  # pointed back by mistake
    up = invoke(pair, "db.up", **wrong)
    assert up.returncode != 0
    assert "is the old primary" in up.stderr, up.stdout + up.stderr
    assert "db.up stopped" in up.stderr
    running = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}}", pair.container],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert running == "false"  # applications cannot write to both sides
    subprocess.run(["docker", "start", pair.container], capture_output=True, check=True)
    for task in ("db.backup", "db.migrate"):
        refused = invoke(pair, task, **wrong)
        assert refused.returncode != 0, task
        assert "is the old primary" in refused.stderr, refused.stderr
        assert "invoke db.standby --rebuild" in refused.stderr
    back = invoke(pair, "db.up")
    assert back.returncode == 0, back.stdout + back.stderr
