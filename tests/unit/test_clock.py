"""The one clock: IST days whatever the host zone, and CASEJOBS_NOW."""

from __future__ import annotations

import datetime as dt

import pytest

from lib.clock import format_utc, now_utc, parse_frozen_now, periods_for, today_ist
from lib.errors import ConfigError


def test_a_frozen_clock_is_read_from_the_environment() -> None:
    assert now_utc("2026-11-28T18:30:00Z") == dt.datetime(2026, 11, 28, 18, 30, tzinfo=dt.UTC)


def test_a_time_without_offset_is_ist() -> None:
    assert parse_frozen_now("2026-11-29T00:00:00") == dt.datetime(2026, 11, 28, 18, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01T00:00:00Z", "", "18:30"])
def test_a_bad_frozen_clock_names_the_variable(text: str) -> None:
    with pytest.raises(ConfigError, match="CASEJOBS_NOW"):
        parse_frozen_now(text)


def test_the_ist_day_turns_at_18_30_utc() -> None:
    assert today_ist(parse_frozen_now("2026-11-28T18:29:59Z")) == dt.date(2026, 11, 28)
    assert today_ist(parse_frozen_now("2026-11-28T18:30:00Z")) == dt.date(2026, 11, 29)


def test_instants_are_stored_with_milliseconds_and_z() -> None:
    assert format_utc(parse_frozen_now("2026-11-28T06:30:00.123456+05:30")) == "2026-11-28T01:00:00.123Z"


def test_periods_run_monday_to_sunday_and_over_the_whole_month() -> None:
    periods = periods_for(dt.date(2024, 2, 29))  # a Thursday in a leap February
    assert (periods.week_start, periods.week_end) == ("2024-02-26", "2024-03-03")
    assert (periods.month_start, periods.month_end) == ("2024-02-01", "2024-02-29")
    december = periods_for(dt.date(2026, 12, 31))
    assert december.month_end == "2026-12-31"
