"""Freeze windows: weekly ones across daylight saving time, one-off ones, scopes, overrides.

The property tests walk every quarter of an hour of a whole year (both DST changes of
each zone) and compare with the window read directly on the local wall clock.
"""

from bisect import bisect_right
from datetime import datetime, time, timedelta, timezone

import pytest

from engine.freeze import (
    REFUSE,
    WAIT,
    EmergencyOverride,
    FreezeCalendar,
    OneOffWindow,
    Scope,
    WeeklyWindow,
    as_utc,
    instant_of,
    time_of,
    weekday_of,
    zone,
)

UTC = timezone.utc
STEP = timedelta(minutes=15)
ANYWHERE = Scope()
PARIS = "Europe/Paris"


def weekend(tz=PARIS, **kwargs):
    return WeeklyWindow("Weekend", "friday", "16:00", "monday", "08:00", tz, **kwargs)


def wall_clock_frozen(window, moment):
    """Is the local wall time of ``moment`` inside ``window``, read on the wall clock alone?"""
    local = moment.astimezone(zone(window.timezone)).replace(tzinfo=None)
    start = local.date() - timedelta(days=(local.weekday() - window.start_day) % 7)
    for first in (start, start - timedelta(days=7)):
        begin = datetime.combine(first, window.start_time)
        end = datetime.combine(first + timedelta(days=window.span_days), window.end_time)
        if begin <= local < end:
            return True
    return False


def is_repeated_wall_time(moment, tz):
    """True in the hour that autumn's change of clocks repeats."""
    local = moment.astimezone(tz).replace(tzinfo=None)
    return local.replace(tzinfo=tz, fold=0).utcoffset() != local.replace(tzinfo=tz,
                                                                         fold=1).utcoffset()


def quarter_hours(year):
    moment = datetime(year, 1, 1, tzinfo=UTC)
    while moment.year == year:
        yield moment
        moment += STEP


class Membership:
    """Whether instants fall in the freezes of a year, by bisection over their sorted list."""

    def __init__(self, calendar, year):
        freezes = calendar.freezes(datetime(year - 1, 12, 20), datetime(year + 1, 1, 10),
                                   ANYWHERE)
        self.starts = [freeze.start for freeze in freezes]
        self.ends = [freeze.end for freeze in freezes]

    def __contains__(self, moment):
        index = bisect_right(self.starts, moment) - 1
        return index >= 0 and moment < self.ends[index]


WINDOWS = [
    weekend(PARIS),
    weekend("America/New_York"),
    weekend("Australia/Sydney"),  # southern hemisphere: DST from October to April
    # Edges inside the hours the clocks skip (02:30 in spring) and repeat (02:30 in autumn).
    WeeklyWindow("Night", "sunday", "02:30", "sunday", "02:45", PARIS),
    WeeklyWindow("Long night", "saturday", "23:00", "sunday", "02:30", PARIS),
    WeeklyWindow("Almost a week", "monday", "10:00", "monday", "09:00", "UTC"),
]
# is_frozen and next_unfrozen are asked at every SAMPLE-th quarter of an hour (all of
# them would take minutes); the freezes themselves are checked at every one.
SAMPLE = 41


@pytest.mark.parametrize("window", WINDOWS, ids=lambda window: f"{window.name}-{window.timezone}")
def test_frozen_exactly_when_the_wall_clock_says_so_but_for_the_repeated_hour(window):
    calendar = FreezeCalendar([window])
    frozen_at = Membership(calendar, 2027)
    tz = zone(window.timezone)
    for number, moment in enumerate(quarter_hours(2027)):
        frozen = moment in frozen_at
        if number % SAMPLE == 0:
            assert calendar.is_frozen(moment, ANYWHERE) == frozen, moment
        if frozen != wall_clock_frozen(window, moment):
            # One unbroken freeze may cover the second pass of a repeated hour; never less.
            assert frozen and is_repeated_wall_time(moment, tz), moment


@pytest.mark.parametrize("window", WINDOWS, ids=lambda window: f"{window.name}-{window.timezone}")
def test_next_unfrozen_is_the_first_free_moment(window):
    calendar = FreezeCalendar([window])
    frozen_at = Membership(calendar, 2027)
    for moment in list(quarter_hours(2027))[::SAMPLE]:
        free = calendar.next_unfrozen(moment, ANYWHERE)
        assert free >= moment and free not in frozen_at
        if free > moment:
            assert free - timedelta(seconds=1) in frozen_at
            probe = moment
            while probe < free:
                assert probe in frozen_at, (moment, probe)
                probe += STEP


def test_the_weekend_freeze_follows_daylight_saving_time():
    window = weekend(PARIS)
    lengths = {freeze.start.date().isoformat(): freeze.end - freeze.start
               for freeze in window.freezes(datetime(2027, 3, 15), datetime(2027, 11, 5))}
    assert lengths["2027-03-19"] == timedelta(hours=64)
    assert lengths["2027-03-26"] == timedelta(hours=63)  # clocks go forward on the 28th
    assert lengths["2027-10-29"] == timedelta(hours=65)  # and back on the 31st
    winter = window.freezes(datetime(2027, 1, 8, 16), datetime(2027, 1, 8, 16, 1))[0]
    summer = window.freezes(datetime(2027, 7, 9, 15), datetime(2027, 7, 9, 15, 1))[0]
    assert (winter.start.hour, summer.start.hour) == (15, 14)  # 16:00 in Paris, in UTC
    occurrences = window.freezes(datetime(2027, 1, 1), datetime(2028, 1, 1))
    assert len(occurrences) == 53  # the first one began on Friday 2026-12-25


def test_wall_times_the_clocks_skip_or_repeat():
    tz = zone(PARIS)
    skipped = datetime(2027, 3, 28, 2, 30)
    assert instant_of(skipped, tz, latest=False) == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
    assert instant_of(skipped, tz, latest=True) == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
    repeated = datetime(2027, 10, 31, 2, 30)
    assert instant_of(repeated, tz, latest=False) == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)
    assert instant_of(repeated, tz, latest=True) == datetime(2027, 10, 31, 1, 30, tzinfo=UTC)
    plain = datetime(2027, 6, 1, 12, 0)
    assert instant_of(plain, tz, latest=True) == datetime(2027, 6, 1, 10, 0, tzinfo=UTC)


def test_a_month_end_close_in_its_own_time_zone():
    close = OneOffWindow("Month-end close", datetime(2027, 1, 29, 18, 0),
                         datetime(2027, 2, 2, 9, 0), PARIS, mode=REFUSE)
    calendar = FreezeCalendar([close])
    assert not calendar.is_frozen(datetime(2027, 1, 29, 16, 59), ANYWHERE)
    (freeze,) = calendar.active(datetime(2027, 1, 29, 17, 0), ANYWHERE)
    assert (freeze.name, freeze.mode) == ("Month-end close", REFUSE)
    assert freeze.to_dict() == {"name": "Month-end close", "start": "2027-01-29T17:00:00+00:00",
                                "end": "2027-02-02T08:00:00+00:00", "mode": "refuse"}
    assert calendar.next_unfrozen(datetime(2027, 1, 30), ANYWHERE) == datetime(
        2027, 2, 2, 8, 0, tzinfo=UTC)
    aware = OneOffWindow("Audit", datetime(2027, 5, 1, tzinfo=UTC),
                         datetime(2027, 5, 2, 2, 0, tzinfo=zone(PARIS)))
    assert aware.period().end == datetime(2027, 5, 2, 0, 0, tzinfo=UTC)


def test_overlapping_and_adjacent_windows_chain_into_one_wait():
    calendar = FreezeCalendar([
        weekend(PARIS),
        WeeklyWindow("Monday release review", "monday", "08:00", "monday", "10:00", PARIS),
        OneOffWindow("Close", datetime(2027, 3, 1, 9, 0), datetime(2027, 3, 1, 12, 0), PARIS),
    ])
    saturday = datetime(2027, 2, 27, 12, 0, tzinfo=UTC)
    assert calendar.next_unfrozen(saturday, ANYWHERE) == datetime(2027, 3, 1, 11, 0, tzinfo=UTC)


def test_a_deployment_must_fit_before_the_next_freeze():
    calendar = FreezeCalendar([weekend(PARIS)])
    friday = datetime(2027, 2, 5, 14, 50, tzinfo=UTC)  # 15:50 in Paris
    assert calendar.next_unfrozen(friday, ANYWHERE) == friday
    fits_monday = calendar.next_unfrozen(friday, ANYWHERE, duration=timedelta(minutes=15))
    assert fits_monday == datetime(2027, 2, 8, 7, 0, tzinfo=UTC)
    assert calendar.next_freeze(friday, ANYWHERE).start == datetime(2027, 2, 5, 15, 0,
                                                                    tzinfo=UTC)


def test_freezes_back_to_back_have_no_end_within_the_horizon():
    calendar = FreezeCalendar([
        WeeklyWindow("First half", "monday", "00:00", "thursday", "12:00", "UTC"),
        WeeklyWindow("Second half", "thursday", "12:00", "monday", "00:00", "UTC")])
    assert calendar.next_unfrozen(datetime(2027, 1, 4), ANYWHERE) is None
    assert FreezeCalendar().next_freeze(datetime(2027, 1, 4), ANYWHERE) is None


def test_scopes_company_environment_app():
    calendar = FreezeCalendar([
        weekend(PARIS, scope=Scope(company="acme")),
        OneOffWindow("Prod close", datetime(2027, 1, 4), datetime(2027, 1, 5),
                     scope=Scope(company="acme", environment="production")),
        OneOffWindow("Shop launch", datetime(2027, 1, 6), datetime(2027, 1, 7),
                     scope=Scope(app="shop")),
    ])
    acme_prod_shop = Scope("acme", "production", "shop")
    acme_staging_blog = Scope("acme", "staging", "blog")
    other_company = Scope("globex", "production", "shop2")
    monday, wednesday, saturday = (datetime(2027, 1, 4, 12), datetime(2027, 1, 6, 12),
                                   datetime(2027, 1, 9, 12))
    assert calendar.is_frozen(monday, acme_prod_shop)
    assert not calendar.is_frozen(monday, acme_staging_blog)
    assert calendar.is_frozen(wednesday, acme_prod_shop)
    assert not calendar.is_frozen(wednesday, acme_staging_blog)
    assert calendar.is_frozen(saturday, acme_staging_blog)
    assert not any(calendar.is_frozen(moment, other_company)
                   for moment in (monday, wednesday, saturday))


def test_windows_are_checked_when_made():
    with pytest.raises(ValueError, match="unknown time zone"):
        weekend("Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="ends when it starts"):
        WeeklyWindow("Nothing", "friday", "16:00", "friday", "16:00", PARIS)
    with pytest.raises(ValueError, match="mode"):
        weekend(PARIS, mode="maybe")
    with pytest.raises(ValueError, match="does not end after it starts"):
        OneOffWindow("Backwards", datetime(2027, 1, 2), datetime(2027, 1, 1))
    with pytest.raises(ValueError, match="weekday"):
        weekday_of("someday")
    with pytest.raises(ValueError, match="weekday"):
        weekday_of(7)


@pytest.mark.parametrize("value, expected", [
    ("16:00", time(16, 0)), ("8", time(8, 0)), (16.5, time(16, 30)), (0, time(0, 0)),
    (23.9999, time(23, 59)), (time(7, 15), time(7, 15)),
])
def test_times_of_day_in_the_forms_odoo_and_people_write(value, expected):
    assert time_of(value) == expected


@pytest.mark.parametrize("value", ["4pm", "25:00", 24, -1, True, None])
def test_times_of_day_that_are_not(value):
    with pytest.raises(ValueError):
        time_of(value)


def test_window_kinds_are_equal_in_day_names_and_numbers():
    assert weekend(PARIS) == WeeklyWindow("Weekend", 4, time(16), 0, 8.0, PARIS)
    assert weekend(PARIS).mode == WAIT


def test_instants_are_utc_and_naive_ones_are_taken_as_utc():
    assert as_utc(datetime(2027, 1, 1, 12)) == datetime(2027, 1, 1, 12, tzinfo=UTC)
    assert as_utc(datetime(2027, 1, 1, 13, tzinfo=zone(PARIS))) == datetime(2027, 1, 1, 12,
                                                                           tzinfo=UTC)
    with pytest.raises(TypeError):
        as_utc("2027-01-01")


def test_an_emergency_override_names_who_and_why():
    override = EmergencyOverride("cto", "Payment outage fix", datetime(2027, 1, 1, 12))
    assert override.to_dict() == {"by": "cto", "reason": "Payment outage fix",
                                  "at": "2027-01-01T12:00:00+00:00"}
    with pytest.raises(ValueError, match="reason"):
        EmergencyOverride("cto", "  ", datetime(2027, 1, 1))
    with pytest.raises(ValueError, match="who"):
        EmergencyOverride("", "why", datetime(2027, 1, 1))
