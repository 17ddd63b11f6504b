"""When scheduled jobs are due: PGKURA_BACKUP_SCHEDULE / PGKURA_DRILL_SCHEDULE, as typed.

    daily 03:15            every day at 03:15, the host's local time (several: 03:15,15:15)
    every 6h               at 00:00, 06:00, 12:00 and 18:00 UTC (multiples since the epoch)
    hourly / daily         every 1h / daily 00:00
    off (or empty)         no schedule

A schedule is a series of slots; a run serves the newest slot that has passed. A runner that
was down over several slots runs once when it is back (the missed backups cannot be taken in
the past; the newest one is what matters), then waits for the next slot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from pgkura.durations import parse_ms, render_ms

_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_SHORTHANDS = {"hourly": "every 1h", "daily": "daily 00:00"}


@dataclass(frozen=True)
class Schedule:
    """`every` (a fixed interval) or `times` (local clock times each day); `text` as typed."""

    text: str
    every: timedelta | None = None
    times: tuple[time, ...] = ()

    def last_due(self, now: datetime) -> datetime:
        """The newest slot at or before `now` (an aware datetime)."""
        if self.every is not None:
            step = self.every.total_seconds()
            return datetime.fromtimestamp(now.timestamp() // step * step, tz=UTC)
        return max(slot for slot in self._daily(now, (-1, 0)) if slot <= now)

    def next_due(self, now: datetime) -> datetime:
        """The first slot after `now`."""
        if self.every is not None:
            return self.last_due(now) + self.every
        return min(slot for slot in self._daily(now, (0, 1)) if slot > now)

    def _daily(self, now: datetime, days: tuple[int, ...]) -> list[datetime]:
        """The clock times on the days around `now`'s local date, as aware datetimes (a naive
        local wall-clock time made aware by astimezone)."""
        today = now.astimezone().date()
        return [
            datetime.combine(today + timedelta(days=d), t).astimezone()
            for d in days
            for t in self.times
        ]

    def describe(self) -> str:
        if self.every is not None:
            return f"every {render_ms(int(self.every.total_seconds() * 1000))}"
        return "daily at " + ", ".join(t.strftime("%H:%M") for t in self.times) + " (local time)"


def parse_schedule(text: str) -> Schedule | None:
    """A Schedule, None for `off`/empty; ValueError naming the accepted forms otherwise."""
    typed = " ".join(text.strip().lower().split())
    if typed in ("", "off", "none"):
        return None
    words = _SHORTHANDS.get(typed, typed).split(" ", 1)
    if len(words) == 2 and words[0] == "every":
        try:
            ms = parse_ms(words[1])
        except ValueError:
            ms = 0
        if ms >= 1000 and ms % 1000 == 0:
            return Schedule(text.strip(), every=timedelta(milliseconds=ms))
    if len(words) == 2 and words[0] == "daily":
        clocks = [_CLOCK.match(part.strip()) for part in words[1].split(",")]
        if clocks and all(clocks):
            times = sorted({time(int(m[1]), int(m[2])) for m in clocks if m})
            return Schedule(text.strip(), times=tuple(times))
    raise ValueError("not a schedule")


EXPECTED = (
    "`daily HH:MM[,HH:MM]`, `every 6h` (whole seconds, at least 1s), `hourly`, `daily` or `off`"
)
