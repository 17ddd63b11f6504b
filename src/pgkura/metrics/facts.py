"""What pgkura knows and the server cannot tell: pgkura's facts as Prometheus metrics.

Times are exported as Unix timestamps, never as ages: the file is written after each scheduled
job and then read for a day, so an age would be stale at once; Prometheus computes the age with
`time() - metric`. Each source is collected on its own: a database that does not answer or an
off-site store that refuses leaves `pgkura_collector_success{collector=…}` at 0 and the other
facts are still written."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg

from pgkura.backups.store import Backup, own_backups
from pgkura.config.settings import Settings
from pgkura.errors import PgkuraError
from pgkura.metrics.exposition import Family, render, write_textfile

PREFIX = "pgkura_"


@dataclass(frozen=True)
class Facts:
    """The metrics, and why each collector that failed did."""

    families: list[Family]
    failures: dict[str, str]


def _seconds(backup: Backup) -> float:
    """When a backup was taken: its manifest's UTC time, else the file's modification time."""
    try:
        return datetime.fromisoformat(str(backup.manifest["created_at"])).timestamp()
    except (KeyError, ValueError):
        return backup.path.stat().st_mtime


class _Collector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.families: dict[str, Family] = {}
        self.failures: dict[str, str] = {}
        self.success = self.family(
            "collector_success", "whether pgkura could read this source of facts (1) or not (0)"
        )

    def family(self, metric: str, help_text: str) -> Family:
        """Every fact is a gauge: each is a state that can go back (counts of files and
        migrations, times, lags), none a running total (promtool checks it in the tests)."""
        return self.families.setdefault(metric, Family(PREFIX + metric, "gauge", help_text))

    def gauge(self, metric: str, help_text: str, value: float, **labels: str) -> None:
        self.family(metric, help_text).add(value, **labels)

    def run(self, name: str, collect: Callable[[], None]) -> None:
        try:
            collect()
        except (PgkuraError, psycopg.Error, OSError, ValueError) as exc:  # ValueError: a bad record
            self.failures[name] = " ".join(str(exc).split("\n")[:1]).strip() or type(exc).__name__
        self.success.add(0 if name in self.failures else 1, collector=name)

    # -- the sources ---------------------------------------------------------------------

    def backups(self) -> None:
        from pgkura.backups.store import BackupStore

        entries = BackupStore(self.settings.backup_dir).entries()
        whole = [b for b in self._own(entries) if b.unread_problem() is None]
        self._copies("backup", whole, "local")

    def offsite(self) -> None:
        from pgkura.backups.offsite import RemoteStore

        assert self.settings.offsite is not None  # noqa: S101 - collect() checked
        # listed only with both the data and its manifest there (RemoteStore.entries)
        self._copies("offsite", self._own(RemoteStore(self.settings.offsite).entries()), "off-site")

    def _own(self, entries: list[Backup]) -> list[Backup]:
        return own_backups(entries, self.settings.target.dbname)

    def _copies(self, name: str, complete: list[Backup], where: str) -> None:
        """The complete ordinary backups of the database (its manifest is written only after
        the dump was proven whole): how many, and the newest one's time and size."""
        database = self.settings.target.dbname
        self.gauge(
            f"{name}_files",
            f"complete {where} backups of the database",
            len(complete),
            database=database,
        )
        if complete:
            newest = complete[-1]
            self.gauge(
                f"{name}_newest_timestamp_seconds",
                f"when the newest complete {where} backup was taken (Unix time)",
                _seconds(newest),
                database=database,
            )
            self.gauge(
                f"{name}_newest_size_bytes",
                f"size of the newest complete {where} backup",
                float(newest.manifest.get("size", 0)),
                database=database,
            )

    def schedule(self) -> None:
        from pgkura.schedule.runner import status

        active, jobs = status(self.settings)
        if not jobs:
            return
        self.gauge(
            "scheduler_active",
            "whether a db.schedule runner serves the jobs (1) or not (0)",
            int(active),
        )
        for job in jobs:
            name = job.job.name
            self.gauge(
                "scheduled_job_missed",
                "1 when the job's newest slot went unserved (no runner)",
                int(job.missed),
                name=name,
            )
            when = job.last.get("finished_at") or job.last.get("started_at")
            if not when:
                continue
            self.gauge(
                "scheduled_job_last_run_timestamp_seconds",
                "when the job's last run ended (started, if it was cut off; Unix time)",
                datetime.fromisoformat(when).timestamp(),
                name=name,
            )
            self.gauge(
                "scheduled_job_last_run_success",
                "1 when the job's last run succeeded, 0 when it failed",
                int(job.last.get("exit_code") == 0),
                name=name,
            )

    def database(self) -> None:
        from pgkura.connect.connection import connect
        from pgkura.migrations.files import project_migrations
        from pgkura.migrations.plan import Plan
        from pgkura.migrations.version_table import VersionTable

        settings = self.settings
        migrations = project_migrations(settings)
        table = VersionTable(settings.migrations_schema, settings.migrations_table)
        with connect(settings.target, purpose="metrics", connect_timeout=5) as conn:
            plan = Plan(migrations, table.rows(conn))
            for what, count in (
                ("pending", len(plan.pending)),
                ("applied", len(plan.applied)),
                ("changed", len(plan.changed)),
                ("missing", len(plan.missing)),
            ):
                self.gauge(f"migrations_{what}", f"migrations {what} (see db.status)", count)
            if settings.pitr.enabled:
                self._archiving(conn)
            self._replication(conn)

    def _replication(self, conn: psycopg.Connection) -> None:
        from pgkura.replication.state import replicas

        for r in replicas(conn):
            self.gauge("standby_streaming", "1 while a standby streams through the slot",
                       int(r.streaming), slot=r.slot)  # fmt: skip
            if r.lag_bytes is not None:
                self.gauge("standby_replay_lag_bytes", "WAL the standby has not replayed yet",
                           max(r.lag_bytes, 0), slot=r.slot)  # fmt: skip
            if r.retained_bytes is not None:
                self.gauge("replication_slot_retained_bytes", "WAL the slot keeps on the primary",
                           r.retained_bytes, slot=r.slot)  # fmt: skip

    def _archiving(self, conn: psycopg.Connection) -> None:
        from pgkura.engines.docker.pgbackrest import archiver, backups, wal_gaps

        state = archiver(conn)
        self.gauge(
            "pitr_archive_failing",
            "1 when WAL archiving failed since its last success",
            int(state.failing),
        )
        if state.archived_at is not None:
            self.gauge(
                "pitr_last_archived_timestamp_seconds",
                "when the last WAL segment was archived (Unix time)",
                state.archived_at.timestamp(),
            )
        if state.waiting is not None:
            self.gauge(
                "pitr_archive_lag_bytes",
                "completed WAL not archived yet",
                state.waiting * state.segment_bytes,
            )
        if not self.settings.target.is_container:
            return  # the archive is pgBackRest's in the project's container
        gaps = wal_gaps(self.settings, backups(self.settings)[0], state.segment_bytes)
        self.gauge(
            "pitr_wal_gaps_open",
            "WAL missing from a repository with no base backup after it (db.doctor names it)",
            sum(g.until is None for g in gaps),
        )


def collect(settings: Settings) -> Facts:
    """Every fact pgkura can read now; a source that fails is reported, never raised."""
    found = _Collector(settings)
    found.run("backups", found.backups)
    if settings.offsite is not None:
        found.run("offsite", found.offsite)
    found.run("schedule", found.schedule)
    found.run("database", found.database)
    found.gauge(
        "collected_timestamp_seconds", "when pgkura wrote these facts (Unix time)", time.time()
    )
    return Facts(list(found.families.values()), found.failures)


def publish(settings: Settings, path: Path) -> Facts:
    """Collect the facts and replace the textfile `path` with them."""
    facts = collect(settings)
    write_textfile(path, render(facts.families))
    return facts
