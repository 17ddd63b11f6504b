"""The same-host streaming standby (the Compose profile `standby`): created from the primary
with pg_basebackup and a physical replication slot, dropped, and promoted.

The standby streams through the primary's socket directory, mounted into its container: no
network, and the primary keeps serving while it is cloned. It connects as a dedicated role
whose generated password lives owner-only in PGKURA_STANDBY_DIR on the host and in a passfile
in the standby's volume (never on a command line: it reaches the container on stdin).
A promotion ends with the two volumes swapped in the settings file, as db.upgrade switches
PGKURA_VOLUME: the promoted data runs as the project's server, at the address applications
already use, and every task (backups, migrations) follows it.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import IO

import psycopg
from psycopg import sql

from pgkura.config.env_file import set_value
from pgkura.config.settings import CONTAINER_PORT, Settings, load_settings
from pgkura.connect.connection import connect, ping, wait_until_ready
from pgkura.dsn import Target, TargetKind
from pgkura.engines.base import Log
from pgkura.engines.docker import helpers
from pgkura.engines.docker.compose import (
    compose_argv,
    compose_env,
    container_state,
    logs_tail,
    require_docker,
    require_running,
    require_up,
    run,
)
from pgkura.engines.docker.engine import DockerEngine
from pgkura.errors import PgkuraError
from pgkura.progress import QUIET, Meter, Reporter
from pgkura.replication import roles
from pgkura.replication.roles import NotPrimaryError, Promotion
from pgkura.replication.state import Replica, replicas, slot_name

SERVICE = "postgres-standby"
PRIMARY_SOCKET = "/var/run/pgkura-primary"  # the primary's socket directory in the standby
PASSFILE = "/var/lib/postgresql/replication.pgpass"  # in the standby's volume, beside PGDATA
# the passfile is written from stdin, then pg_basebackup clones into the image's PGDATA
_CLONE = 'set -eu; umask 077; cat > "$PGPASSFILE"; exec pg_basebackup -D "$PGDATA" "$@"'


class StandbyError(PgkuraError):
    """The standby cannot be created, started or promoted as asked."""


def standby_target(settings: Settings) -> Target:
    """The standby through its own socket directory (trusted, as the primary's is)."""
    params = {"host": str(settings.standby_socket_dir), "port": str(CONTAINER_PORT),
              "user": settings.postgres_user, "dbname": settings.postgres_db}  # fmt: skip
    return Target(params, TargetKind.CONTAINER, f"POSTGRES_PASSWORD in {settings.env_file}")


def _compose(settings: Settings, *args: str, what: str) -> str:
    argv = compose_argv(settings, *args, profiles=("standby",))
    return run(argv, what=what, env=compose_env(settings))


def _own_primary(settings: Settings) -> None:
    if settings.is_embedded or not settings.target.is_container:
        raise StandbyError(
            "db.standby and db.promote manage a standby of the project's own container "
            "(PGKURA_ENGINE=docker, no DATABASE_URL/PGKURA_MIGRATION_URL).\n→ for a server "
            'elsewhere, follow "A standby on another host" in docs/production.md'
        )


@dataclass(frozen=True)
class Created:
    container: str
    slot: str
    replica: Replica | None
    already: bool = False  # it existed and streams: nothing was done
    started: bool = False  # it existed and was started again


def create(
    settings: Settings, log: Log, *, rebuild: bool = False, progress: Reporter = QUIET
) -> Created:
    """Clone the primary into the standby's volume and start it streaming; an existing standby
    is started (or left as it is when it runs); `rebuild` deletes it first (the caller has
    asked the person: its volume may hold the old primary after a promotion)."""
    _own_primary(settings)
    require_docker()
    require_running(settings)
    target, slot = settings.target, slot_name(settings.standby_container)
    with connect(target, purpose="standby") as conn:
        roles.check_primary(conn, settings, target, "a standby's clone")
        if rebuild:
            _drop(settings, conn, slot, log)
        found = container_state(_as_standby(settings))
        if found is not None or helpers.volume_exists(settings.standby_volume):
            if found is not None and found.running:
                return Created(settings.standby_container, slot, _replica(conn, slot), True)
            log(f"starting the existing standby {settings.standby_container}")
            _start(settings, log)
            return Created(settings.standby_container, slot, _streaming(settings, conn, slot),
                           started=True)  # fmt: skip
        password = _replication_role(settings, conn, log)
        _free_slot(conn, slot)
    log(f"cloning {target.redacted()} into volume {settings.standby_volume} with pg_basebackup "
        f"(slot {slot}); the primary keeps serving")  # fmt: skip
    settings.standby_socket_dir.mkdir(parents=True, exist_ok=True)
    _clone(settings, slot, password, progress)
    roles.write_json(settings.standby_dir / roles.STANDBY,
                     {"container": settings.standby_container, "volume": settings.standby_volume,
                      "slot": slot, "created_at": _now()})  # fmt: skip
    _start(settings, log)
    with connect(target, purpose="standby") as conn:
        return Created(settings.standby_container, slot, _streaming(settings, conn, slot))


def _as_standby(settings: Settings) -> Settings:
    """The settings seen from the standby's container (for container_state and its checks)."""
    return replace(settings, container_name=settings.standby_container)


def _replication_role(settings: Settings, conn: psycopg.Connection, log: Log) -> str:
    """The role the standby logs in as, with its password (made once, kept owner-only)."""
    path = settings.standby_dir / roles.PASSWORD
    if path.is_file():
        password = path.read_text().strip()
    else:
        password = secrets.token_urlsafe(32)  # no ':' or '\\': a passfile line as it is
        roles.write_record(path, password + "\n")
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (roles.ROLE,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    if not exists:
        log(f"creating the replication role {roles.ROLE} (its password: {path}, owner-only)")
    # hashed here, as psql's \password does: the statement (which pg_stat_statements and a
    # statement log may keep) carries the SCRAM verifier, never the password
    verifier = conn.pgconn.encrypt_password(
        password.encode(), roles.ROLE.encode(), b"scram-sha-256"
    )
    conn.execute(
        sql.SQL("{} ROLE {} WITH LOGIN REPLICATION PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(roles.ROLE), sql.Literal(verifier.decode())
        )
    )
    return password


def _free_slot(conn: psycopg.Connection, slot: str) -> None:
    """A slot of that name left by an earlier standby (nothing streams through it) would make
    pg_basebackup -C fail: it goes, with the WAL it kept."""
    conn.execute(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
        "WHERE slot_name = %s AND NOT active",
        (slot,),
    )


def _clone(settings: Settings, slot: str, password: str, progress: Reporter) -> None:
    argv = compose_argv(
        settings, "run", "--rm", "--no-deps", "-T", "--user", "postgres",
        "--entrypoint", "sh", "-e", f"PGPASSFILE={PASSFILE}", SERVICE, "-c", _CLONE, "sh",
        "-h", PRIMARY_SOCKET, "-p", str(CONTAINER_PORT), "-U", roles.ROLE, "-w",
        "-C", "-S", slot, "-R", "-X", "stream", "-c", "fast", "-P", profiles=("standby",),
    )  # fmt: skip
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=compose_env(settings)) as proc:  # fmt: skip
        assert proc.stdin is not None  # noqa: S101 - piped above
        assert proc.stderr is not None  # noqa: S101
        proc.stdin.write(f"*:*:*:{roles.ROLE}:{password}\n".encode())
        proc.stdin.close()
        with progress.meter("standby clone (pg_basebackup)") as meter:
            said = _follow(proc.stderr, meter)
        code = proc.wait()
    if code != 0:
        helpers.remove_volume(settings.standby_volume)  # half a clone is no standby
        raise StandbyError(
            f"pg_basebackup failed (exit {code}): {said.strip()}\n"
            "→ check the primary's log (`invoke db.logs`) and the free disk space, then run "
            "`invoke db.standby` again"
        )


_PROGRESS = re.compile(rb"^\s*(\d+)/(\d+) kB \(")


def _follow(stderr: IO[bytes], meter: Meter) -> str:
    """Feed pg_basebackup -P's redrawn "done/total kB (n%)" lines into the meter; what else
    it says (its errors) is returned."""
    said, pending = [], b""
    while chunk := stderr.read1(65536):  # type: ignore[attr-defined]
        pending += chunk
        *lines, pending = re.split(rb"[\r\n]", pending)
        for line in lines:
            found = _PROGRESS.match(line)
            if found:
                meter.total = int(found[2]) * 1024 or None
                meter.update(int(found[1]) * 1024)
            elif line.strip():
                said.append(line.decode(errors="replace"))
    if pending.strip() and not _PROGRESS.match(pending):
        said.append(pending.decode(errors="replace"))
    return "\n".join(said)


def _start(settings: Settings, log: Log) -> None:
    _compose(settings, "up", "--detach", "--no-deps", SERVICE, what="starting the standby")
    standby = _as_standby(settings)

    def still_hopeful() -> None:
        state = container_state(standby)
        if state is not None and state.restarts > 0:
            why = logs_tail(standby, 5)
            helpers.remove(settings.standby_container)  # not left restarting in a loop
            raise StandbyError(
                f"the standby {settings.standby_container} does not start: "
                f"{why}\n→ `invoke db.standby --rebuild` clones it again"
            )
        require_up(standby, state, restarting_ok=True)

    log(f"waiting for the standby {settings.standby_container} to accept connections")
    wait_until_ready(standby_target(settings), settings.connect_wait_ms, poll_s=0.2,
                     still_hopeful=still_hopeful)  # fmt: skip


def _replica(conn: psycopg.Connection, slot: str) -> Replica | None:
    return next((r for r in replicas(conn) if r.slot == slot), None)


def _streaming(settings: Settings, conn: psycopg.Connection, slot: str) -> Replica | None:
    """The standby's slot once it streams (polled up to PGKURA_CONNECT_WAIT)."""
    deadline = time.monotonic() + settings.connect_wait_ms / 1000
    while True:
        replica = _replica(conn, slot)
        if (replica is not None and replica.streaming) or time.monotonic() >= deadline:
            return replica
        time.sleep(0.2)


def drop(settings: Settings, log: Log) -> None:
    """Remove the standby: its container, its volume and its slot (the WAL the slot kept on the
    primary is freed). The caller has asked the person."""
    _own_primary(settings)
    require_docker()
    require_running(settings)
    with connect(settings.target, purpose="standby") as conn:
        _drop(settings, conn, slot_name(settings.standby_container), log)


def forget(settings: Settings) -> None:
    """After the standby's volume was deleted with the primary's (db.down --volumes,
    db.reset): no slot is expected any more."""
    (settings.standby_dir / roles.STANDBY).unlink(missing_ok=True)


def _drop(settings: Settings, conn: psycopg.Connection, slot: str, log: Log) -> None:
    helpers.remove(settings.standby_container)
    helpers.remove_volume(settings.standby_volume)
    _free_slot(conn, slot)
    forget(settings)
    log(f"removed the standby {settings.standby_container}, its volume "
        f"{settings.standby_volume} and its slot {slot}")  # fmt: skip


@dataclass(frozen=True)
class Promoted:
    promotion: Promotion
    switched: list[str]  # what was written to the settings file
    target: str  # the project's server now, without its password


def promote(
    settings: Settings, log: Log, confirm: Callable[[str], None], *, stop_old: bool = False
) -> Promoted:
    """Promote the standby, then make it the project's server. Refused while the old primary
    still accepts writes, unless `stop_old`: it is stopped first (cleanly, so the standby
    receives its last WAL). `confirm` hears what will be done once the checks passed, before
    anything changes, and raises to stop it."""
    _own_primary(settings)
    require_docker()
    standby = _as_standby(settings)
    require_up(standby, container_state(standby))
    with connect(standby_target(settings), purpose="promote") as conn:
        if not roles.node(conn).in_recovery:
            raise StandbyError(
                f"{settings.standby_container} is not a standby (not in recovery): nothing "
                "to promote.\n→ `invoke db.standby --rebuild` makes it a standby again"
            )
    writable = _accepts_writes(settings)
    if writable and not stop_old:
        raise NotPrimaryError(
            f"the primary {settings.target.redacted()} still accepts writes: promoting the "
            "standby now would leave two writable servers, and what the application writes "
            "to the old one would be lost.\n→ `invoke db.promote --stop-old` stops the old "
            "primary first (the standby receives its last WAL as it shuts down)"
        )
    stopping = f"stop the primary {settings.container_name}, " if writable else ""
    confirm(f"{stopping}promote the standby {settings.standby_container} and make it the "
            "project's server")  # fmt: skip
    if writable:
        log(f"stopping the old primary {settings.container_name}")
        helpers.stop(settings.container_name)
    log(f"promoting {settings.standby_container}")
    with connect(standby_target(settings), purpose="promote") as conn:
        conn.execute("SELECT pg_promote(true, 60)")
        node = _until_writable(conn, settings.connect_wait_ms)
        # the promoted server no longer follows anyone
        conn.execute("ALTER SYSTEM RESET primary_conninfo")
        conn.execute("ALTER SYSTEM RESET primary_slot_name")
    promotion = Promotion(str(node.system_identifier), int(node.timeline or 0), _now(),
                          settings.standby_volume, settings.volume)  # fmt: skip
    roles.record_promotion(settings, promotion)
    (settings.standby_dir / roles.STANDBY).unlink(missing_ok=True)
    log(f"promoted to timeline {node.timeline}; moving it to the project's container "
        f"{settings.container_name} (volume {promotion.volume})")  # fmt: skip
    helpers.remove(settings.standby_container)
    note = "swapped by `invoke db.promote`"
    switched = [
        set_value(settings, "PGKURA_VOLUME", promotion.volume, note),
        set_value(settings, "PGKURA_STANDBY_VOLUME", promotion.demoted_volume, note),
    ]
    after = load_settings(settings.root)
    if after.volume != promotion.volume:  # set in the environment: the person moves it
        raise StandbyError(
            f"promoted, but the project still names volume {after.volume}: "
            + "; ".join(switched)
            + f"\n→ set PGKURA_VOLUME={promotion.volume} and PGKURA_STANDBY_VOLUME="
            f"{promotion.demoted_volume}, then `invoke db.up`"
        )
    DockerEngine(after).up(log)
    return Promoted(promotion, switched, after.target.redacted())


def _accepts_writes(settings: Settings) -> bool:
    """Whether the old primary answers and is not in recovery (a stopped container, or a
    server that does not answer, is not writable)."""
    state = container_state(settings)
    if state is None or not state.running or ping(settings.target) is not None:
        return False
    try:
        with connect(settings.target, purpose="promote", connect_timeout=3) as conn:
            return not roles.node(conn).in_recovery
    except PgkuraError:
        return False


def _until_writable(conn: psycopg.Connection, wait_ms: int) -> roles.Node:
    """Poll until the promoted server is out of recovery and assigns a transaction id."""
    deadline = time.monotonic() + wait_ms / 1000
    while True:
        node = roles.node(conn)
        if not node.in_recovery:
            conn.execute("SELECT pg_current_xact_id()")  # a write: refused in recovery
            return node
        if time.monotonic() >= deadline:
            raise StandbyError("the standby did not leave recovery in time; see its log "
                               "(`docker logs <container>-standby`)")  # fmt: skip
        time.sleep(0.2)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def after_up(settings: Settings, log: Log) -> Created | None:
    """What db.up owes replication once the project's server runs: an old primary started by
    mistake is stopped again (applications must not write to both sides), and the standby
    db.standby made, stopped by db.down, streams again. The standby, when it was started."""
    if settings.is_embedded or not settings.target.is_container:
        return None
    if not roles.replication_in_use(settings):
        return None
    with connect(settings.target, purpose="standby") as conn:
        node = roles.node(conn)
    old = (
        None
        if node.in_recovery
        else roles.refusal(
            node, roles.read_promotion(settings), settings.target.redacted(), "db.up"
        )
    )
    if old:
        helpers.stop(settings.container_name)
        raise NotPrimaryError(f"{old}\n(db.up stopped {settings.container_name} again)")
    if not (settings.standby_dir / roles.STANDBY).is_file():
        return None
    found = container_state(_as_standby(settings))
    if found is not None and found.running:
        return None
    return create(settings, log)
