"""Schedules: next fire times of cron expressions in a time zone (across DST changes) and of
intervals; durations as written on the command line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from reflow.schedule import Cron, Interval, format_duration, missed, parse_duration

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def fires(schedule: Cron | Interval, start: datetime, n: int, tz: ZoneInfo) -> list[str]:
    times, moment = [], start
    for _ in range(n):
        moment = schedule.next_after(moment)
        assert moment.tzinfo is UTC
        times.append(moment.astimezone(tz).strftime("%a %Y-%m-%d %H:%M %Z"))
    return times


def test_weekday_mornings_stay_at_nine_local_time_across_spring_forward() -> None:
    cron = Cron("0 9 * * 1-5", "Europe/Paris")
    # Europe/Paris leaves CET (+1) for CEST (+2) on Sunday 2026-03-29
    assert fires(cron, datetime(2026, 3, 26, 12, tzinfo=PARIS), 3, PARIS) == [
        "Fri 2026-03-27 09:00 CET", "Mon 2026-03-30 09:00 CEST", "Tue 2026-03-31 09:00 CEST",
    ]  # fmt: skip
    before, after = (cron.next_after(datetime(2026, 3, d, 12, tzinfo=PARIS)) for d in (26, 29))
    assert before.hour == 8
    assert after.hour == 7


def test_weekday_mornings_stay_at_nine_local_time_across_fall_back() -> None:
    cron = Cron("0 9 * * 1-5", "America/New_York")
    # New York leaves EDT (-4) for EST (-5) on Sunday 2026-11-01
    assert fires(cron, datetime(2026, 10, 30, 12, tzinfo=NEW_YORK), 2, NEW_YORK) == [
        "Mon 2026-11-02 09:00 EST", "Tue 2026-11-03 09:00 EST",
    ]  # fmt: skip


def test_a_time_the_clock_skips_fires_later_by_the_jump() -> None:
    cron = Cron("30 2 * * *", "Europe/Paris")  # 02:30 does not exist on 2026-03-29
    assert fires(cron, datetime(2026, 3, 28, 12, tzinfo=PARIS), 2, PARIS) == [
        "Sun 2026-03-29 03:30 CEST", "Mon 2026-03-30 02:30 CEST",
    ]  # fmt: skip


def test_a_time_the_clock_shows_twice_fires_once() -> None:
    cron = Cron("30 2 * * *", "Europe/Paris")  # 02:30 happens twice on 2026-10-25
    first = cron.next_after(datetime(2026, 10, 24, 12, tzinfo=PARIS))
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, the first one
    second = cron.next_after(first)
    assert second == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)  # the next day, 02:30 CET
    half_hourly = Cron("*/30 * * * *", "Europe/Paris")
    times = fires(half_hourly, datetime(2026, 10, 25, 1, 40, tzinfo=PARIS), 4, PARIS)
    assert times == [
        "Sun 2026-10-25 02:00 CEST", "Sun 2026-10-25 02:30 CEST",
        "Sun 2026-10-25 03:00 CET", "Sun 2026-10-25 03:30 CET",
    ]  # fmt: skip


def test_a_moment_inside_the_repeated_hour_does_not_fire_it_again() -> None:
    cron = Cron("45 2 * * *", "Europe/Paris")
    second_pass = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 CET, after 02:45 CEST
    assert cron.next_after(second_pass) == datetime(2026, 10, 26, 1, 45, tzinfo=UTC)


def test_an_interval_counts_elapsed_time_from_its_anchor() -> None:
    anchor = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    every = Interval(1800, anchor)
    assert every.next_after(anchor) == anchor + timedelta(minutes=30)
    assert every.next_after(anchor + timedelta(minutes=31)) == anchor + timedelta(minutes=60)
    assert every.next_after(anchor - timedelta(days=1)) == anchor
    paris = fires(every, datetime(2026, 3, 29, 2, 45, tzinfo=UTC), 2, PARIS)
    assert paris == ["Sun 2026-03-29 05:00 CEST", "Sun 2026-03-29 05:30 CEST"]  # no DST skew


def test_missed_fire_times_are_counted_and_the_newest_kept() -> None:
    every = Interval(60, datetime(2026, 1, 1, tzinfo=UTC))
    times, count = missed(
        every, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 1, tzinfo=UTC), 3
    )
    assert count == 60
    assert [t.minute for t in times] == [58, 59, 0]


def test_bad_schedules_fail_when_made() -> None:
    with pytest.raises(ValueError, match="invalid cron expression '61 \\* \\* \\* \\*'"):
        Cron("61 * * * *")
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        Cron("0 9 * * *", "Mars/Olympus")
    with pytest.raises(ValueError, match="above 0"):
        Interval(0)
    with pytest.raises(ValueError, match="no time zone"):
        Cron("0 9 * * *").next_after(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("1h30m", 5400), ("1s", 1), ("500ms", 0.5), ("2d", 172800), ("90", 90),
     ("1.5h", 5400)],
)  # fmt: skip
def test_durations_are_read_as_written(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_durations_say_how_to_write_one() -> None:
    for text in ("soon", "30x", "-5", "0s", "1h soon"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(text)
    assert format_duration(5400) == "1h30m"
    assert format_duration(1.5) == "1.5s"
