"""Point-in-time recovery with pgBackRest (PGKURA_PITR=on): the stanza, base backups, what the
repository can restore, and how archiving is doing.

pgBackRest runs inside the project's image as the server's user, with the PGBACKREST_*
settings that docker-compose.pitr.yml gives the server: `docker exec` into the container for
what needs the server (stanza, check, backup), a throwaway container on the repositories (the
local volume; the off-site storage over the project's network) for what needs only them (info,
restore), so both work while the server is down.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import psycopg

from pgkura.config.settings import Settings
from pgkura.engines.base import PITR_NEEDS_DOCKER
from pgkura.engines.docker import s3_repository
from pgkura.engines.docker.compose import (
    DockerError,
    compose_argv,
    compose_env,
    require_docker,
    require_running,
)
from pgkura.errors import PgkuraError

PGDATA = "/var/lib/postgresql/18/docker"
REPO = "/var/lib/pgbackrest"
KINDS = ("full", "diff", "incr", "auto")
FULL_EVERY = timedelta(days=7)  # `auto`: a full backup when the newest is older, else a diff
NEWEST_BACKUP_WARN_H = 48
WAITING_SEGMENTS_WARN = 8  # completed WAL segments not archived yet (16 MiB each by default)

_NO_PGBACKREST = (
    "the container's image has no pgBackRest (built before PITR) → `invoke db.up --build`"
)
_OTHER_CLUSTER = (
    "the repository holds another cluster's backups (a re-initialised database, or "
    "PGKURA_PITR_VOLUME shared with another project) → point PGKURA_PITR_VOLUME at a new "
    "volume, or `docker volume rm` the old repository once its backups are not needed"
)
# pgBackRest's own error codes (numbered in its error.yaml, stable across releases)
_REMEDIES = {
    28: _OTHER_CLUSTER,  # stanza-create: info files that do not match the database
    44: _OTHER_CLUSTER,  # archive-push / check: WAL of another system identifier
    82: "WAL did not reach the repository in time: the server's archive_command fails → "
    "`invoke db.logs` shows archive-push's messages",
    87: "the server runs without WAL archiving → `invoke db.up` recreates it with the "
    "archive settings",
    126: _NO_PGBACKREST,  # docker exec: the command cannot be run
    127: _NO_PGBACKREST,  # docker run: the command is not found
}
_LOCKED = 50  # LockAcquireError: another pgBackRest process holds the lock
_NOT_ARCHIVED = 82  # ArchiveTimeoutError: check's WAL switch did not reach a repository
_LOCK_WAIT_S = 120
_GENERIC = "see pgBackRest's message above; `invoke db.logs` shows the server's side"


class PitrError(PgkuraError):
    """Archiving, a base backup or a point-in-time restore failed or cannot start."""


def require(settings: Settings) -> None:
    """PitrError unless PITR is on for the project's own container."""
    if settings.is_embedded:
        raise PitrError(PITR_NEEDS_DOCKER)
    if not settings.pitr.enabled:
        raise PitrError(
            "point-in-time recovery is off\n→ set PGKURA_PITR=on in .env, then `invoke db.up` "
            "(it restarts the server with WAL archiving)"
        )
    target = settings.target  # pgkura's direct connection: PGKURA_MIGRATION_URL first
    if not target.is_container:
        name = target.credentials  # the setting that names the server
        raise PitrError(
            f"point-in-time recovery covers the project's own container, not {name}'s "
            f"server\n→ unset {name} (a managed server has its provider's PITR)"
        )
    require_docker()


def repositories(settings: Settings) -> tuple[int, ...]:
    """pgBackRest's repositories: 1 the local volume, 2 the off-site storage when set."""
    return (1, s3_repository.REPO) if s3_repository.configured(settings) else (1,)


@dataclass(frozen=True)
class BaseBackup:
    label: str
    kind: str  # full | diff | incr
    started: datetime
    stopped: datetime  # a restore can reach any moment from here on
    size: int  # the cluster's size
    stored: int  # in the repository
    repo: int = 1
    wal_start: str = ""  # the WAL segment a restore from it starts replaying at

    @property
    def where(self) -> str:
        return where(self.repo)


def where(repo: int) -> str:
    return "local" if repo == 1 else "off-site"


def _when(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def parse_info(text: str) -> tuple[list[BaseBackup], str]:
    """`pgbackrest info --output=json` for one stanza: its backups in every repository, oldest
    first, and its status message ("ok" when usable)."""
    found = json.loads(text)
    if not found:
        return [], "no stanza"
    stanza = found[0]
    backups = [
        BaseBackup(b["label"], b["type"], _when(b["timestamp"]["start"]),
                   _when(b["timestamp"]["stop"]), int(b["info"]["size"]),
                   int(b["info"]["repository"]["size"]), int(b["database"]["repo-key"]),
                   str(b.get("archive", {}).get("start") or ""))
        for b in stanza.get("backup", []) if not b.get("error")
    ]  # fmt: skip
    backups.sort(key=lambda b: (b.stopped, b.repo))
    return backups, str(stanza.get("status", {}).get("message", "?"))


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    except FileNotFoundError:
        raise DockerError("docker is not installed (no `docker` on PATH)") from None


def failure(what: str, result: subprocess.CompletedProcess[str]) -> PitrError:
    said = (result.stderr or result.stdout).strip()
    remedy = _REMEDIES.get(result.returncode, _GENERIC)
    return PitrError(f"{what} failed (pgBackRest exit {result.returncode}):\n{said}\n→ {remedy}")


def in_server(settings: Settings, *args: str, what: str, again_on: int | None = None) -> str:
    """pgBackRest in the running container, as the server's user; its stdout. While the
    asynchronous archiver holds the stanza's lock (a server that just started hands over its
    WAL), commands that need it wait for it, up to _LOCK_WAIT_S. A failure with exit code
    `again_on` is tried once more."""
    require_running(settings)
    argv = ["docker", "exec", "--user", "postgres", settings.container_name, "pgbackrest", *args]
    deadline = time.monotonic() + _LOCK_WAIT_S
    while (result := _run(argv)).returncode == _LOCKED and time.monotonic() < deadline:
        time.sleep(1)
    if again_on is not None and result.returncode == again_on:
        result = _run(argv)
    if result.returncode != 0:
        raise failure(what, result)
    return result.stdout


@dataclass(frozen=True)
class ServerDefinition:
    """The server's command and pgBackRest's settings as Compose gives them to the service:
    helpers (restore, its trial start) run exactly what the project's server runs."""

    command: list[str]
    env: dict[str, str] = field(repr=False)  # PGBACKREST_*: the S3 keys among them
    network: str  # none, or the project's when a repository is reached over the network
    mounts: tuple[str, ...]  # the repository's volume, the S3 CA file

    def run_flags(self) -> list[str]:
        """`docker run` flags; the settings by name only (values from `docker_env`)."""
        return ["--network", self.network, *[a for k in self.env for a in ("-e", k)],
                *[a for m in self.mounts for a in ("-v", m)]]  # fmt: skip

    def docker_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}


def server_definition(settings: Settings) -> ServerDefinition:
    argv = compose_argv(settings, "config", "--format", "json")
    result = _run(argv, compose_env(settings))
    if result.returncode != 0:
        raise DockerError(f"docker compose config failed: {result.stderr.strip()}")
    config = json.loads(result.stdout)
    service = config["services"]["postgres"]
    env = {k: str(v) for k, v in service["environment"].items() if k.startswith("PGBACKREST_")}
    mounts = [f"{settings.pitr.volume}:{REPO}"]
    network = "none"
    if s3_repository.configured(settings):
        network = config["networks"]["default"]["name"]
        if _run(["docker", "network", "inspect", network]).returncode != 0:
            raise PitrError(
                f"the project's network {network} is gone (the project is down), and the "
                "off-site repository is reached through it\n→ `invoke db.up`, then again"
            )
        mounts += [f"{m['source']}:{m['target']}:ro" for m in service["volumes"]
                   if m["target"] == s3_repository.CA_IN_CONTAINER]  # fmt: skip
    return ServerDefinition([str(a) for a in service["command"]], env, network, tuple(mounts))


def in_repository(settings: Settings, *args: str, what: str, mounts: tuple[str, ...] = ()) -> str:
    """pgBackRest in a throwaway container on the repositories (the server's user; `mounts`
    adds `-v` volumes); its stdout."""
    server = server_definition(settings)
    extra = [a for v in mounts for a in ("-v", v)]
    argv = ["docker", "run", "--rm", "--user", "postgres", *server.run_flags(), *extra,
            settings.image, "pgbackrest", *args]  # fmt: skip
    result = _run(argv, server.docker_env())
    if result.returncode != 0:
        raise failure(what, result)
    return result.stdout


def ensure_stanza(settings: Settings) -> None:
    """Create the stanza (nothing to do when it exists and matches the cluster), then
    `pgbackrest check`: a WAL switch that must reach the repository, so archiving is proven
    from the server itself, not from a shell."""
    in_server(
        settings, "stanza-create", what=f"creating pgBackRest's stanza {settings.pitr.stanza}"
    )
    # A server that started before its stanza existed (a repository made anew, after a
    # restore from the off-site one) failed to push, and PostgreSQL's archiver then waits up to
    # a minute: as long as check's own wait. One more check outlasts that pause.
    in_server(settings, "check", what="pgBackRest's check (archiving from the server)",
              again_on=_NOT_ARCHIVED)  # fmt: skip


def backups(settings: Settings) -> tuple[list[BaseBackup], str]:
    """The base backups in the repository, oldest first, and the stanza's status."""
    volume = ["docker", "volume", "inspect", settings.pitr.volume]
    if _run(volume).returncode != 0:  # never made by a mount here: Compose owns it
        return [], f"no repository volume {settings.pitr.volume} yet: `invoke db.up` makes it"
    return parse_info(in_repository(settings, "info", "--output=json", what="pgbackrest info"))


def base_backup(settings: Settings, kind: str) -> list[BaseBackup]:
    """A base backup of the running server into each repository (`kind` full, diff, incr, or
    auto: see `auto_kind`; pgBackRest makes a repository's first one full whatever is asked),
    verified there; expiry by PGKURA_PITR_KEEP_FULL follows each backup."""
    if kind not in KINDS:
        raise PitrError(f"--type {kind!r} is not a base backup type: choose {', '.join(KINDS)}")
    require(settings)
    taken = []
    for repo in repositories(settings):
        before = _backups_in(settings, repo)
        chosen = auto_kind(before, datetime.now(UTC)) if kind == "auto" else kind
        in_server(settings, "backup", f"--repo={repo}", f"--type={chosen}",
                  what=f"the {chosen} base backup (repository {repo})")  # fmt: skip
        found = _backups_in(settings, repo)
        if not found:
            raise PitrError(
                f"pgBackRest reported success but lists no backup in repository {repo} → "
                "`invoke db.doctor`"
            )
        newest = found[-1]
        in_server(settings, "verify", f"--repo={repo}", f"--set={newest.label}",
                  what=f"verifying {newest.label} (repository {repo})")  # fmt: skip
        taken.append(newest)
    return taken


def _backups_in(settings: Settings, repo: int) -> list[BaseBackup]:
    text = in_server(settings, "info", f"--repo={repo}", "--output=json", what="pgbackrest info")
    return parse_info(text)[0]


def auto_kind(found: list[BaseBackup], now: datetime) -> str:
    """Full when there is none from the last FULL_EVERY, else differential (changes since that
    full): a restore then needs at most two backups and a week's WAL."""
    fulls = [b for b in found if b.kind == "full"]
    return "full" if not fulls or now - fulls[-1].stopped > FULL_EVERY else "diff"


@dataclass(frozen=True)
class Archiver:
    """pg_stat_archiver, and how far the server's WAL is ahead of it."""

    archived_wal: str | None
    archived_at: datetime | None
    failed_count: int
    failed_wal: str | None
    failed_at: datetime | None
    current_wal: str
    segment_bytes: int
    now: datetime
    mode: str = "on"  # archive_mode

    @property
    def failing(self) -> bool:
        """Failed since the last success (the counter alone counts old failures too)."""
        return self.failed_at is not None and (
            self.archived_at is None or self.failed_at > self.archived_at
        )

    @property
    def waiting(self) -> int | None:
        """Completed segments not archived yet, when both names are segments of one timeline."""
        if not self.archived_wal or not _is_segment(self.archived_wal):
            return None
        if self.archived_wal[:8] != self.current_wal[:8]:
            return None
        per_log = 0x100000000 // self.segment_bytes
        return max(0, _number(self.current_wal, per_log) - _number(self.archived_wal, per_log) - 1)


def _is_segment(name: str) -> bool:
    return len(name) == 24 and all(c in "0123456789ABCDEF" for c in name)


SEGMENT_BYTES = 16 * 2**20  # initdb's default, the images' (what the server says wins)


@dataclass(frozen=True)
class Gap:
    """WAL segments missing from a repository between two it holds: dropped by pgBackRest past
    PGKURA_PITR_QUEUE_MAX, or never archived. pg_stat_archiver counts a dropped segment as
    archived, so only the repository shows it. A restore replaying through it stops at its
    first segment."""

    repo: int
    first: str  # the first missing segment
    last: str
    since: datetime  # when the segment before it reached the repository
    until: datetime | None  # the end of the first base backup that began after it, if any

    def line(self) -> str:
        then = local(self.until) if self.until else "now"
        text = (
            f"WAL dropped or never archived ({self.first}…{self.last} missing in the "
            f"{where(self.repo)} repository): restores to a time between {local(self.since)} "
            f"and {then} are impossible"
        )
        if self.until is None:
            return text + " → take a full base backup: `invoke db.basebackup --type full`"
        return text + "; a later base backup restores past it"

    def covers(self, moment: datetime) -> bool:
        """A restore to `moment` from this repository replays through the hole: after the
        last WAL before it, before the end of the first base backup past it."""
        return self.since < moment and (self.until is None or moment < self.until)

    def facts(self) -> dict[str, Any]:
        """The hole in `db.backups`' window (its `--json`; `to` None: no base backup past it)."""
        return {"repository": where(self.repo), "from": self.since, "to": self.until,
                "first_missing": self.first, "last_missing": self.last}  # fmt: skip


def hole_line(hole: Mapping[str, Any]) -> str:
    """A Gap's facts in words: the moments no restore reaches."""
    then = local(hole["to"]) if hole["to"] else "now"
    return (
        f"cannot reach {local(hole['from'])} … {then}: WAL dropped ({hole['first_missing']}…"
        f"{hole['last_missing']} missing in the {hole['repository']} repository)"
    )


def _number(name: str, per_log: int) -> int:
    return int(name[8:16], 16) * per_log + int(name[16:24], 16)


def _name(timeline: str, number: int, per_log: int) -> str:
    return f"{timeline}{number // per_log:08X}{number % per_log:08X}"


def find_gaps(
    listing: str, found: list[BaseBackup], repo: int, segment_bytes: int = SEGMENT_BYTES
) -> list[Gap]:
    """The gaps in one repository's archive (`pgbackrest repo-ls --recurse --output=json` of
    archive/<stanza>) that a restore from one of its base backups would replay through,
    oldest first. Segments are counted per archive and timeline: a new timeline starts at the
    segment of its switch, so only a hole inside one timeline is missing WAL."""
    per_log = 0x100000000 // segment_bytes
    held: dict[tuple[str, str], dict[int, int]] = {}
    for path, entry in json.loads(listing).items():
        archive_id, _, base = path.partition("/")
        base = base.rpartition("/")[2]
        if entry.get("type") == "file" and _is_segment(base[:24]) and base[24:25] == "-":
            held.setdefault((archive_id, base[:8]), {})[_number(base, per_log)] = entry["time"]
    starts = [(b.wal_start[:8], _number(b.wal_start, per_log), b) for b in found
              if b.repo == repo and _is_segment(b.wal_start)]  # fmt: skip
    gaps = []
    for (_, timeline), times in sorted(held.items()):
        numbers = sorted(times)
        for before, after in pairwise(numbers):
            if after - before == 1 or not any(t <= timeline and n <= before for t, n, _ in starts):
                continue  # contiguous, or before any base backup: no restore replays it
            later = [b.stopped for t, n, b in starts if t >= timeline and n >= after]
            gaps.append(Gap(repo, _name(timeline, before + 1, per_log),
                            _name(timeline, after - 1, per_log), _when(times[before]),
                            min(later, default=None)))  # fmt: skip
    return sorted(gaps, key=lambda g: g.since)


def wal_gaps(settings: Settings, found: list[BaseBackup], segment_bytes: int) -> list[Gap]:
    """The gaps in every repository's archive (see find_gaps)."""
    gaps = []
    for repo in repositories(settings):
        listing = in_repository(settings, "repo-ls", f"--repo={repo}", "--recurse",
                                "--output=json", f"archive/{settings.pitr.stanza}",
                                what=f"listing the WAL archive (repository {repo})")  # fmt: skip
        gaps += find_gaps(listing, found, repo, segment_bytes)
    return gaps


def gap_finding(gaps: list[Gap]) -> tuple[str, str]:
    """(level, detail) for `db.doctor`: a gap no later base backup covers fails (restores from
    its start until a new base backup are impossible); one covered is history, told as such."""
    if not gaps:
        return "ok", "no WAL missing between base backups and the newest archived segment"
    open_gaps = [g for g in gaps if g.until is None]
    return ("fail" if open_gaps else "ok"), "; ".join(g.line() for g in (open_gaps or gaps))


ARCHIVER_SQL = """
SELECT last_archived_wal, last_archived_time, failed_count, last_failed_wal, last_failed_time,
       pg_walfile_name(pg_current_wal_lsn()),
       (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'), now(),
       current_setting('archive_mode')
  FROM pg_stat_archiver
"""


def archiver(conn: psycopg.Connection) -> Archiver:
    row = conn.execute(ARCHIVER_SQL).fetchone()
    assert row is not None  # noqa: S101 - pg_stat_archiver has one row
    wal, at, failed, failed_wal, failed_at, current, segment, now, mode = row
    return Archiver(wal, at, int(failed), failed_wal, failed_at, current, int(segment), now, mode)


def archiving_finding(state: Archiver) -> tuple[str, str]:
    """(level, detail) for `db.doctor`."""
    if state.mode == "off":
        return "fail", (
            "PGKURA_PITR=on but the server runs without WAL archiving (started before it was "
            "turned on) → `invoke db.up` recreates it with the archive settings"
        )
    if state.failing:
        return "fail", (
            f"archiving fails: {state.failed_wal} since {local(state.failed_at)} "
            f"({state.failed_count} failures counted); WAL piles up in pg_wal until it works "
            "(or pgBackRest drops it past PGKURA_PITR_QUEUE_MAX) → `invoke db.logs` shows "
            "archive-push's error"
        )
    if state.archived_at is None:
        return "warn", "no WAL archived yet → `invoke db.up` creates the stanza and checks it"
    age = _minutes(state.now - state.archived_at)
    waiting = state.waiting
    detail = f"last WAL archived {state.archived_wal}, {age} ago"
    if waiting is not None:
        detail += f"; {waiting} completed segment(s) waiting"
    if waiting is not None and waiting > WAITING_SEGMENTS_WARN:
        return "warn", detail + " → archiving lags: `invoke db.logs` shows archive-push"
    return "ok", detail


def base_backup_finding(
    found: list[BaseBackup], now: datetime, repos: tuple[int, ...] = (1,)
) -> tuple[str, str]:
    """(level, detail) for `db.doctor`: the newest base backup's age (WAL since then is
    replayed by a restore, so an old one makes restores slow and the archive large), and a
    repository that has none (a restore from it alone would have nothing to start from)."""
    if not found:
        return "fail", "no base backup: nothing to restore from → `invoke db.basebackup`"
    newest = found[-1]
    age_h = (now - newest.stopped).total_seconds() / 3600
    detail = f"newest {newest.label} ({newest.kind}, {newest.where}), {age_h:.1f} h old"
    empty = [where(r) for r in repos if all(b.repo != r for b in found)]
    if empty:
        return (
            "fail",
            detail + f"; none in the {' or '.join(empty)} repository → `invoke db.basebackup`",
        )
    if age_h > NEWEST_BACKUP_WARN_H:
        return "warn", detail + " → `invoke db.basebackup` (or schedule one)"
    return "ok", detail


def window_line(found: list[BaseBackup], archived_at: datetime | None) -> str:
    """What a restore can reach, for `db.backups`."""
    if not found:
        return "point-in-time recovery: no base backup yet → `invoke db.basebackup`"
    start = local(found[0].stopped)
    end = f"{local(archived_at)} (the newest archived WAL)" if archived_at else "the newest WAL"
    return f"point-in-time recovery: can restore to any moment from {start} to {end}"


def local(moment: datetime | None) -> str:
    """A moment in this machine's time zone, with its offset (what db.restore-to takes back)."""
    return moment.astimezone().isoformat(sep=" ", timespec="seconds") if moment else "-"


def _minutes(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"
