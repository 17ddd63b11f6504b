"""The scheduled-jobs runner (`invoke db.schedule --run`): backups on PGKURA_BACKUP_SCHEDULE,
restore drills on PGKURA_DRILL_SCHEDULE and pgBackRest base backups on PGKURA_PITR_SCHEDULE,
one job at a time, for as long as it runs.

Each job is the very command a person would type (`invoke db.backup`, `invoke db.verify latest
--restore-test [--remote]`), run as a child process: the same guarantees, alerts and messages,
and a crash of one run cannot take the runner down. The runner records every run (slot,
start, end, outcome, the last lines of output) in `<backup dir>/.pgkura-schedule.json`, which
`db.schedule`, `db.backups` and `db.doctor` read; a second runner for the same directory is
refused (an exclusive lock held for the runner's life). A job whose newest slot has not been
served runs at once, so a run missed while the host or the runner was down is caught up when
it is back. A supervisor keeps the runner alive across crashes and reboots: `db.schedule
--install` writes a systemd service for it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgkura.backup_store import write_private
from pgkura.config import Settings
from pgkura.errors import PgkuraError
from pgkura.file_lock import is_locked, locked
from pgkura.schedule import Schedule

Log = Callable[[str], None]
STATE = ".pgkura-schedule.json"
_LOCK = ".pgkura-schedule.lock"
_NAP_S = 30.0  # the longest sleep: clock jumps and suspends are noticed within this
_OUTPUT_KEPT = 2000


class SchedulerBusy(PgkuraError):
    """Another runner already serves this backup directory."""


@dataclass(frozen=True)
class Job:
    name: str  # "backup" or "drill"
    schedule: Schedule
    argv: list[str]  # invoke's arguments
    alerts_itself: bool  # db.backup pings PGKURA_ALERT_URL; the runner does it for the others


def jobs(settings: Settings) -> list[Job]:
    """The configured jobs; a drill restores the newest off-site copy when there is one; each
    backup is followed by a size snapshot."""
    found = []
    if settings.backup_schedule is not None:
        found.append(Job("backup", settings.backup_schedule, ["db.backup"], alerts_itself=True))
        # the database's size at each backup: `db.inspect` shows the growth from these
        sizes = ["db.inspect", "--snapshot", "--json"]
        found.append(Job("size snapshot", settings.backup_schedule, sizes, alerts_itself=False))
    if settings.drill_schedule is not None:
        remote = ["--remote"] if settings.offsite is not None else []
        argv = ["db.verify", "latest", "--restore-test", *remote]
        found.append(Job("drill", settings.drill_schedule, argv, alerts_itself=False))
    if settings.pitr.schedule is not None:
        argv = ["db.basebackup", "--type", "auto"]
        found.append(Job("base backup", settings.pitr.schedule, argv, alerts_itself=False))
    return found


def read_state(settings: Settings) -> dict[str, Any]:
    """What the runner recorded: {"runner": {...}, "jobs": {name: last run}}; {} if nothing."""
    try:
        data = json.loads((settings.backup_dir / STATE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_state(settings: Settings, state: dict[str, Any]) -> None:
    write_private(settings.backup_dir / STATE, json.dumps(state, indent=2).encode() + b"\n")


def runner_active(settings: Settings) -> bool:
    """Whether a runner holds this directory's lock right now."""
    return is_locked(settings.backup_dir / _LOCK)


@contextmanager
def _exclusive(settings: Settings) -> Iterator[None]:
    with locked(settings.backup_dir / _LOCK, wait=False) as got:
        if not got:
            pid = read_state(settings).get("runner", {}).get("pid", "?")
            raise SchedulerBusy(
                f"another scheduler (pid {pid}) already runs the jobs of {settings.backup_dir}"
            )
        yield


def due(job: Job, state: dict[str, Any], now: datetime) -> bool:
    """Whether the newest slot of `job` at `now` has not been served yet."""
    served = state.get("jobs", {}).get(job.name, {}).get("slot")
    return served is None or datetime.fromisoformat(served) < job.schedule.last_due(now)


class _Stopper:
    """SIGTERM (systemd stopping the service) or SIGINT: a running job gets SIGINT, as from
    Ctrl-C, so that it removes its partial file and ends its server session; then the runner
    exits. Sleeps end at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.child: subprocess.Popen[str] | None = None
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, _signum: int, _frame: object) -> None:
        self.event.set()
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGINT)

    @property
    def stopping(self) -> bool:
        return self.event.is_set()

    def sleep_until(self, wake: datetime) -> None:
        while not self.stopping and (left := (wake - _now()).total_seconds()) > 0:
            self.event.wait(min(left, _NAP_S))


def run(settings: Settings, root: Path, log: Log) -> None:
    """Serve the jobs until SIGTERM or SIGINT; one run at a time."""
    found = jobs(settings)
    if not found:
        raise PgkuraError(
            "nothing to schedule\n→ set PGKURA_BACKUP_SCHEDULE (e.g. `daily 03:15`) and, for "
            "restore drills, PGKURA_DRILL_SCHEDULE"
        )
    stopper = _Stopper()
    with _exclusive(settings):
        state = read_state(settings)
        state["runner"] = {"pid": os.getpid(), "started_at": _iso(_now())}
        state.setdefault("jobs", {})
        _write_state(settings, state)
        for job in found:
            log(
                f"{job.name}: {job.schedule.describe()}; next {_iso(job.schedule.next_due(_now()))}"
            )
        while not stopper.stopping:
            for job in found:
                now = _now()
                if due(job, state, now) and not stopper.stopping:
                    state["jobs"][job.name] = _run_job(settings, root, job, now, stopper, log)
                    _write_state(settings, state)
            stopper.sleep_until(min(job.schedule.next_due(_now()) for job in found))
        log("stopped")


def _run_job(
    settings: Settings, root: Path, job: Job, now: datetime, stopper: _Stopper, log: Log
) -> dict[str, Any]:
    slot = job.schedule.last_due(now)
    started = _now()
    log(f"{job.name}: running `invoke {' '.join(job.argv)}` for the slot {_iso(slot)}")
    argv = [sys.executable, "-m", "invoke", "--search-root", str(root), *job.argv]
    child = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        text=True, cwd=root,
    )  # fmt: skip
    stopper.child = child
    try:
        stdout, stderr = child.communicate()
    finally:
        stopper.child = None
    code = child.returncode
    summary = _summary(stdout, stderr, code)
    if code < 0 or (code != 0 and not job.alerts_itself):  # killed, or a job that cannot ping
        why = f"killed by signal {-code}" if code < 0 else summary
        _alert_failure(settings, job, why, log)
    outcome = "ok" if code == 0 else f"failed (exit {code})"
    log(f"{job.name}: {outcome}")
    return {
        "slot": _iso(slot),
        "started_at": _iso(started),
        "finished_at": _iso(_now()),
        "exit_code": code,
        "outcome": outcome,
        "summary": summary,
        "output": (stdout + stderr).strip()[-_OUTPUT_KEPT:],
    }


def _summary(stdout: str, stderr: str, code: int) -> str:
    """The line that says what happened: the result line on success, the error on failure."""
    lines = (stdout if code == 0 else stderr or stdout).strip().splitlines()
    if code == 0:
        wanted = [ln for ln in lines if ln.startswith(("backup:", "restore test:"))]
        return wanted[-1] if wanted else "done"
    errors = [ln for ln in lines if ln.startswith("error:")]
    return (errors or lines or ["no output"])[0]


def _alert_failure(settings: Settings, job: Job, why: str, log: Log) -> None:
    """A fail ping for a run that could not send its own (never a success ping: the URL's
    dead-man timer belongs to the backups)."""
    from pgkura.alerts import alerting

    try:
        with alerting(settings.alert_url, f"scheduled {job.name}", on_success=False, log=log):
            raise PgkuraError(why)
    except PgkuraError:
        pass


@dataclass(frozen=True)
class JobStatus:
    """What `db.schedule` and `db.doctor` say of one job."""

    job: Job
    last: dict[str, Any]  # the recorded last run, {} if none
    next_due: datetime
    missed: bool  # its newest slot is unserved and no runner is there to serve it

    @property
    def level(self) -> str:
        failed = bool(self.last) and self.last.get("exit_code") != 0
        return "warn" if failed or self.missed else "ok"

    def line(self) -> str:
        if not self.last:
            done = "no run yet"
        else:
            done = (f"last run {self.last.get('started_at', '?')}: {self.last.get('outcome', '?')}"
                    f" — {self.last.get('summary', '')}")  # fmt: skip
        missed = "; MISSED: its last slot went unserved (no runner)" if self.missed else ""
        return f"{self.job.schedule.describe()}; {done}; next {_iso(self.next_due)}{missed}"


def status(settings: Settings) -> tuple[bool, list[JobStatus]]:
    """(whether a runner is active, each configured job's status)."""
    active, state, now = runner_active(settings), read_state(settings), _now()
    return active, [
        JobStatus(
            job,
            state.get("jobs", {}).get(job.name, {}),
            job.schedule.next_due(now),
            not active and due(job, state, now),
        )
        for job in jobs(settings)
    ]


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")
