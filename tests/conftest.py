"""Shared helpers for every tier."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import pytest

from pgkura.clusters.local import root_home

pytest_plugins = ["tests.scheduling", "tests.s3"]  # `runners` and `s3_server`, for every tier

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SCHEMA = ROOT / "examples" / "documents"  # migrations/ and their schema.sql
INVOKE = [sys.executable, "-m", "invoke", "--search-root", str(ROOT)]

# What a test run may be given from outside: the build inputs CI passes (no network here for
# the base image or pg_bigm's source) and the tiers' own knobs. Nothing else a user exports
# reaches a test: not their engine, passwords, ports, directories, DATABASE_URL, libpq's PG*
# or cloud credentials (a test once started the user's embedded cluster from the checkout).
TEST_INPUTS = frozenset(
    {
        "PG_BASE_IMAGE",
        "PG_BIGM_SOURCE",
        "PG_BIGM_SHA256",
        "PGKURA_BUILD_NETWORK",
        "PGKURA_E2E_TARGET",
        "PGKURA_REHEARSAL_SIZE_MB",
    }
)
USER_SETTINGS = ("PGKURA_", "POSTGRES_", "PG", "AWS_", "DATABASE_URL")


def _own_world() -> None:
    for name in [n for n in os.environ if n.startswith(USER_SETTINGS) and n not in TEST_INPUTS]:
        del os.environ[name]
    # Settings read from the environment never fall back to the checkout's .env (Compose and
    # load_settings read PGKURA_ENV_FILE); a test that wants a file names its own.
    os.environ["PGKURA_ENV_FILE"] = os.devnull


_own_world()

# The checkout's runtime state: a user's settings, backups and pg_bigm archive (compared file by
# file), socket directory (which sockets exist) and embedded cluster (whether a server runs there,
# and since when: postmaster.pid; a live cluster's other files change by themselves).
USER_FILES = (".env", "backups", "docker/postgres/pg_bigm-source", ".pgkura/engine")
USER_SERVERS = ("run", ".pgkura")


def tracked_files(*parts: str) -> list[Path]:
    """The files git tracks under ROOT/parts (the project's own, never a user's state)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--", "/".join(parts) or "."],
        capture_output=True,
        text=True,
        check=True,
    )
    return [ROOT / name for name in listed.stdout.split("\0") if name]


def copy_tracked(target: Path, *parts: str) -> Path:
    """Copy what git tracks under ROOT/parts to `target`, keeping the layout below parts."""
    base = ROOT.joinpath(*parts)
    for source in tracked_files(*parts):
        if source.is_file():  # tracked but deleted in the working tree: nothing to copy
            destination = target / source.relative_to(base)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    return target


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    """Return once `proc` (named `what`) answers on 127.0.0.1:`port`; if it ends or never
    answers, stop it and fail the test with its log, which says why."""
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                pytest.fail(f"{what} did not start on port {port}: {log.read_text()}")
            time.sleep(0.1)


def with_examples(dest: Path) -> Path:
    """`dest` laid out as db/ is after `invoke db.example` on a fresh clone: db/init.sql, the
    example migrations and the schema.sql they build."""
    shutil.copytree(EXAMPLE_SCHEMA, dest)
    shutil.copy2(ROOT / "db" / "init.sql", dest / "init.sql")
    return dest


def _state_snapshot() -> dict[str, object]:
    """The checkout's runtime state, as far as a test could have changed it."""
    found: dict[str, object] = {}

    def below(name: str) -> list[Path]:
        top = ROOT / name
        return [top, *top.rglob("*")] if top.is_dir() else [top]

    for path in [p for name in USER_FILES for p in below(name)]:
        if path.is_file():
            stat = path.stat()
            found[str(path.relative_to(ROOT))] = (stat.st_size, stat.st_mtime_ns)
    for path in [p for name in USER_SERVERS for p in below(name)]:
        if path.is_socket() or path.name == "postmaster.pid":
            found[str(path.relative_to(ROOT))] = path.name == "postmaster.pid" and _read(path)
    for path in [*(ROOT / ".pgkura").glob("*"), *(ROOT / ".pgkura").glob("*/*")]:
        found.setdefault(str(path.relative_to(ROOT)), "exists")  # a cluster made or removed
    # the checkout's embedded cluster where it lives when run as root (outside the checkout)
    home = root_home(ROOT / ".pgkura" / "embedded")
    found["root-run embedded cluster"] = home.exists() and _read(home / "data" / "postmaster.pid")
    return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def run_invoke(
    *args: str, env: dict[str, str], cwd: Path, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """`invoke ARGS` as a person in a non-interactive shell runs it (stdin closed)."""
    return subprocess.run(
        [*INVOKE, *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=timeout,
    )


def _untracked() -> set[str]:
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--others", "--exclude-standard", "-z"],
        capture_output=True,
        text=True,
        check=False,
    )
    return set(listed.stdout.split("\0")) if listed.returncode == 0 else set()


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A disk of `size` at `path` (a tmpfs) for as long as the block runs: one that fills. The
    test is skipped where this machine does not allow mounting one."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def large_objects_sql(first_oid: int, owner: str) -> str:
    """Large objects as applications leave them (pg_dump keeps their OIDs): a Japanese one, one
    over 1 MiB owned by `owner` with a comment, and an empty one."""
    text, big, empty = first_oid, first_oid + 1, first_oid + 2
    # test data: integers and a role name the test chose
    return f"""
SELECT lo_from_bytea({text}, convert_to('日本語の大きなオブジェクト', 'UTF8'));
SELECT lo_from_bytea({big}, convert_to(
  (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 40000) g), 'UTF8'));
SELECT lo_create({empty});
ALTER LARGE OBJECT {big} OWNER TO {owner};
COMMENT ON LARGE OBJECT {big} IS '1.2 MB の大きなオブジェクト';
"""  # noqa: S608


@pytest.fixture(scope="session", autouse=True)
def _repository_left_clean():
    """Tests write into their tmp_path, never into the checkout (a relative setting resolves
    against the project: one test once committed its backups that way), and leave the user's
    settings, backups, socket directory and cluster exactly as they were (git ignores those,
    so they are compared on their own)."""
    before, state = _untracked(), _state_snapshot()
    yield
    strays = sorted(_untracked() - before)
    assert not strays, f"tests left files in the repository: {strays}"
    after = _state_snapshot()
    changed = sorted(k for k in state.keys() | after.keys() if state.get(k) != after.get(k))
    assert not changed, f"tests changed the checkout's runtime state: {changed[:20]}"


@pytest.fixture
def write_migration(tmp_path: Path):
    """write_migration("001_name.sql", "SQL") -> path, in tmp_path/migrations."""
    directory = tmp_path / "migrations"
    directory.mkdir(exist_ok=True)

    def write(name: str, text: str, *, newline: str = "\n", bom: bool = False) -> Path:
        path = directory / name
        data = ("\ufeff" if bom else "") + text.replace("\n", newline)
        path.write_bytes(data.encode("utf-8"))
        return path

    write.directory = directory  # type: ignore[attr-defined]
    return write


TOKEN = "0f5c4b1e-secret-check-token"  # a monitoring check's secret, never to be printed


class _Recorder(http.server.BaseHTTPRequestHandler):
    pings: ClassVar[list[tuple[str, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.pings.append((self.path, body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def monitor() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.pings = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ping/{TOKEN}", _Recorder.pings
    server.shutdown()
