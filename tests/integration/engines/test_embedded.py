"""The embedded engine (PGKURA_ENGINE=embedded) through the real tasks, with no Docker: start,
first-start init.sql, migrate, psql, ps, logs, stop and start with the data kept, a crash of
the server process and recovery, backup and restore with the wheel's own tools, doctor,
extensions, reset, and the Docker-only tasks saying so plainly."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pgkura.clusters.local import LocalCluster, bin_dir
from pgkura.config.settings import load_settings
from pgkura.engines.embedded.server import cluster
from pgkura.errors import PgkuraError
from tests.conftest import ROOT, free_port, run_invoke

FIXTURES = ROOT / "tests" / "fixtures" / "vector_only"
PASSWORD = "embedded-Secret-pw"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[dict[str, str]]:
    schema = tmp_path / "schema"
    shutil.copytree(FIXTURES, schema)
    env = {
        "PGKURA_ENGINE": "embedded",
        "PGKURA_EMBEDDED_DIR": str(tmp_path / "pg"),
        "PGKURA_ENV_FILE": str(tmp_path / ".env"),
        "POSTGRES_PASSWORD": PASSWORD,
        "POSTGRES_PORT": str(free_port()),
        "PGKURA_INIT_SQL": str(schema / "init.sql"),
        "PGKURA_MIGRATIONS_DIR": str(schema / "migrations"),
        "PGKURA_EXTENSIONS": "vector",
        "PGKURA_BACKUP_DIR": str(tmp_path / "backups"),
        "DATABASE_URL": "",
        "PATH": os.environ["PATH"],
    }
    yield env
    cluster(load_settings(tmp_path, env)).remove()  # under root its files are outside tmp_path


def run(env: dict[str, str], *args: str, ok: bool = True):
    result = run_invoke(*args, env=env, cwd=Path(env["PGKURA_EMBEDDED_DIR"]).parent)
    assert PASSWORD not in result.stdout + result.stderr
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def url(env: dict[str, str]) -> str:
    return f"postgresql://app:{PASSWORD}@127.0.0.1:{env['POSTGRES_PORT']}/app"


def count(env: dict[str, str]) -> int:
    with psycopg.connect(url(env)) as conn:
        row = conn.execute("SELECT count(*) FROM notes").fetchone()
    assert row is not None
    return int(row[0])


def test_the_tasks_on_the_embedded_engine(project):
    env = project
    up = run(env, "db.up", "--build")  # the README's "Run it" line works as it is
    assert "the embedded engine has no image to build" in up.stderr
    assert f"ready: postgresql://app:***@127.0.0.1:{env['POSTGRES_PORT']}/app (PostgreSQL 18." in (
        up.stdout
    )
    with psycopg.connect(url(env)) as conn:  # init.sql ran on the fresh cluster
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone()
    # TCP needs the password: never trust
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(f"postgresql://app:wrong@127.0.0.1:{env['POSTGRES_PORT']}/app").close()
    run(env, "db.migrate", "--no-schema")
    with psycopg.connect(url(env), autocommit=True) as conn:
        conn.execute("INSERT INTO notes (content, embedding) VALUES ('東京', '[1,2,3]')")
    assert "東京" in run(env, "db.psql", "-c", "SELECT content FROM notes").stdout
    assert "embedded: running" in run(env, "db.ps").stdout
    assert "database system is ready to accept connections" in run(env, "db.logs").stdout
    assert "[ok  ] engine" in run(env, "db.doctor").stdout
    assert "installed" in run(env, "db.extensions").stdout

    assert "ready: PostgreSQL 18." in run(env, "db.restart").stdout
    run(env, "db.wait", "--timeout", "10s")
    assert count(env) == 1  # a restart keeps the data
    run(env, "db.down")
    assert "embedded: stopped" in run(env, "db.ps").stdout
    run(env, "db.up")
    assert count(env) == 1  # so do stop and start

    # a crash of the server process: the next db.up recovers with the data
    data = cluster(load_settings(ROOT, env)).data
    pid = int((data / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    run(env, "db.up")
    assert count(env) == 1

    backup = run(env, "db.backup").stdout
    assert "host pg_dump 18." in backup  # the wheel's own PostgreSQL 18 tools
    with psycopg.connect(url(env), autocommit=True) as conn:
        conn.execute("DELETE FROM notes")
    run(env, "db.restore", "latest", "--yes")
    assert count(env) == 1

    reset = run(env, "db.reset", "--yes")
    assert "reset done: fresh database" in reset.stdout
    assert count(env) == 0
    assert len(list(Path(env["PGKURA_BACKUP_DIR"]).glob("app_*.sql.gz"))) >= 2  # taken first

    for args, words in ((("docker.build",), "building an image is for the Docker engine"),
                        (("db.upgrade",), "is for the Docker engine")):  # fmt: skip
        refused = run(env, *args, ok=False)
        assert refused.returncode == 1
        assert words in refused.stderr
    run(env, "db.down")
    assert not cluster(load_settings(ROOT, env)).running


def test_without_docker_db_up_names_the_embedded_engine(tmp_path):
    """A production machine with no docker binary (development would choose the embedded
    engine by itself): the error says what is missing and how to try pgkura now."""
    env = {"PATH": str(tmp_path), "PGKURA_ENV_FILE": str(tmp_path / ".env"),
           "PGKURA_ENV": "production", "POSTGRES_PASSWORD": "x",
           "PGKURA_BACKUP_DIR": str(tmp_path / "b")}  # fmt: skip
    result = run_invoke("db.up", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "docker is not installed" in result.stderr
    assert "PGKURA_ENGINE=embedded" in result.stderr


def _modes(path: Path) -> dict[Path, int]:
    return {parent: parent.stat().st_mode for parent in path.parents}


def _as_nobody(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`argv` as another local account (`nobody`), with only `env` in its environment."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and runuser to act as another local account")
    return subprocess.run(["runuser", "-u", "nobody", "--", *argv], env=env, cwd="/",
                          capture_output=True, text=True, check=False, timeout=120)  # fmt: skip


def test_no_local_account_reaches_the_server_without_its_password(project):
    env = project
    parents = _modes(Path(env["PGKURA_EMBEDDED_DIR"]))
    run(env, "db.up")
    local = cluster(load_settings(ROOT, env))
    sockets = local.sockets
    assert stat.S_IMODE(sockets.stat().st_mode) == 0o700
    owner = pwd.getpwnam(local.run_as).pw_uid if local.run_as else os.geteuid()
    assert sockets.stat().st_uid == owner  # the server's user: root's own socket if not
    assert _modes(Path(env["PGKURA_EMBEDDED_DIR"])) == parents  # no parent opened to others
    psql = [str(bin_dir() / "psql"), "-X", "-w", "-U", "app", "-d", "app", "-p",
            env["POSTGRES_PORT"], "-tA", "-c", "SELECT rolsuper FROM pg_roles "
            "WHERE rolname = current_user"]  # fmt: skip
    bare = {"PATH": os.environ["PATH"]}
    for host in (str(sockets), "127.0.0.1"):
        refused = _as_nobody([*psql, "-h", host], bare)
        assert refused.returncode != 0, f"{host}: {refused.stdout}"
    with_password = _as_nobody([*psql, "-h", "127.0.0.1"], {**bare, "PGPASSWORD": PASSWORD})
    assert with_password.stdout.strip() == "t", with_password.stderr
    # this account (the cluster's owner, or root) needs the password on the socket too
    own = subprocess.run([*psql, "-h", str(sockets)], env=bare, capture_output=True, text=True,
                         check=False)  # fmt: skip
    assert own.returncode != 0
    own = subprocess.run([*psql, "-h", str(sockets)], env={**bare, "PGPASSWORD": PASSWORD},
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert own.stdout.strip() == "t", own.stderr
    # a cluster made by an older pgkura trusted the socket: closed on its next start
    (local.data / "pg_hba.conf").write_text("local all all trust\nhost all all all trust\n")
    run(env, "db.restart")
    for host in (str(local.sockets), "127.0.0.1"):
        assert _as_nobody([*psql, "-h", host], bare).returncode != 0


def test_under_root_an_older_clusters_directory_is_not_initialised_again(project):
    """An older pgkura kept a root-run cluster in PGKURA_EMBEDDED_DIR itself: db.up says what
    to do, and makes no new, empty cluster elsewhere while the old data sits there."""
    if os.geteuid() != 0:
        pytest.skip("the layout changed only for clusters run by root")
    env = project
    old = Path(env["PGKURA_EMBEDDED_DIR"]) / "data"
    old.mkdir(parents=True)
    (old / "PG_VERSION").write_text("18\n")
    up = run(env, "db.up", ok=False)
    assert up.returncode == 1
    assert f"{old} holds a cluster an older pgkura made" in up.stderr
    assert "invoke db.backup" in up.stderr
    assert not cluster(load_settings(ROOT, env)).initialized


def test_db_up_says_when_the_server_runs_on_another_port(project):
    env = project
    run(env, "db.up")
    run(env, "db.down")
    other = free_port()
    cluster(load_settings(ROOT, env)).start(other)  # started by hand, on another port
    up = run(env, "db.up", ok=False)
    assert up.returncode == 1
    assert "ready" not in up.stdout
    assert f"port {other}" in up.stderr
    assert f"POSTGRES_PORT is {env['POSTGRES_PORT']}" in up.stderr
    assert "invoke db.restart" in up.stderr
    ps = run(env, "db.ps").stdout
    assert f"127.0.0.1:{other}" in ps
    assert f"POSTGRES_PORT is {env['POSTGRES_PORT']}" in ps
    assert "[FAIL] engine" in run(env, "db.doctor", ok=False).stdout
    assert "ready: PostgreSQL 18." in run(env, "db.restart").stdout  # moved to POSTGRES_PORT
    psycopg.connect(url(env)).close()


def test_a_failed_first_initialisation_is_remembered(project):
    env = project
    init_sql = Path(env["PGKURA_INIT_SQL"])
    good = init_sql.read_text()
    init_sql.write_text(good + "\nSELECT no_such_function();\n")
    first = run(env, "db.up", ok=False)
    assert first.returncode == 1
    assert "init.sql failed" in first.stderr
    again = run(env, "db.up", ok=False)  # the server runs, but init.sql never finished
    assert again.returncode == 1
    assert "ready" not in again.stdout
    assert "init.sql" in again.stderr
    assert "invoke db.reset" in again.stderr
    assert "init.sql" in run(env, "db.ps").stdout
    init_sql.write_text(good)
    run(env, "db.reset", "--yes", "--no-backup")
    assert "ready: postgresql://" in run(env, "db.up").stdout
    with psycopg.connect(url(env)) as conn:  # init.sql ran this time
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone()


LONG_NAME = "日本語の全文検索を試すための、とても長い名前のプロジェクト"  # 29 characters, 87 bytes


@pytest.fixture
def long_project(project: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {**project, "PGKURA_EMBEDDED_DIR": str(tmp_path / LONG_NAME / ".pgkura" / "embedded")}
    Path(env["PGKURA_EMBEDDED_DIR"]).parent.mkdir(parents=True)
    yield env
    cluster(load_settings(tmp_path, env)).remove()


def test_a_long_japanese_project_path(long_project):
    env = long_project
    assert len(os.fsencode(env["PGKURA_EMBEDDED_DIR"])) > 107
    assert "ready: postgresql://" in run(env, "db.up").stdout
    assert "東京" in run(env, "db.psql", "-c", "SELECT '東京'").stdout
    run(env, "db.down")
    run(env, "db.up")
    local = cluster(load_settings(ROOT, env))
    assert stat.S_IMODE(local.sockets.stat().st_mode) == 0o700
    run(env, "db.down", "--volumes", "--yes")
    assert not local.sockets.exists()


@pytest.fixture
def nobodys_dir() -> Iterator[Path]:
    """A directory of `nobody`'s own, outside root's private pytest directories."""
    path = Path(tempfile.mkdtemp(prefix="pgkura-nobody-"))
    shutil.chown(path, "nobody", "nogroup")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _python_for_nobody(env: dict[str, str]) -> str:
    """This Python, or the system's of the same version where `nobody` cannot reach this one
    (a pyenv under /root); the project's packages come through PYTHONPATH."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for python in (sys.executable, f"/usr/bin/python{version}"):
        probe = _as_nobody([python, "-c", "import sys; print(sys.version_info[:2])"], env)
        if probe.returncode == 0 and probe.stdout.strip() == str(sys.version_info[:2]):
            return python
    pytest.skip(f"no Python {version} that the account nobody can run")


def test_a_long_project_path_for_an_ordinary_user(nobodys_dir):
    """Run by an ordinary account (not root, so the server runs as that account, in the
    project): a socket path past the Unix limit moves to a private directory under /tmp."""
    base = nobodys_dir / LONG_NAME / ".pgkura" / "embedded"
    env = {"PATH": os.environ["PATH"], "HOME": str(nobodys_dir), "PGKURA_ENGINE": "embedded",
           "PGKURA_EMBEDDED_DIR": str(base), "PGKURA_ENV_FILE": str(nobodys_dir / ".env"),
           "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_PORT": str(free_port()),
           "PGKURA_INIT_SQL": str(nobodys_dir / "none.sql"), "PGKURA_EXTENSIONS": "vector",
           "PGKURA_BACKUP_DIR": str(nobodys_dir / "backups"), "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
    env["PYTHONPATH"] = f"{ROOT / 'src'}:{sysconfig.get_paths()['purelib']}"
    invoke = [_python_for_nobody(env), "-m", "invoke", "--search-root", str(ROOT)]
    try:
        up = _as_nobody([*invoke, "db.up"], env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "ready: postgresql://" in up.stdout
        sockets = [p for p in Path("/tmp").glob("pgkura-*") if any(p.glob(".s.PGSQL.*"))
                   if p.stat().st_uid == pwd.getpwnam("nobody").pw_uid]  # fmt: skip
        assert len(sockets) == 1
        assert stat.S_IMODE(sockets[0].stat().st_mode) == 0o700
    finally:
        _as_nobody([*invoke, "db.down", "--volumes", "--yes"], env)


def test_under_root_a_wheel_the_service_user_cannot_reach_is_named(tmp_path):
    """pgkura no longer opens the directories above the wheel: it says what to do instead."""
    if os.geteuid() != 0:
        pytest.skip("only root runs the server as a service user")
    local = LocalCluster(tmp_path / "pg", "app")
    local.bin = tmp_path / "bin"  # under root's own 0700 pytest directory, as /root/venv is
    local.bin.mkdir()
    (local.bin / "postgres").symlink_to(bin_dir() / "postgres")
    parents = _modes(local.bin)
    with pytest.raises(PgkuraError, match=r"(?s)cannot run .*install pgkura where other users"):
        local.init(PASSWORD)
    assert _modes(local.bin) == parents
    assert not local.home.exists()
