"""The one progress reporter, driven by a fake clock: what a terminal and a log each see."""

from __future__ import annotations

import io
import re
import threading

import pytest

from pgkura.progress import QUIET, Reporter
from pgkura.units import duration

MiB = 2**20


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reporter(clock: Clock, *, tty: bool, **options: object) -> tuple[Reporter, io.StringIO]:
    out = io.StringIO()
    return Reporter(out, tty=tty, clock=clock, heartbeat=None, **options), out  # type: ignore[arg-type]


def test_a_terminal_gets_one_redrawn_line_with_percentage_rate_and_eta():
    clock = Clock()
    shown, out = reporter(clock, tty=True)
    with shown.meter("restore", 100 * MiB) as meter:
        clock.now += 2
        meter.update(20 * MiB)
        clock.now += 0.2
        meter.update(22 * MiB)  # within the redraw interval: not drawn
        clock.now += 0.3
        meter.update(25 * MiB)
        clock.now += 7.5
        meter.update(100 * MiB)
    assert out.getvalue().split("\r")[1:] == [
        "restore: 20.0 MiB of 100.0 MiB, 20%, 10.0 MiB/s, 2 s, ETA 8 s",
        "restore: 25.0 MiB of 100.0 MiB, 25%, 10.0 MiB/s, 2 s, ETA 8 s",
        "restore: 100.0 MiB of 100.0 MiB, 99%, 10.0 MiB/s, 10 s       ",  # not done till closed
        "restore: 100.0 MiB in 10 s (10.0 MiB/s)" + " " * 15 + "\n",  # covers the last line
    ]


def test_a_log_gets_a_plain_line_every_ten_percent_or_ten_seconds():
    clock = Clock()
    shown, out = reporter(clock, tty=False)
    with shown.meter("verify x.sql.gz", 1000 * MiB) as meter:
        for done in range(20, 1001, 20):  # 2 % a second
            clock.now += 1
            meter.update(done * MiB)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0] == "verify x.sql.gz: 20.0 MiB of 1000.0 MiB, 2%, 20.0 MiB/s, 1 s, ETA 49 s"
    assert [line.split(", ")[1] for line in lines[1:-1]] == [f"{p}%" for p in range(10, 100, 10)]
    assert lines[-1] == "verify x.sql.gz: 1000.0 MiB in 50 s (20.0 MiB/s)"


def test_a_slow_log_still_hears_every_ten_seconds():
    clock = Clock()
    shown, out = reporter(clock, tty=False)
    with shown.meter("restore", 1000 * MiB) as meter:
        for _ in range(30):
            clock.now += 1
            meter.update(MiB)  # stuck below the next step
    assert len(out.getvalue().splitlines()) == 1 + 3  # at 1, 11 and 21 s; the summary


def test_an_estimated_total_is_marked_and_never_reaches_100_percent_early():
    clock = Clock()
    shown, out = reporter(clock, tty=False)
    with shown.meter("backup", 10 * MiB, approx=True) as meter:
        clock.now += 2
        meter.update(5 * MiB, "1.0 MiB compressed")
        clock.now += 10
        meter.update(30 * MiB, "6.0 MiB compressed")  # the dump outgrew the estimate
    assert out.getvalue().splitlines() == [
        "backup: 5.0 MiB of ~10.0 MiB, ~50%, 2.5 MiB/s, 2 s, ETA ~2 s, 1.0 MiB compressed",
        "backup: 30.0 MiB of ~10.0 MiB, ~99%, 2.5 MiB/s, 12 s, 6.0 MiB compressed",
        "backup: 30.0 MiB in 12 s (2.5 MiB/s), 6.0 MiB compressed",
    ]


def test_unknown_totals_and_counts_other_than_bytes():
    clock = Clock()
    shown, out = reporter(clock, tty=False)
    with shown.meter("import", None, unit="rows") as meter:
        clock.now += 4
        meter.update(12_000, "users")
    with shown.meter("safety copy of app"):  # nothing to count: the time alone
        clock.now += 3
        shown_meter_time = out.getvalue()
    assert out.getvalue().splitlines() == [
        "import: 12,000 rows, 3,000 rows/s, 4 s, users",
        "import: 12,000 rows in 4 s (3,000 rows/s), users",
    ]
    assert shown_meter_time == out.getvalue()  # no update: only the background tick shows it


def test_short_work_prints_nothing():
    clock = Clock()
    shown, out = reporter(clock, tty=True)
    with shown.meter("restore", MiB) as meter:
        clock.now += 0.5
        meter.update(MiB)
    assert out.getvalue() == ""


def test_a_failure_ends_the_terminal_line_without_a_summary():
    clock = Clock()
    shown, out = reporter(clock, tty=True)

    def fail() -> None:
        with shown.meter("restore", 10 * MiB) as meter:
            clock.now += 2
            meter.update(MiB)
            raise RuntimeError("psql stopped")

    with pytest.raises(RuntimeError):
        fail()
    assert out.getvalue() == "\rrestore: 1.0 MiB of 10.0 MiB, 10%, 512.0 KiB/s, 2 s, ETA 18 s\n"


def test_the_background_tick_shows_silent_work():
    out = io.StringIO()
    seen = threading.Event()

    class Watch(io.StringIO):
        def write(self, text: str) -> int:
            seen.set()
            return out.write(text)

    shown = Reporter(Watch(), tty=False, settle=0, every=0, heartbeat=0.01)
    with shown.meter("safety copy of app"):
        assert seen.wait(10)  # no update at all: CREATE DATABASE … TEMPLATE says nothing
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"safety copy of app: \d+ s", lines[0])  # the time alone
    assert re.fullmatch(r"safety copy of app: done in \d+ s", lines[-1])


def test_colour_and_width_on_a_terminal_and_plain_elsewhere():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert Reporter.to(Tty(), {}).colour
    assert Reporter.to(Tty(), {}).tty
    assert not Reporter.to(Tty(), {"NO_COLOR": "1"}).colour
    assert not Reporter.to(Tty(), {"CI": "true"}).tty  # CI logs get plain lines
    assert not Reporter.to(io.StringIO(), {}).tty  # a pipe, or the scheduler's capture
    clock = Clock()
    shown, out = reporter(clock, tty=True, colour=True, width=40)
    with shown.meter("restore", 100 * MiB) as meter:
        clock.now += 2
        meter.update(50 * MiB)
        drawn = out.getvalue()
    assert drawn == "\rrestore: 50.0 MiB of 100.0 MiB, 50%, 2…"  # cut to the width, no wrap
    shown, out = reporter(clock, tty=True, colour=True)
    with shown.meter("restore", 100 * MiB) as meter:
        clock.now += 2
        meter.update(50 * MiB)
        assert "\x1b[1m50%\x1b[0m" in out.getvalue()


def test_the_quiet_reporter_shows_nothing():
    with QUIET.meter("backup", 10) as meter:
        meter.update(5)
    assert QUIET.out is None


def test_durations_read_naturally():
    assert [duration(s) for s in (0.4, 59, 61, 3599, 3660)] == [
        "0 s", "59 s", "1 min 01 s", "59 min 59 s", "1 h 01 min",
    ]  # fmt: skip
