"""Schedules as people type them, and the slots they make: every slot is served once, the
newest passed slot is the one a (late) run serves, and the next one is strictly later."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgkura.config.schedule import parse_schedule

MOMENTS = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)


@pytest.mark.parametrize(
    ("text", "every", "times"),
    [
        ("every 6h", timedelta(hours=6), ()),
        ("Every  90s", timedelta(seconds=90), ()),
        ("hourly", timedelta(hours=1), ()),
        ("daily", None, (time(0, 0),)),
        ("daily 03:15", None, (time(3, 15),)),
        ("daily 15:30, 3:05", None, (time(3, 5), time(15, 30))),
    ],
)
def test_the_forms_people_type(text, every, times):
    schedule = parse_schedule(text)
    assert schedule is not None
    assert (schedule.every, schedule.times) == (every, times)


@pytest.mark.parametrize("text", ["", "off", "OFF", "none"])
def test_off(text):
    assert parse_schedule(text) is None


@pytest.mark.parametrize(
    "text", ["daily 25:00", "daily 3pm", "every", "every 0s", "every 1.5s", "weekly", "*/5 * * * *"]
)
def test_anything_else_is_refused(text):
    """Cron lines included: one plain form per need, stated in the error."""
    with pytest.raises(ValueError, match="not a schedule"):
        parse_schedule(text)


@given(st.integers(1, 48 * 3600), MOMENTS)
def test_intervals_make_evenly_spaced_slots_around_now(seconds, now):
    schedule = parse_schedule(f"every {seconds}s")
    assert schedule is not None
    last, upcoming = schedule.last_due(now), schedule.next_due(now)
    assert last <= now < upcoming
    assert upcoming - last == timedelta(seconds=seconds)
    assert schedule.last_due(upcoming) == upcoming  # a slot is due at its own moment


@given(st.lists(st.tuples(st.integers(0, 23), st.integers(0, 59)), min_size=1, max_size=4), MOMENTS)
def test_daily_slots_are_the_clock_times_nearest_to_now(clock, now):
    text = "daily " + ",".join(f"{h:02d}:{m:02d}" for h, m in clock)
    schedule = parse_schedule(text)
    assert schedule is not None
    last, upcoming = schedule.last_due(now), schedule.next_due(now)
    assert last <= now < upcoming
    assert upcoming - last <= timedelta(hours=25)  # a DST change may add an hour
    wanted = {time(h, m) for h, m in clock}
    shifted = last.astimezone().utcoffset() != now.astimezone().utcoffset()  # across a DST change
    assert last.astimezone().time() in wanted or shifted
    assert schedule.next_due(last) > last
