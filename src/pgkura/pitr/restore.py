"""`db.restore-to MOMENT`: the cluster as it was at a moment, from a base backup and the WAL
archive, into a NEW volume; the live volume is never written to and stays as the undo.

The steps, each refusing to go on if the one before did not succeed:
 1. the live server (when it runs) hands its newest WAL to the archive (`pgbackrest check`);
 2. a base backup that ended before the moment is chosen, with no WAL missing between (else:
    the window or the hole, and refuse);
 3. a new volume is made and `pgbackrest restore --type=time` fills it;
 4. a helper server starts on it, with the project's own command and settings: it replays the
    WAL up to the moment and is promoted onto a new timeline; pgkura checks that, then clears
    the recovery settings pgBackRest left in postgresql.auto.conf (a replica cloned later
    would inherit them) and stops it cleanly;
 5. the project is pointed at the new volume (PGKURA_VOLUME, as `db.upgrade` does) and
    started (`db.up`: the stanza is checked, archiving goes on on the new timeline);
 6. a fresh full base backup, so the new timeline has its own starting point.
A failure before step 5 removes the helper and the half-made volume; the project is as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pgkura.config.settings import VOLUME, Settings
from pgkura.connect.connection import connect
from pgkura.engines.docker import helpers, pgbackrest
from pgkura.engines.docker.compose import container_state
from pgkura.engines.lifecycle import up
from pgkura.errors import PgkuraError
from pgkura.replication.roles import require_primary
from pgkura.upgrade.major import point_project_at

if TYPE_CHECKING:
    import psycopg

Log = Callable[[str], None]
_LABEL = "pgkura.pitr"
_RECOVERY = (
    "restore_command",
    "recovery_target_time",
    "recovery_target_timeline",
    "recovery_target_action",
)
_STOP_S = 120  # a clean shutdown of the helper (a checkpoint after replay)
_PROMOTE_S = 3600  # WAL replay of a busy day can take long; the helper's exit is seen at once
_EXAMPLE = '"2026-11-30 16:59:00+09:00"'


def parse_moment(text: str) -> datetime:
    """The moment to restore to: an ISO date and time with an explicit UTC offset (the
    container runs in UTC; a time without an offset would be nine hours off in Japan)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise pgbackrest.PitrError(f"{text!r} is not a date and time → e.g. {_EXAMPLE}") from None
    if moment.tzinfo is None:
        raise pgbackrest.PitrError(
            f"{text!r} has no UTC offset: the server runs in UTC, so the moment "
            f"would be ambiguous → add the offset, e.g. {_EXAMPLE} (JST) or Z for UTC"
        )
    return moment


@dataclass(frozen=True)
class Plan:
    moment: datetime
    backup: pgbackrest.BaseBackup  # the newest that ended before the moment, local if any
    source: str  # the live volume (kept, the undo)
    target: str  # the new volume

    def lines(self) -> list[str]:
        return [
            f"moment: {pgbackrest.local(self.moment)} "
            f"({self.moment.astimezone(UTC).isoformat(sep=' ', timespec='seconds')})",
            f"from: base backup {self.backup.label} ({self.backup.kind}, {self.backup.where}, "
            f"ended {pgbackrest.local(self.backup.stopped)}) and the archived WAL after it",
            f"to: a new volume {self.target}; then the project switches to it (PGKURA_VOLUME) "
            "and takes a full base backup",
            f"kept: {self.source} as it is now; going back is PGKURA_VOLUME={self.source}",
        ]


def make_plan(settings: Settings, moment: datetime, to_volume: str = "") -> Plan:
    """Choose the base backup; PitrError when the moment is outside what can be restored."""
    pgbackrest.require(settings)
    now = datetime.now(UTC)
    if moment > now:
        raise pgbackrest.PitrError(
            f"{pgbackrest.local(moment)} has not happened yet (now: {pgbackrest.local(now)})"
        )
    found, _ = pgbackrest.backups(settings)
    gaps = pgbackrest.wal_gaps(settings, found, _segment_bytes(settings)) if found else []
    backup = choose_backup(found, gaps, moment)
    stamp = now.strftime("%Y%m%d%H%M%S")
    to_volume = VOLUME.flag(to_volume or None, "--to-volume") or ""
    target = to_volume or f"{settings.compose_project}_pgdata_pitr_{stamp}"
    return Plan(moment, backup, settings.volume, target)


def choose_backup(
    found: list[pgbackrest.BaseBackup], gaps: list[pgbackrest.Gap], moment: datetime
) -> pgbackrest.BaseBackup:
    """The newest base backup that ended before `moment`, from the local repository (faster)
    unless WAL it lacks lies between, then from the off-site one; PitrError, before anything
    is made, when the moment is before every base backup or inside a hole of every repository
    that has one."""
    before = [b for b in found if b.stopped <= moment]
    if not before:
        reach = f"from {pgbackrest.local(found[0].stopped)} on" if found else "nothing yet"
        raise pgbackrest.PitrError(
            f"no base backup ended before {pgbackrest.local(moment)}: a restore can reach {reach}\n"
            "→ choose a later moment (`invoke db.backups` shows the window)"
        )
    holes = []
    for repo in sorted({b.repo for b in before}):
        in_repo = [g for g in gaps if g.repo == repo and g.covers(moment)]
        if not in_repo:
            return [b for b in before if b.repo == repo][-1]
        holes += in_repo
    earlier = pgbackrest.local(max(g.since for g in holes))
    ends = [g.until for g in holes if g.until is not None]
    later = (
        f"from {pgbackrest.local(min(ends))} on"
        if ends
        else "none after it until a new base backup (`invoke db.basebackup --type full`)"
    )
    hole = pgbackrest.hole_line(holes[0].facts())
    raise pgbackrest.PitrError(
        f"{pgbackrest.local(moment)} is inside a hole of the WAL archive: {hole}\n"
        f"→ the nearest moments a restore reaches: up to {earlier}, and {later}"
    )


def _segment_bytes(settings: Settings) -> int:
    """The server's WAL segment size (it names the archive's files); initdb's default when
    the server is down."""
    state = container_state(settings)
    if state is None or not state.running:
        return pgbackrest.SEGMENT_BYTES
    with connect(settings.target, purpose="restore to a moment") as conn:
        return pgbackrest.archiver(conn).segment_bytes


@dataclass(frozen=True)
class Restored:
    timeline: int
    switched: str  # what was changed to point the project at the new volume
    backups: list[pgbackrest.BaseBackup]  # the fresh full backup, in each repository


def restore(settings: Settings, plan: Plan, log: Log) -> Restored:
    """Carry it out (see the module's steps)."""
    helper = f"pgkura-pitr-{settings.compose_project}"
    helpers.remove(helper, _STOP_S)  # what a killed run left
    if helpers.volume_exists(plan.target):
        raise pgbackrest.PitrError(
            f"a volume {plan.target} exists already → choose another with --to-volume"
        )
    state = container_state(settings)
    if state is not None and state.running:
        require_primary(settings, settings.target, "a restore to a moment")
        log("handing the newest WAL to the archive (pgbackrest check)")
        try:
            pgbackrest.in_server(settings, "check", what="pgBackRest's check before the restore")
        except pgbackrest.PitrError as exc:  # an earlier moment may still be in the archive
            log(f"going on without the newest WAL, so a moment after the last archived WAL "
                f"cannot be reached: {exc}")  # fmt: skip
        with connect(settings.target, purpose="restore to a moment") as conn:
            live = live_timeline(conn)
    else:
        live = None  # pgBackRest follows the newest timeline in the archive
    done = False
    try:
        timeline = _restore_into(settings, plan, helper, along(live, plan.backup), log)
        done = True
    finally:
        helpers.remove(helper, _STOP_S)
        if not done:
            log(f"stopping: removing {plan.target}; the project is as it was")
            helpers.remove_volume(plan.target)
    switched = point_project_at(settings, plan.target, "invoke db.restore-to")
    log(f"{switched}; starting the server on it")
    moved = replace(settings, volume=plan.target)
    try:
        up(moved, log=log)
        log("taking a full base backup of the new timeline")
        return Restored(timeline, switched, pgbackrest.base_backup(moved, "full"))
    except PgkuraError as exc:
        raise pgbackrest.PitrError(
            f"{exc}\nThe project now uses {plan.target}, restored to the moment; starting it or "
            "its first base backup failed.\n→ fix the above, then `invoke db.up` and `invoke "
            f"db.basebackup`; to go back instead: PGKURA_VOLUME={plan.source}"
        ) from None


def live_timeline(conn: psycopg.Connection) -> int | None:
    row = conn.execute("SELECT timeline_id FROM pg_control_checkpoint()").fetchone()
    return int(row[0]) if row else None


def along(live: int | None, backup: pgbackrest.BaseBackup) -> list[str]:
    """pgBackRest's option to recover along the live server's timeline (when it runs): the
    archive may hold newer timelines that forked before the base backup (a drill's, before
    drills stopped archiving), and following the newest would fail ("forked from backup
    timeline … before backup lsn"). The backup's own timeline is `current`, which needs no
    history file; a later one is named, and its history file must be in the archive."""
    if live is None:
        return []
    if backup.wal_start and int(backup.wal_start[:8], 16) == live:
        return ["--target-timeline=current"]
    return [f"--target-timeline={live}"]


def _restore_into(settings: Settings, plan: Plan, helper: str, following: list[str],
                  log: Log) -> int:  # fmt: skip
    """Steps 3 and 4: the restored, promoted and cleaned cluster in plan.target; its timeline."""
    target = plan.moment.isoformat(sep=" ")
    options = ["--type=time", f"--target={target}", *following]
    server = recovered(settings, plan.backup, plan.target, helper, options, plan.source, log)
    timeline = int(server.psql("postgres", sql="SELECT timeline_id FROM pg_control_checkpoint()")
                   .stdout.strip())  # fmt: skip
    server.psql("postgres", sql="".join(f"ALTER SYSTEM RESET {name};\n" for name in _RECOVERY))
    left = server.psql("postgres", sql=_LEFT_SQL).stdout.split()
    if left:
        raise pgbackrest.PitrError(
            f"postgresql.auto.conf still sets {', '.join(left)} after the reset"
        )
    log(f"recovered and promoted onto timeline {timeline}; recovery settings cleared")
    helpers.stop(helper, _STOP_S)
    return timeline


def recovered(
    settings: Settings,
    backup: pgbackrest.BaseBackup,
    volume: str,
    helper: str,
    target: list[str],
    made_for: str,
    log: Log,
    *,
    throwaway: bool = False,
) -> helpers.HelperServer:
    """A new `volume` (labelled with `made_for`) filled by pgBackRest from `backup` up to
    `target` (its --type and --target options), and a helper server on it with the project's
    command and settings that replayed the WAL and was promoted: running, no published port.
    A `throwaway` one does not archive: its new timeline would reach the project's repository,
    and later restores (following the newest timeline) would fork onto it and fail."""
    definition = pgbackrest.server_definition(settings)
    command = [*definition.command, *(["-c", "archive_mode=off"] if throwaway else [])]
    helpers.create_volume(volume, (_LABEL, made_for))
    log(f"restoring {backup.label} ({backup.where}) into {volume}")
    pgbackrest.in_repository(settings, "restore", *target, "--target-action=promote",
                             f"--set={backup.label}", f"--repo={backup.repo}",
                             what="pgbackrest restore",
                             mounts=(f"{volume}:/var/lib/postgresql",))  # fmt: skip
    log("replaying the archived WAL up to the target (a helper server, no published port)")
    helpers.start(helper, settings.image, *command,
                  label=(_LABEL, settings.compose_project),
                  mounts=(*definition.mounts, f"{volume}:/var/lib/postgresql"),
                  env=tuple(definition.env), environ=definition.docker_env(),
                  network=definition.network, what="starting the helper server")  # fmt: skip
    server = helpers.HelperServer(helper, settings.postgres_user)
    server.wait()
    _until_promoted(server)
    return server


# pg_file_settings reads the files afresh: what the next start would apply
_LEFT_SQL = (
    "SELECT name FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf' "  # noqa: S608 - constant names
    "AND name IN (" + ", ".join(f"'{name}'" for name in _RECOVERY) + ")"
)


def _until_promoted(server: helpers.HelperServer) -> None:
    """Until recovery has ended (the server answers read-only queries while it replays). A
    moment past the archived WAL makes PostgreSQL stop with "recovery ended before configured
    recovery target was reached": the helper exits, and its log says so."""
    deadline = time.monotonic() + _PROMOTE_S
    while True:
        found = server.psql("postgres", sql="SELECT pg_is_in_recovery()", check=False)
        if found.returncode == 0 and found.stdout.strip() == "f":
            return
        if time.monotonic() > deadline:
            raise pgbackrest.PitrError(f"{server.name} was still recovering after {_PROMOTE_S} s")
        server.wait()  # raises with the helper's log when it stopped
        time.sleep(0.5)
