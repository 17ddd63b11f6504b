"""Which backups a retention policy keeps, and why: the newest N, plus the newest backup of
each of the last D days, W weeks, M months and Y years that have backups.

A backup is kept when any rule keeps it, and the newest is always kept. A rule set to 0 keeps
nothing on its own account ("zero means zero"); a policy whose rules are all 0 is no policy and
deletes nothing (that is how `PGKURA_BACKUP_KEEP=0` has always read). Days, weeks (ISO), months
and years are those of the time in the backup's name: the host's local time when it was taken.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Policy:
    last: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    @property
    def active(self) -> bool:
        return any((self.last, self.daily, self.weekly, self.monthly, self.yearly))

    def describe(self) -> str:
        rules = [(self.last, "newest"), (self.daily, "daily"), (self.weekly, "weekly"),
                 (self.monthly, "monthly"), (self.yearly, "yearly")]  # fmt: skip
        return ", ".join(f"{n} {name}" for n, name in rules if n) or "keep everything"


_Period = Callable[[datetime], Hashable]
_Label = Callable[[datetime], str]
_TIERS: tuple[tuple[str, _Period, _Label], ...] = (
    ("daily", lambda t: t.date(), lambda t: f"{t:%Y-%m-%d}"),
    ("weekly", lambda t: t.isocalendar()[:2], lambda t: "{}-W{:02d}".format(*t.isocalendar()[:2])),
    ("monthly", lambda t: (t.year, t.month), lambda t: f"{t:%Y-%m}"),
    ("yearly", lambda t: t.year, lambda t: f"{t:%Y}"),
)


def reasons_to_keep(times: list[datetime], policy: Policy) -> list[list[str]]:
    """For backups taken at `times`, why each is kept; an empty list means it goes. Backups
    of the same second (the name's counter) count in list order: give them oldest first."""
    reasons: list[list[str]] = [[] for _ in times]
    if not times:
        return reasons
    if not policy.active:
        return [["no retention configured"] for _ in times]
    newest_first = sorted(range(len(times)), key=lambda i: (times[i], i), reverse=True)
    for i in newest_first[: policy.last]:
        reasons[i].append(f"one of the newest {policy.last}")
    for name, period_of, label in _TIERS:
        wanted = getattr(policy, name)
        seen: set[Hashable] = set()
        for i in newest_first:
            period = period_of(times[i])
            if period in seen:
                continue
            if len(seen) == wanted:
                break
            seen.add(period)
            reasons[i].append(f"{name} {label(times[i])}")
    if not reasons[newest_first[0]]:
        reasons[newest_first[0]].append("the newest")
    return reasons
