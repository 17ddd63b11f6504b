"""`db.upgrade`: a PostgreSQL 15/16/17 cluster (or 18 data in the pre-18 layout) moved into a
new PostgreSQL 18 volume of this image, by dump and restore.

Why dump and restore, not pg_upgrade: it needs no second set of binaries in one image, no
matching extension builds for both majors, and no in-place change to the old files, and it
works the same from any layout, volume or host directory; every index is rebuilt, so
collation changes between the old and the new image need no reindex. It costs time on a large
cluster (pg_upgrade --link would take seconds), which a careful DBA pays for a path that
cannot damage the only copy.

The steps, each refusing to go on if the one before did not succeed:
 1. look: layout, major, size; free space for the dump and the new volume; nothing else may
    use the old data, no container mounting it and no postmaster.pid (else refuse);
 2. start the old major from its own image on the old data (no network, a private socket);
 3. dump every database and the roles with PostgreSQL 18's pg_dumpall (PostgreSQL's advice:
    the newer version's tools) into a verified, owner-only backup file (kept);
 4. record per database the tables (row count and a checksum of every row), sequences,
    extensions and large objects, and the roles;
 5. create the new volume, initialise PostgreSQL 18 on it and restore the backup into it;
 6. update extensions, compare with 4, and only then point the project at the new volume
    (PGKURA_VOLUME in the settings file). The old volume is never written to by pgkura; going
    back is setting PGKURA_VOLUME to it (and running the old image).
A failure or an interruption anywhere stops both helper servers and removes the half-made
volume; a re-run does the same with whatever a killed run left, then starts clean.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pgkura.backups.archive import stream_archive, verify
from pgkura.backups.dump_stream import Transactions
from pgkura.backups.take import Prepared, take_backup
from pgkura.config.env_file import set_value
from pgkura.config.settings import Settings
from pgkura.engines.docker.compose import image_exists
from pgkura.engines.docker.data_in_use import containers, lock_problem, mounters, volume_path
from pgkura.engines.docker.helpers import (
    SOCKET,
    HelperServer,
    create_volume,
    labelled,
    remove,
    remove_volume,
    start,
    stop,
    volume_label,
)
from pgkura.engines.docker.volume_check import (
    SERVER_MAJOR,
    Cluster,
    Survey,
    strangers,
    survey,
    survey_dir,
)
from pgkura.engines.pg_tools import Tool
from pgkura.errors import PgkuraError
from pgkura.progress import QUIET, Reporter

Log = Callable[[str], None]
_LABEL = "pgkura.upgrade"
_HEADROOM_KIB = 64 * 1024


class UpgradeError(PgkuraError):
    """The upgrade stopped; the old data is as it was."""


@dataclass(frozen=True)
class Plan:
    """What `db.upgrade` will do, with the sizes it is based on."""

    source: str  # a volume name, or a host directory
    is_dir: bool
    cluster: Cluster
    old_image: str
    target: str  # the new volume
    free_docker_kib: int
    free_backup_kib: int
    backup_dir: Path
    compression: str  # the backup's, PGKURA_BACKUP_COMPRESSION like every backup

    @property
    def need_volume_kib(self) -> int:
        return self.cluster.size_kib * 12 // 10 + _HEADROOM_KIB

    @property
    def need_backup_kib(self) -> int:
        return self.cluster.size_kib // 2 + _HEADROOM_KIB

    def lines(self) -> list[str]:
        kind = "directory" if self.is_dir else "volume"
        return [
            f"from: {kind} {self.source}: PostgreSQL {self.cluster.major} in "
            f"{self.cluster.layout}, {_mib(self.cluster.size_kib)}",
            f"old server: {self.old_image} (no network; a private socket)",
            f"backup of the old cluster first: pg_dumpall {SERVER_MAJOR}, {self.compression} "
            f"→ {self.backup_dir}/ "
            f"(needs about {_mib(self.need_backup_kib)}, {_mib(self.free_backup_kib)} free)",
            f"to: a new volume {self.target} with PostgreSQL {SERVER_MAJOR} (needs about "
            f"{_mib(self.need_volume_kib)}, {_mib(self.free_docker_kib)} free where Docker "
            "keeps volumes)",
            "then: compare every table's rows, sequences, extensions, large objects and roles; "
            "update extensions; set PGKURA_VOLUME to the new volume",
            f"the old {kind} is left as it is: going back is setting PGKURA_VOLUME={self.source}"
            if not self.is_dir
            else f"the old directory is left as it is: {self.source}",
        ]


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def make_plan(
    settings: Settings,
    *,
    from_volume: str = "",
    from_dir: str = "",
    to_volume: str = "",
    old_image: str = "",
) -> Plan:
    """Look at the old data and the free space; UpgradeError when there is nothing to do or
    no room (nothing has been started or changed then)."""
    if not image_exists(settings.image):
        raise UpgradeError(f"the image {settings.image} is not built yet\n→ `invoke docker.build`")
    source = from_dir or from_volume or settings.volume
    found: Survey | None = survey_dir(settings, source) if from_dir else survey(settings, source)
    if found is None:
        raise UpgradeError(f"there is no volume {source}")
    movable = strangers(found)
    if not movable:
        what = "PostgreSQL 18's own cluster" if found.clusters else "no cluster"
        raise UpgradeError(f"{source} holds {what}: there is nothing to upgrade")
    if len(movable) > 1:
        shown = ", ".join(f"{c.major} in {c.path}/" for c in movable)
        raise UpgradeError(f"{source} holds several clusters ({shown}); upgrade one at a time "
                           "from a host directory (--from-dir) holding just one")  # fmt: skip
    cluster = movable[0]
    if cluster.major > SERVER_MAJOR:
        raise UpgradeError(f"{source} holds PostgreSQL {cluster.major}, newer than {SERVER_MAJOR}")
    image = old_image or (
        settings.image if cluster.major == SERVER_MAJOR else f"pgvector/pgvector:pg{cluster.major}"
    )
    # from a host directory: named after the project's volume, which it will replace
    target = to_volume or f"{settings.volume if from_dir else source}_pg{SERVER_MAJOR}"
    settings.backup_dir.mkdir(parents=True, exist_ok=True)
    plan = Plan(source, bool(from_dir), cluster, image, target, found.free_kib,
                shutil.disk_usage(settings.backup_dir).free // 1024,
                settings.backup_dir, settings.backup_compression)  # fmt: skip
    short = [
        f"{where}: about {_mib(need)} needed, {_mib(free)} free"
        for where, need, free in (
            (
                f"the backup directory {settings.backup_dir}",
                plan.need_backup_kib,
                plan.free_backup_kib,
            ),
            ("Docker's volumes", plan.need_volume_kib, plan.free_docker_kib),
        )
        if free < need
    ]
    if short:
        raise UpgradeError(
            "not enough free disk space, so nothing was started: " + "; ".join(short)
            + "\n→ free some space (or set PGKURA_BACKUP_DIR to a larger disk) and run again"
        )  # fmt: skip
    return plan


@dataclass
class Facts:
    """What must survive the move, as read from a server."""

    databases: dict[str, dict[str, str]] = field(default_factory=dict)  # db -> item -> value
    roles: list[str] = field(default_factory=list)

    def differences(self, after: Facts) -> list[str]:
        out = []
        if self.roles != after.roles:
            out.append(f"roles: {self.roles} before, {after.roles} after")
        for db in sorted(set(self.databases) | set(after.databases)):
            old, new = self.databases.get(db), after.databases.get(db)
            if old is None or new is None:
                out.append(f"database {db}: {'missing after' if new is None else 'new after'}")
                continue
            for item in sorted(set(old) | set(new)):
                if item.startswith("extension ") and item in old and item in new:
                    continue  # versions may move on: updated on purpose, reported apart
                if old.get(item) != new.get(item):
                    out.append(f"{db}: {item}: {old.get(item)} before, {new.get(item)} after")
        return out


# Run with psql -At in each database: table rows (count and a checksum of every row's text,
# independent of physical order), sequences, extensions, large objects (count and a checksum
# of each one's oid, owner, grants, comment and data, read in 1 MiB pieces so a large one
# needs no large memory; the size from its pages, LOBLKSIZE being block_size / 4);
# tab-separated "kind name value".
FACTS_SQL = r"""
SELECT format($q$SELECT 'table' || E'\t' || %L || E'\t' || count(*) || ' ' ||
  md5(coalesce(string_agg(h, '' ORDER BY h), ''))
  FROM (SELECT md5(x::text) h FROM ONLY %I.%I x) s$q$,
  format('%I.%I', n.nspname, c.relname), n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_toast%'
 ORDER BY 1
\gexec
SELECT 'sequence' || E'\t' || format('%I.%I', schemaname, sequencename) || E'\t' ||
       coalesce(last_value::text, 'unset') FROM pg_sequences ORDER BY 1;
SELECT 'extension' || E'\t' || extname || E'\t' || extversion FROM pg_extension ORDER BY 1;
SELECT 'large-objects' || E'\t' || '(all)' || E'\t' || count(*) || ' ' ||
       md5(coalesce(string_agg(h, '' ORDER BY h), ''))
  FROM (SELECT md5(concat_ws(' ', m.oid, pg_get_userbyid(m.lomowner), m.lomacl::text,
                             obj_description(m.oid, 'pg_largeobject'), s.size,
                             (SELECT string_agg(md5(lo_get(m.oid, o, 1048576)), '' ORDER BY o)
                                FROM generate_series(0, s.size - 1, 1048576) o))) h
          FROM pg_largeobject_metadata m
          CROSS JOIN LATERAL (
            SELECT coalesce(max(p.pageno::bigint * (current_setting('block_size')::int / 4)
                                + length(p.data)), 0) size
              FROM pg_largeobject p WHERE p.loid = m.oid) s) x;
"""


class _Server(HelperServer):
    """An upgrade's old or new server, which can also say what it holds."""

    def facts(self) -> Facts:
        out = Facts()
        roles = self.psql(
            "postgres", sql="SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1"
        )
        out.roles = roles.stdout.splitlines()  # one per line: a name may hold spaces
        for db in self.databases():
            out.databases[db] = database_facts(self.psql(db, sql=FACTS_SQL).stdout)
        return out


def database_facts(output: str) -> dict[str, str]:
    """FACTS_SQL's output (psql -At) as item -> value."""
    items = {}
    for line in output.splitlines():
        kind, name, value = [*line.split("\t"), "", ""][:3]
        items[f"{kind} {name}"] = value
    return items


def in_use(settings: Settings, plan: Plan) -> list[str]:
    """The containers that could run a server on the old data (this upgrade's own helpers
    aside), each with what stops it."""
    found = mounters(containers(), volume="" if plan.is_dir else plan.source,
                     path=_host_path(plan), ignore={_LABEL: settings.compose_project})  # fmt: skip
    out = []
    for m in found:
        # a paused server takes no signal: `docker stop` alone would end in a kill
        awake = f"docker unpause {m.name} && " if m.state == "paused" else ""
        own = m.compose_project == settings.compose_project
        stop = "invoke db.down" if own else f"docker stop {m.name}"
        out.append(f"container {m.name} ({m.state}) mounts {m.mount} → `{awake}{stop}`")
    return out


def refuse_if_in_use(settings: Settings, plan: Plan) -> None:
    """UpgradeError while a container could run a server on the old data: two servers on one
    data directory corrupt it."""
    busy = in_use(settings, plan)
    if busy:
        raise UpgradeError(
            f"{plan.source} is in use, so nothing was started or changed (a second server on "
            "the same files would corrupt them):\n" + "\n".join(f"  - {b}" for b in busy)
            + "\n→ stop it and run the upgrade again"
        )  # fmt: skip


def _refuse_a_lock(settings: Settings, plan: Plan) -> None:
    """UpgradeError when the old cluster holds a postmaster.pid (no container uses it now):
    a server on this machine runs on it, or one did not shut down cleanly."""
    found = survey_dir(settings, plan.source) if plan.is_dir else survey(settings, plan.source)
    lock = found.locks.get(plan.cluster.path) if found else None
    where = plan.source if plan.cluster.path == "." else f"{plan.source} ({plan.cluster.path}/)"
    host_dir = os.path.normpath(os.path.join(_host_path(plan), plan.cluster.path))
    problem = lock_problem(lock, host_dir, where)
    if problem:
        raise UpgradeError(f"nothing was started or changed: {problem}")


def _host_path(plan: Plan) -> str:
    """Where the old data is on the Docker host."""
    return os.path.realpath(plan.source) if plan.is_dir else volume_path(plan.source)


def upgrade(
    settings: Settings, plan: Plan, log: Log, progress: Reporter = QUIET
) -> tuple[Path, list[str]]:
    """Carry it out (see the module's steps); the backup taken and what was updated. Refused
    before anything starts while something else uses the old data."""
    project = settings.compose_project
    names = _Names(project)
    refuse_if_in_use(settings, plan)
    clear_leftovers(settings, plan, log)  # a killed run's old server stops cleanly here
    _refuse_a_lock(settings, plan)
    done = False
    try:
        result = _upgrade(settings, plan, names, log, progress)
        done = True
        return result
    finally:
        if not done:
            log("stopping: removing the helper servers and the half-made volume; the old data "
                "is as it was")  # fmt: skip
        _remove_helpers(names)  # first: a volume in use cannot be removed
        if not done:
            remove_volume(plan.target)


@dataclass(frozen=True)
class _Names:
    project: str

    @property
    def old(self) -> str:
        return f"pgkura-upgrade-old-{self.project}"

    @property
    def new(self) -> str:
        return f"pgkura-upgrade-new-{self.project}"

    @property
    def dump(self) -> str:
        return f"pgkura-upgrade-dump-{self.project}"

    @property
    def socket(self) -> str:
        return f"pgkura-upgrade-socket-{self.project}"


def clear_leftovers(settings: Settings, plan: Plan, log: Log) -> None:
    """What a killed run left: its helper containers (the old server stopped cleanly) and the
    half-made volume (never one the project uses, never one pgkura did not make)."""
    names = _Names(settings.compose_project)
    if labelled(_LABEL, names.project):
        log("removing what an interrupted upgrade left behind")
    _remove_helpers(names)
    if plan.target == settings.volume:
        raise UpgradeError(f"the project already uses {plan.target} (PGKURA_VOLUME): done before?")
    made_for = volume_label(plan.target, _LABEL)
    if made_for is not None:
        if made_for != plan.source:
            raise UpgradeError(f"a volume {plan.target} already exists and pgkura did not make it "
                               "for this upgrade\n→ choose another with --to-volume")  # fmt: skip
        remove_volume(plan.target)


def _remove_helpers(names: _Names) -> None:
    for name in (names.dump, names.new, names.old):
        remove(name)  # stopped first (cleanly), with the anonymous volumes the images made
    remove_volume(names.socket)


def _old_mount(plan: Plan) -> tuple[str, str]:
    """(mount point, PGDATA) for the old server: a path of its own, not the image's VOLUME
    (an anonymous volume there would hide data/ inside a mount at /var/lib/postgresql), and
    never PGDATA directly below / (an entrypoint may chown PGDATA's parent)."""
    if plan.cluster.path == ".":
        return "/pgkura-old/cluster", "/pgkura-old/cluster"
    return "/pgkura-old", f"/pgkura-old/{plan.cluster.path}"


def _upgrade(
    settings: Settings, plan: Plan, names: _Names, log: Log, progress: Reporter
) -> tuple[Path, list[str]]:
    label = (_LABEL, names.project)
    create_volume(names.socket, label)
    mount, pgdata = _old_mount(plan)
    log(f"starting PostgreSQL {plan.cluster.major} ({plan.old_image}) on {plan.source}")
    start(names.old, plan.old_image, "postgres", "-c", "listen_addresses=", label=label,
          mounts=(f"{plan.source}:{mount}", f"{names.socket}:{SOCKET}"), env=("PGDATA",),
          environ={**os.environ, "PGDATA": pgdata}, what=f"starting {plan.old_image}")  # fmt: skip
    old = _Server(names.old)
    with progress.meter(f"starting PostgreSQL {plan.cluster.major}"):
        old.wait()
    old.superuser = _bootstrap_superuser(old, settings)
    backup = _dump(settings, plan, names, old.superuser, log, progress)
    log("recording every table's rows, the sequences, extensions and roles of the old cluster")
    with progress.meter("recording the old cluster"):
        before = old.facts()
        stop(names.old)
    log(f"creating {plan.target} and starting PostgreSQL {SERVER_MAJOR} on it")
    create_volume(plan.target, (_LABEL, plan.source))
    # a throwaway password, off argv: the dump's ALTER ROLE sets the real one
    secret = {**os.environ, "POSTGRES_PASSWORD": secrets.token_urlsafe(24)}
    start(names.new, settings.image, label=label, mounts=(f"{plan.target}:/var/lib/postgresql",),
          env=("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"),
          environ={**secret, "POSTGRES_USER": old.superuser, "POSTGRES_DB": "postgres"},
          what="starting the new server")  # fmt: skip
    new = _Server(names.new, old.superuser)
    with progress.meter(f"initialising PostgreSQL {SERVER_MAJOR}"):
        new.wait(fresh=True)
    _load(new, backup, log, progress)
    with progress.meter("comparing the new cluster with the old"):
        updated = _update_extensions(new)
        after = new.facts()
    wrong = before.differences(after)
    if wrong:
        raise UpgradeError("the new cluster does not match the old one, so it is not used:\n"
                           + "\n".join(f"  - {w}" for w in wrong[:20]))  # fmt: skip
    tables = sum(1 for db in after.databases.values() for k in db if k.startswith("table "))
    log(f"verified: {len(after.databases)} databases, {tables} tables (rows and checksums), "
        f"{len(after.roles)} roles, sequences and extensions as before")  # fmt: skip
    with progress.meter(f"stopping PostgreSQL {SERVER_MAJOR}"):
        stop(names.new)
    return backup, updated


def _bootstrap_superuser(server: _Server, settings: Settings) -> str:
    """The cluster's first superuser (the one initdb made), found by trying the usual names
    over the socket (local connections are trusted in these images)."""
    for candidate in dict.fromkeys([settings.postgres_user, "postgres"]):
        server.superuser = candidate
        found = server.psql("postgres", sql="SELECT rolname FROM pg_roles WHERE oid = 10",
                            check=False)  # fmt: skip
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.strip()
    raise UpgradeError(f"cannot connect to the old cluster as {settings.postgres_user} or "
                       "postgres over its socket")  # fmt: skip


def _dump(
    settings: Settings, plan: Plan, names: _Names, superuser: str, log: Log, progress: Reporter
) -> Path:
    """The whole old cluster through PostgreSQL 18's pg_dumpall into a checked backup file,
    taken (and copied off-site) as every pgkura backup is."""
    tool = Tool(["docker", "run", "--rm", "--name", names.dump, "--network", "none",
                 "-v", f"{names.socket}:{SOCKET}", settings.image, "pg_dumpall"],
                ["-h", SOCKET, "-U", superuser], {}, f"upgrade of {plan.source}",
                str(SERVER_MAJOR))  # fmt: skip
    # killing `docker run` leaves its container running; the dump's text against the old data
    # directory's size: an estimate
    estimate, stop = plan.cluster.size_kib * 1024, lambda: remove(names.dump, timeout_s=0)
    dump = Prepared(tool, "the old cluster", str(plan.cluster.major), estimate, stop)
    backup = take_backup(settings, dbname=f"{Path(plan.source).name}_pg{plan.cluster.major}",
                         mode="cluster", compression=plan.compression, reason="before upgrading",
                         purpose="upgrade", log=log, progress=progress, prepared=dump)  # fmt: skip
    check = verify(backup.path, progress)
    if not check.ok:
        raise UpgradeError(f"the backup {backup.path} does not verify: {'; '.join(check.problems)}")
    return backup.path


def _load(server: HelperServer, backup: Path, log: Log, progress: Reporter) -> None:
    """Restore the whole-cluster dump (CREATE DATABASE cannot run in a transaction: the fresh
    volume is what makes this all or nothing; pg_dump's own transactions around large objects
    stay)."""
    log(f"restoring {backup.name} into the new cluster")
    argv = server.psql_argv("postgres", "-q")
    meter = progress.meter("restore", backup.stat().st_size)
    with tempfile.TemporaryFile() as errors, _process(argv, errors) as proc, meter as read:
        assert proc.stdin is not None  # noqa: S101 - Popen(stdin=PIPE)
        sink = _SkipOwnRole(server.superuser, proc.stdin.write)
        try:
            check = stream_archive(backup, sink, Transactions.DUMP, read)
            proc.stdin.close()
        except BrokenPipeError:
            check = None
        proc.wait()
        errors.seek(0)
        said = errors.read().decode(errors="replace").strip()
    if check is None or not check.ok or proc.returncode != 0:
        problems = "; ".join(check.problems) if check else ""
        raise UpgradeError(f"restoring into the new cluster failed: {problems} {said}".strip())


class _SkipOwnRole:
    """The new cluster's superuser exists already (initdb made it, under the old one's name),
    so pg_dumpall's `CREATE ROLE <it>;` becomes a comment; its ALTER ROLE (password and
    attributes) still runs. The roles section comes first, in whole lines."""

    def __init__(self, role: str, write: Callable[[bytes], object]) -> None:
        quoted = '"' + role.replace('"', '""') + '"'
        self.lines = [f"CREATE ROLE {name};\n".encode() for name in (role, quoted)]
        self.write = write
        self.done = False

    def __call__(self, chunk: bytes) -> None:
        if not self.done:
            for line in self.lines:
                at = chunk.find(line)
                if at >= 0 and (at == 0 or chunk[at - 1 : at] == b"\n"):
                    chunk = chunk[:at] + b"-- pgkura: " + chunk[at:]
                    self.done = True
                    break
        self.write(chunk)


@contextmanager
def _process(argv: list[str], errors: IO[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=errors)  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _update_extensions(server: HelperServer) -> list[str]:
    """ALTER EXTENSION ... UPDATE everywhere; "db: name from → to" for each that moved."""
    moved = []
    query = "SELECT extname || ' ' || extversion FROM pg_extension ORDER BY 1"
    for db in server.databases():
        before = dict(line.split(" ", 1) for line in server.psql(db, sql=query).stdout.splitlines())
        server.psql(db, sql="SELECT format('ALTER EXTENSION %I UPDATE', extname) "
                    "FROM pg_extension\n\\gexec\n")  # fmt: skip
        after = dict(line.split(" ", 1) for line in server.psql(db, sql=query).stdout.splitlines())
        moved += [f"{db}: {n} {before[n]} → {v}" for n, v in after.items() if before.get(n) != v]
    return moved


def point_project_at(settings: Settings, volume: str, made_by: str = "invoke db.upgrade") -> str:
    """Set PGKURA_VOLUME in the settings file (keeping its mode); what to say about it."""
    note = f"the PostgreSQL {SERVER_MAJOR} volume made by `{made_by}`"
    return set_value(settings, "PGKURA_VOLUME", volume, note)
