"""Progress of long work, the one way every task shows it (backup, restore, verify, imports,
upgrades; off-site transfers can adopt it): done/total, percentage, rate and ETA.

The library reports numbers into a meter and never prints; a `Reporter` made by the tasks
renders them. On a terminal one line is redrawn at most every `redraw` seconds; piped, in CI
or under the scheduler a plain line comes every `every` seconds or `step` of the work, so logs
show life. Work shorter than `settle` seconds shows nothing. A background tick keeps the
elapsed time moving while the work itself is silent (a server building an index, or
`CREATE DATABASE … TEMPLATE`, which reports nothing).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

from pgkura.units import amount, duration

Clock = Callable[[], float]
_BOLD, _RESET = "\x1b[1m", "\x1b[0m"


@dataclass(frozen=True)
class Reporter:
    """Where and how progress is shown; `Reporter()` shows nothing (the library's default)."""

    out: TextIO | None = None
    tty: bool = False  # redraw one line; otherwise plain lines for logs
    colour: bool = False
    width: int = 0  # a terminal's columns: a longer line would wrap and break the redraw
    clock: Clock = time.monotonic
    redraw: float = 0.5
    every: float = 10.0
    step: int = 10  # percent
    settle: float = 1.0
    heartbeat: float | None = 0.5  # None: no background tick (tests drive the clock)

    @classmethod
    def to(cls, stream: TextIO, environ: Mapping[str, str] = os.environ) -> Reporter:
        """A person's terminal gets a redrawn line (coloured unless NO_COLOR is set); a pipe,
        CI or the scheduler's captured output gets plain lines."""
        tty = stream.isatty() and not environ.get("CI")
        width = shutil.get_terminal_size().columns if tty else 0
        return cls(stream, tty=tty, colour=tty and not environ.get("NO_COLOR"), width=width)

    @contextmanager
    def meter(
        self, what: str, total: float | None = None, *, unit: str = "B", approx: bool = False
    ) -> Iterator[Meter]:
        """A meter for one piece of work; `approx`: `total` is an estimate (shown with ~)."""
        meter = Meter(self, what, total, unit, approx)
        stop = threading.Event()
        ticker = None
        if self.out is not None and self.heartbeat is not None:
            ticker = threading.Thread(target=meter.tick_until, args=(stop,), daemon=True,
                                      name="pgkura-progress")  # fmt: skip
            ticker.start()
        try:
            yield meter
        except BaseException:
            meter.close(ok=False)
            raise
        else:
            meter.close(ok=True)
        finally:
            stop.set()
            if ticker is not None:
                ticker.join()


QUIET = Reporter()


class Meter:
    """One piece of work's numbers; `update` is cheap enough for every block of a stream."""

    def __init__(
        self, reporter: Reporter, what: str, total: float | None, unit: str, approx: bool
    ) -> None:
        self.r = reporter
        self.what, self.unit, self.approx = what, unit, approx
        self.total = total if total and total > 0 else None
        self.done: float | None = None
        self.note = ""
        self._started = reporter.clock()
        self._last: float | None = None  # when a line was last shown
        self._next_pct = reporter.step
        self._drawn = 0  # the length of the line on the terminal
        self._lock = threading.Lock()
        self._closed = False

    def update(self, done: float, note: str = "") -> None:
        """Record the state; the background tick shows it (without one, this call does)."""
        self.done, self.note = done, note
        if self.r.out is not None and self.r.heartbeat is None:
            self.show()

    def tick_until(self, stop: threading.Event) -> None:
        assert self.r.heartbeat is not None  # noqa: S101 - started only with a heartbeat
        while not stop.wait(self.r.heartbeat):
            self.show()

    def show(self) -> None:
        """Show the state now if it is due."""
        with self._lock:
            now = self.r.clock()
            if self._closed or not self._due(now):
                return
            self._last = now
            percent = self._percent()
            if percent is not None:
                self._next_pct = (percent // self.r.step + 1) * self.r.step
            self._emit(self.line(now - self._started))

    def close(self, *, ok: bool) -> None:
        """The final line, if anything was shown at all (short work stays silent); after a
        failure only the terminal's line is ended, so the error starts on its own line."""
        with self._lock:
            self._closed = True
            if self._last is None or self.r.out is None:
                return
            if ok:
                self._emit(self.summary(self.r.clock() - self._started), end=True)
            elif self.r.tty:
                self.r.out.write("\n")
                self.r.out.flush()

    def _due(self, now: float) -> bool:
        if now - self._started < self.r.settle:
            return False
        if self._last is None:
            return True
        if self.r.tty:
            return now - self._last >= self.r.redraw
        percent = self._percent()
        return now - self._last >= self.r.every or (
            percent is not None and percent >= self._next_pct
        )

    def _percent(self) -> int | None:
        if self.total is None or self.done is None:
            return None
        # an estimate can be passed before the end: it is not done until it is done
        return min(int(100 * self.done / self.total), 99)

    def line(self, elapsed: float) -> str:
        """`restore: 512.0 MiB of 1.3 GiB, 38%, 45.2 MiB/s, 11 s, ETA 19 s`."""
        about = "~" if self.approx else ""
        if self.done is None:
            return f"{self.what}: {duration(elapsed)}" + (f", {self.note}" if self.note else "")
        parts = [amount(self.done, self.unit)]
        percent = self._percent()
        if self.total is not None and percent is not None:
            parts[0] += f" of {about}{amount(self.total, self.unit)}"
            shown = f"{about}{percent}%"
            parts.append(f"{_BOLD}{shown}{_RESET}" if self.r.colour else shown)
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts += [f"{amount(rate, self.unit)}/s", duration(elapsed)]
        if self.total is not None and rate > 0 and self.done < self.total:
            parts.append(f"ETA {about}{duration((self.total - self.done) / rate)}")
        if self.note:
            parts.append(self.note)
        return f"{self.what}: " + ", ".join(parts)

    def summary(self, elapsed: float) -> str:
        """`backup: 1.3 GiB in 31 s (42.9 MiB/s), 310.0 MiB gz`."""
        note = f", {self.note}" if self.note else ""
        if self.done is None:
            return f"{self.what}: done in {duration(elapsed)}{note}"
        rate = self.done / elapsed if elapsed > 0 else 0.0
        return (f"{self.what}: {amount(self.done, self.unit)} in {duration(elapsed)} "
                f"({amount(rate, self.unit)}/s){note}")  # fmt: skip

    def _emit(self, text: str, *, end: bool = False) -> None:
        out = self.r.out
        assert out is not None  # noqa: S101 - a quiet reporter never gets here
        if not self.r.tty:
            out.write(text + "\n")
        else:
            if self.r.width:
                text = _cut(text, self.r.width - 1)
            visible = len(text.replace(_BOLD, "").replace(_RESET, ""))
            out.write("\r" + text + " " * max(self._drawn - visible, 0) + ("\n" if end else ""))
            self._drawn = visible
        out.flush()


def _cut(text: str, width: int) -> str:
    """At most `width` visible characters (the bold marks do not count)."""
    visible = len(text.replace(_BOLD, "").replace(_RESET, ""))
    if visible <= width:
        return text
    plain = text.replace(_BOLD, "").replace(_RESET, "")
    return plain[: max(width - 1, 0)] + "…"
