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
it is back. A run cut off by the runner's own stop (a restart, a reboot) or by the host going
down does not serve its slot: it is recorded as started and unfinished, and runs again when
the runner is back; cut off a second time, it is a failure (and alerted), so that a run that
keeps taking the host down cannot loop. A supervisor keeps the runner alive across crashes
and reboots: `db.schedule --install` writes a systemd service for it.

Each job writes its outcome to a result file (run_result, PGKURA_RESULT_FILE); the runner
learns what happened from that file and the exit status only. The printed lines are kept as
output for a person, never parsed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgkura.config.schedule import Schedule
from pgkura.config.settings import Settings
from pgkura.errors import PgkuraError
from pgkura.file_lock import is_locked, locked
from pgkura.private_files import write_private
from pgkura.schedule import result as run_result

Log = Callable[[str], None]
STATE = ".pgkura-schedule.json"
_LOCK = ".pgkura-schedule.lock"
_NAP_S = 30.0  # the longest sleep: clock jumps and suspends are noticed within this
_OUTPUT_KEPT = 2000
_ATTEMPTS = 2  # a slot's run cut off this many times counts as failed


class SchedulerBusy(PgkuraError):
    """Another runner already serves this backup directory."""


@dataclass(frozen=True)
class Job:
    name: str  # "backup" or "drill"
    schedule: Schedule
    argv: list[str]  # invoke's arguments
    alerts_itself: bool  # db.backup pings PGKURA_ALERT_URL; the runner does it for the others


def jobs(settings: Settings) -> list[Job]:
    """The configured jobs; a drill restores the newest off-site copy when there is one (and,
    with PITR, the WAL archive to a moment); each backup is followed by a size snapshot."""
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
        if settings.pitr.enabled:  # the WAL archive restores too
            pitr = ["db.pitr-drill"]
            found.append(Job("pitr drill", settings.drill_schedule, pitr, alerts_itself=False))
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
    write_private(settings.backup_dir / STATE, json.dumps(state, indent=2) + "\n")


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


def run(
    settings: Settings, root: Path, log: Log, after_job: Callable[[], object] | None = None
) -> None:
    """Serve the jobs until SIGTERM or SIGINT; one run at a time. `after_job` runs at the start
    and after each job (the metrics textfile: the caller's, as metrics sits above this layer)."""
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
        for job in found:
            _resume(settings, job, state, log)
        _write_state(settings, state)
        _after(after_job, log)
        for job in found:
            log(
                f"{job.name}: {job.schedule.describe()}; next {_iso(job.schedule.next_due(_now()))}"
            )
        while not stopper.stopping:
            for job in found:
                now = _now()
                if due(job, state, now) and not stopper.stopping:
                    _run_job(settings, root, job, now, stopper, state, log)
                    _after(after_job, log)
            stopper.sleep_until(min(job.schedule.next_due(_now()) for job in found))
        log("stopped")


def _after(hook: Callable[[], object] | None, log: Log) -> None:
    """The hook's failure is logged: it never stops the jobs."""
    if hook is None:
        return
    try:
        hook()
    except PgkuraError as exc:
        log(f"after the job: {exc}")


def _resume(settings: Settings, job: Job, state: dict[str, Any], log: Log) -> None:
    """A run the last runner started and never finished (it was stopped, or the host went
    down): it runs again, unless it was already its slot's second try (then it failed)."""
    last = state["jobs"].get(job.name, {})
    cut = last.get("unfinished")
    if not cut:
        return
    if cut.get("attempt", 1) < _ATTEMPTS:
        log(f"{job.name}: the run for the slot {cut.get('slot')} was cut off (the runner "
            "stopped or the host went down); it runs again")  # fmt: skip
        return
    why = (f"the run for the slot {cut.get('slot')} was cut off twice (the runner stopped or "
           "the host went down during it); it is not tried again")  # fmt: skip
    state["jobs"][job.name] = {"slot": cut.get("slot"), "started_at": cut.get("started_at"),
                               "finished_at": None, "exit_code": None,
                               "outcome": "failed (cut off)", "summary": why}  # fmt: skip
    log(f"{job.name}: {why}")
    _alert_failure(settings, job, why, log)


def _run_job(
    settings: Settings, root: Path, job: Job, now: datetime, stopper: _Stopper,
    state: dict[str, Any], log: Log,
) -> None:  # fmt: skip
    """Run `job` for its newest slot and record it in `state` (and its file): as started
    first, so that a runner that never comes back from it leaves that fact behind."""
    slot, started = _iso(job.schedule.last_due(now)), _now()
    last = state["jobs"].get(job.name, {})
    cut = last.get("unfinished") or {}
    attempt = cut.get("attempt", 0) + 1 if cut.get("slot") == slot else 1
    state["jobs"][job.name] = {**last, "unfinished": {"slot": slot, "started_at": _iso(started),
                                                      "attempt": attempt}}  # fmt: skip
    _write_state(settings, state)
    log(f"{job.name}: running `invoke {' '.join(job.argv)}` for the slot {slot}")
    code, result, output = _child(settings, root, job, stopper)
    cut_off = stopper.stopping and code != 0 and (result or {}).get("outcome") != "failed"
    if cut_off and attempt < _ATTEMPTS:
        log(f"{job.name}: cut off by the runner's stop; it runs again when the runner is back")
        return  # the slot stays unserved, the run recorded as unfinished
    summary = run_summary(code, result)
    if cut_off:
        summary = f"cut off twice by the runner's stop: {summary}"
    if code != 0 and (code < 0 or cut_off or not job.alerts_itself):  # it could not ping
        _alert_failure(settings, job, summary, log)
    outcome = "ok" if code == 0 else f"failed (exit {code})"
    log(f"{job.name}: {outcome}")
    state["jobs"][job.name] = {
        "slot": slot,
        "started_at": _iso(started),
        "finished_at": _iso(_now()),
        "exit_code": code,
        "outcome": outcome,
        "summary": summary,
        "output": output[-_OUTPUT_KEPT:],
    }
    _write_state(settings, state)


def _child(
    settings: Settings, root: Path, job: Job, stopper: _Stopper
) -> tuple[int, dict[str, str] | None, str]:
    """Run the job's invoke command: (exit code, the result it wrote, its output)."""
    argv = [sys.executable, "-m", "invoke", "--search-root", str(root), *job.argv]
    fd, name = tempfile.mkstemp(prefix=".pgkura-result-", dir=settings.backup_dir)  # 0600
    os.close(fd)
    try:
        child = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            text=True, cwd=root, env={**os.environ, run_result.ENV: name},
        )  # fmt: skip
        stopper.child = child
        try:
            stdout, stderr = child.communicate()
        finally:
            stopper.child = None
        return child.returncode, run_result.read(Path(name)), (stdout + stderr).strip()
    finally:
        os.unlink(name)


def run_summary(code: int, result: dict[str, str] | None) -> str:
    """What a run came to, from facts only: the result it wrote, else its exit status. Its
    output is kept beside for a person, never read for this: it holds user data (database
    names) and wording that may change."""
    if result is not None:
        return result["summary"]
    if code <= 0:
        return f"killed by signal {-code}" if code else "done"
    return f"exited with status {code} without writing its result (it crashed; see its output)"


def _alert_failure(settings: Settings, job: Job, why: str, log: Log) -> None:
    """A fail ping for a run that could not send its own (never a success ping: the URL's
    dead-man timer belongs to the backups)."""
    from pgkura.schedule.alerts import alerting

    try:
        with alerting(settings.alert_url, f"scheduled {job.name}", on_success=False, log=log):
            raise PgkuraError(why)
    except PgkuraError:
        pass


@dataclass(frozen=True)
class JobStatus:
    """What `db.schedule` and `db.doctor` say of one job."""

    job: Job
    last: dict[str, Any]  # the recorded last finished run, {} if none
    next_due: datetime
    missed: bool  # its newest slot is unserved and no runner is there to serve it
    unfinished: dict[str, Any]  # a run started and not finished (running, or cut off), or {}

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
        if self.unfinished:
            since = self.unfinished.get("started_at", "?")
            done += (f"; running since {since}" if not self.missed else
                     f"; the run started {since} was cut off: it runs again when a runner "
                     "starts")  # fmt: skip
        missed = "; MISSED: its last slot went unserved (no runner)" if self.missed else ""
        return f"{self.job.schedule.describe()}; {done}; next {_iso(self.next_due)}{missed}"


def status(settings: Settings) -> tuple[bool, list[JobStatus]]:
    """(whether a runner is active, each configured job's status)."""
    active, state, now = runner_active(settings), read_state(settings), _now()
    found = []
    for job in jobs(settings):
        last = dict(state.get("jobs", {}).get(job.name, {}))
        unfinished = last.pop("unfinished", None) or {}
        missed = not active and due(job, state, now)
        found.append(JobStatus(job, last, job.schedule.next_due(now), missed, unfinished))
    return active, found


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")
