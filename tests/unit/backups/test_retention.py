"""Calendar retention over generated calendars of backups (hypothesis) and named cases."""

from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from pgkura.retention import Policy, reasons_to_keep

times = st.lists(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2027, 12, 31)),
    max_size=60,
    unique=True,
)
policies = st.builds(Policy, *(st.integers(0, 8) for _ in range(5)))


def kept(calendar: list[datetime], policy: Policy) -> set[datetime]:
    return {t for t, why in zip(calendar, reasons_to_keep(calendar, policy), strict=True) if why}


@given(times, policies)
def test_the_newest_is_always_kept_and_nothing_without_a_policy_goes(calendar, policy):
    if calendar:
        assert max(calendar) in kept(calendar, policy)
    if not policy.active:
        assert kept(calendar, policy) == set(calendar)


@given(times, policies)
def test_never_more_than_the_rules_allow(calendar, policy):
    if policy.active:
        bound = policy.last + policy.daily + policy.weekly + policy.monthly + policy.yearly
        assert len(kept(calendar, policy)) <= max(bound, 1)


@given(times, policies)
def test_retention_is_stable_applying_it_again_deletes_nothing(calendar, policy):
    once = kept(calendar, policy)
    assert kept(sorted(once), policy) == once


@given(times, st.integers(1, 8))
def test_daily_keeps_the_newest_of_each_of_the_last_days(calendar, days):
    by_day: dict = {}
    for t in calendar:
        by_day[t.date()] = max(t, by_day.get(t.date(), t))
    expected = {by_day[d] for d in sorted(by_day, reverse=True)[:days]}
    assert kept(calendar, Policy(daily=days)) == expected


@given(times, st.integers(1, 8))
def test_last_n_is_exactly_the_newest_n(calendar, n):
    assert kept(calendar, Policy(last=n)) == set(sorted(calendar)[-n:])


def test_a_year_of_nightly_backups():
    nightly = [datetime(2026, 1, 1, 3) + timedelta(days=i) for i in range(365)]
    policy = Policy(last=3, daily=7, weekly=4, monthly=6, yearly=2)
    reasons = dict(zip(nightly, reasons_to_keep(nightly, policy), strict=True))
    survivors = sorted(t for t, why in reasons.items() if why)
    # Dec 25-31 (daily; the newest 3 among them), the Sundays ending weeks 51 and 50 (weeks 53
    # and 52 end among the dailies), the last nights of July to November (December's is a daily)
    assert survivors == [
        *(datetime(2026, m, d, 3) for m, d in ((7, 31), (8, 31), (9, 30), (10, 31), (11, 30))),
        datetime(2026, 12, 13, 3),
        datetime(2026, 12, 20, 3),
        *(datetime(2026, 12, d, 3) for d in range(25, 32)),
    ]
    assert reasons[datetime(2026, 12, 31, 3)] == [
        "one of the newest 3", "daily 2026-12-31", "weekly 2026-W53", "monthly 2026-12",
        "yearly 2026",
    ]  # fmt: skip
    assert reasons[datetime(2026, 7, 31, 3)] == ["monthly 2026-07"]
    assert reasons[datetime(2026, 7, 30, 3)] == []


def test_backups_of_the_same_second_count_in_list_order():
    second = datetime(2026, 11, 22, 3)
    assert reasons_to_keep([second, second, second], Policy(last=2)) == [
        [],
        ["one of the newest 2"],
        ["one of the newest 2"],
    ]
